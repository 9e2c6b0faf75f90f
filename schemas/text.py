"""Text as Riskwatch accepts it, and the one place that finds identity numbers in text.

Canonical text is Unicode without lone surrogates, without control characters (free text
may hold tab and newline), in NFC form and within its field's length. Identity numbers are
looked for in a normalised view of the text: each character folded by NFKC, every Unicode
decimal digit read as its ASCII digit, JSON escapes such as \\u0031 read as the character
they stand for, and invisible format characters (zero-width space, soft hyphen) skipped. So
"19850312-0001", "１９８５０３１２－０００１" and "\\u0031\\u0039..." are one number to the
ingest rules, the dead-letter mask and the error texts alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

WITHHELD = "<number withheld>"
# The keyed pseudonyms Riskwatch makes (schemas.identity.pseudonym): their hex digits may run as
# long as an identity number's, yet they are none, wherever they are checked.
PSEUDONYM_FORM = re.compile(r"^ps_[0-9a-f]{32}$")
# YYMMDD-NNNC, YYMMDD+NNNC, YYYYMMDDNNNC, YYYYMMDD-NNNC and the like (coordination numbers
# have the same shape), in the normalised view. A longer run of digits is withheld too: the
# number may hide inside it.
_SHAPE = re.compile(r"(?:[0-9]{2})?[0-9]{6}[-+ ]?[0-9]{4}", re.ASCII)
_SEPARATORS = frozenset("-+ ")
# A JSON escape of one character, or a surrogate pair of them.
_ESCAPE = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})", re.IGNORECASE)
_ASCII_DIGIT_OR_ESCAPE = re.compile(r"[0-9\\]")
# Control characters (Unicode category Cc) and lone surrogates; free text may hold tab and newline.
_NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_FREE_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _units(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, character) for each character of the text, a JSON escape counting as the one it stands for."""
    position = 0
    for escape in _ESCAPE.finditer(text):
        for index in range(position, escape.start()):
            yield index, index + 1, text[index]
        if escape[3] is not None:
            yield escape.start(), escape.end(), chr(int(escape[3], 16))
        else:
            high, low = int(escape[1], 16), int(escape[2], 16)
            yield escape.start(), escape.end(), chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        position = escape.end()
    for index in range(position, len(text)):
        yield index, index + 1, text[index]


def _view_char(char: str) -> str:
    """What a character counts as when looking for identity numbers: an ASCII digit, a separator, or other."""
    if "0" <= char <= "9" or char in _SEPARATORS:
        return char
    if char.isascii():
        return "x"
    if unicodedata.category(char) == "Cf":
        return ""  # invisible: a number written with zero-width spaces between its digits is still one
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and folded.isdecimal():
        return str(unicodedata.decimal(folded))
    if folded in _SEPARATORS or unicodedata.category(char) == "Pd":
        return "-"
    if folded.isspace():
        return " "
    return "x"


def identity_number_spans(text: str) -> list[tuple[int, int]]:
    """Where in `text` something shaped like an identity number is written, in any spelling."""
    # The common cases, kept cheap: no digit and no escape, so no number.
    if text.isascii():
        if not _ASCII_DIGIT_OR_ESCAPE.search(text):
            return []
    elif not any(char.isdigit() or char == "\\" for char in text):
        return []
    view, origins = _view(text)
    return [(origins[match.start()][0], origins[match.end() - 1][1]) for match in _SHAPE.finditer(view)]


def normalised(text: str) -> str:
    """The view identity numbers are looked for in: ASCII digits, separators (-, + and space), x for anything else."""
    return _view(text)[0]


def _view(text: str) -> tuple[str, list[tuple[int, int]]]:
    view: list[str] = []
    origins: list[tuple[int, int]] = []
    for start, end, char in _units(text):
        counted = _view_char(char)
        if counted:
            view.append(counted)
            origins.append((start, end))
    return "".join(view), origins


def holds_identity_number(text: str) -> bool:
    return bool(identity_number_spans(text))


def withhold_identity_numbers(text: str) -> str:
    """The text with anything shaped like an identity number, in any spelling, replaced by WITHHELD."""
    spans = identity_number_spans(text)
    for start, end in reversed(spans):
        text = text[:start] + WITHHELD + text[end:]
    return text


def withhold_identity_numbers_in_bytes(raw: bytes) -> bytes:
    """The same for raw input (JSON or Avro bytes): every byte outside a withheld number is kept as it was."""
    # surrogateescape carries bytes that are not UTF-8 through unchanged.
    return withhold_identity_numbers(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def text_fault(text: str, *, max_length: int, multiline: bool = False) -> str | None:
    """Why `text` is not canonical text for a field of at most `max_length` characters; None when it is.

    The reason never quotes the text: it may hold anything.
    """
    if len(text) > max_length:
        return f"is longer than {max_length} characters"
    wrong = (_NOT_FREE_TEXT if multiline else _NOT_TEXT).search(text)
    if wrong is not None:
        code = ord(wrong[0])
        if 0xD800 <= code <= 0xDFFF:
            return f"holds a lone surrogate U+{code:04X}, which is not Unicode text"
        allowed = " (only tab and newline are allowed here)" if multiline else ""
        return f"holds the control character U+{code:04X}{allowed}"
    if not unicodedata.is_normalized("NFC", text):
        return "is not in Unicode NFC form"
    return None


def free_text_fault(text: str, *, max_length: int, multiline: bool = False) -> str | None:
    """text_fault, and free text that reaches a topic may not hold an identity number: it travels unpseudonymised."""
    fault = text_fault(text, max_length=max_length, multiline=multiline)
    if fault is None and holds_identity_number(text):
        fault = "holds an identity number; name no one in free text (the subject field carries the person)"
    return fault


def printable(text: str, limit: int = 40) -> str:
    """Text quoted back in a message: control characters and surrogates escaped, identity numbers
    withheld, cut to `limit` characters."""
    shown = "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in ("Cc", "Cs") else char for char in text
    )
    shown = withhold_identity_numbers(shown)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
