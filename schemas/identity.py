"""Swedish personal identity and coordination numbers, and their keyed pseudonyms.

Pure functions: the clock is passed in, the key is passed in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass

# YYMMDD-NNNC, YYMMDD+NNNC (over 100 years old), YYYYMMDDNNNC, YYYYMMDD-NNNC, YYMMDDNNNC
_PATTERN = re.compile(
    r"^(?P<century>\d{2})?(?P<yy>\d{2})(?P<mm>\d{2})(?P<dd>\d{2})(?P<sep>[-+]?)(?P<serial>\d{3})(?P<check>\d)$",
    re.ASCII,
)

COORDINATION_DAY_OFFSET = 60


class IdentityNumberError(ValueError):
    """The text is not a valid Swedish personal identity or coordination number."""


@dataclass(frozen=True, slots=True)
class IdentityNumber:
    """A validated number in its canonical twelve-digit form YYYYMMDDNNNC."""

    canonical: str
    coordination: bool


def luhn_check_digit(nine_digits: str) -> int:
    """The Luhn check digit over YYMMDDNNN, as the tax authority computes it."""
    total = 0
    for index, char in enumerate(nine_digits):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def parse_identity_number(text: str, *, today: dt.date, coordination: bool | None = None) -> IdentityNumber:
    """Validate and canonicalise; `coordination` None accepts both kinds.

    `today` resolves the century of the ten-digit forms (a `+` separator means 100 years or older).
    """
    if not text.isascii():
        # Python would read any script's digits as numbers; a number is written with 0-9.
        raise IdentityNumberError("must be written with the digits 0-9")
    match = _PATTERN.match(text.strip())
    if not match:
        raise IdentityNumberError("must look like YYYYMMDD-NNNC or YYMMDD-NNNC")
    yy, mm, dd, serial, check = (match[g] for g in ("yy", "mm", "dd", "serial", "check"))
    if int(check) != luhn_check_digit(yy + mm + dd + serial):
        raise IdentityNumberError("check digit does not match (Luhn)")
    day = int(dd)
    is_coordination = day > COORDINATION_DAY_OFFSET
    if is_coordination:
        day -= COORDINATION_DAY_OFFSET
    if coordination is True and not is_coordination:
        raise IdentityNumberError("a coordination number has its day of birth plus 60")
    if coordination is False and is_coordination:
        raise IdentityNumberError("day of birth plus 60 marks a coordination number, not a personal identity number")
    if match["century"]:
        year = int(match["century"] + yy)
    else:
        year = _resolve_century(int(yy), int(mm), day, centenarian=match["sep"] == "+", today=today)
    try:
        born = dt.date(year, int(mm), day)
    except ValueError:
        raise IdentityNumberError(f"{year:04d}-{mm}-{day:02d} is not a date") from None
    if born > today:
        raise IdentityNumberError("date of birth lies in the future")
    return IdentityNumber(canonical=f"{year:04d}{mm}{dd}{serial}{check}", coordination=is_coordination)


def _resolve_century(yy: int, mm: int, day: int, *, centenarian: bool, today: dt.date) -> int:
    year = today.year - (today.year - yy) % 100
    try:
        if dt.date(year, mm, day) > today:
            year -= 100
    except ValueError:
        pass  # an impossible date is reported by the caller
    return year - 100 if centenarian else year


def pseudonym(identity: IdentityNumber, key: bytes) -> str:
    """Keyed HMAC-SHA256 pseudonym: stable for a key, useless without it."""
    digest = hmac.new(key, identity.canonical.encode("ascii"), hashlib.sha256).hexdigest()
    return "ps_" + digest[:32]
