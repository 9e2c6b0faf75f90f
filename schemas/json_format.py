"""The JSON ingest format: agency events as JSON objects, turned into Avro-ready records.

The JSON form follows the Avro schema of the latest version of each event type, with
three conveniences for people writing it by hand:
- a person is an object with exactly one of personal_identity_number, coordination_number
  or pseudonym, e.g. {"personal_identity_number": "19850312-0001"}; a related person adds
  role and protected_identity to that same object;
- times are ISO 8601 text with a UTC offset, e.g. "2026-03-01T08:15:00+01:00";
- dates are ISO dates "YYYY-MM-DD".
Fields with a default may be left out. Unknown fields are refused, so a misspelt flag
is not silently read as false.

The bytes must be UTF-8 JSON (no byte order mark, not UTF-16 or UTF-32), nested at most
MAX_DEPTH levels, with no number longer than MAX_NUMBER_DIGITS digits; text is read in
Unicode NFC form, and digits in times and dates are the ASCII digits 0-9.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from schemas.errors import ContractError, EventValidationError, FieldError
from schemas.registry import AvroSchema, default_registry
from schemas.rules import FIRST_DAY, LAST_DAY, PERSON_REF_KINDS, check_event, shown
from schemas.text import printable

__all__ = ["check_event", "event_from_json", "parse_json_event"]

# The contract nests three levels (event, related_persons, a person); a little room beyond that.
MAX_DEPTH = 8
# No field needs more; Python's int() refuses beyond 4,300 digits with an error of its own.
MAX_NUMBER_DIGITS = 20

_PERSON_REF = "riskwatch.PersonRef"
_RELATED_PERSON = "riskwatch.RelatedPerson"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
# Extended ISO 8601 only: Python alone would also read compact forms such as 19850312-0001.
_ISO_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?P<offset>Z|[+-]\d{2}:\d{2})?$", re.ASCII
)
_INT_LIMIT = 2**31
_EXPECTED = {
    "string": "text",
    "boolean": "true or false",
    "int": "a whole number",
    "record": "an object",
    "array": "a list",
}


class _OutOfRange(int):
    """A number with more digits than any field takes: kept as a marker, so the field it is in can be named."""


_TOO_MANY_DIGITS = _OutOfRange(2**63)
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def parse_json_event(raw: bytes) -> object:
    """The JSON value of one event's bytes; raises EventValidationError when they are not canonical JSON."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise EventValidationError([FieldError("event", "starts with a byte order mark; send UTF-8 without one")])
    if raw.startswith(_UTF16_32_BOMS) or raw[:4].count(0) >= 2:
        raise EventValidationError([FieldError("event", "looks like UTF-16 or UTF-32; send UTF-8")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EventValidationError([FieldError("event", f"is not UTF-8 text (byte {error.start})")]) from None
    try:
        document = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise EventValidationError(
            [FieldError("event", f"is not valid JSON ({error.msg}; line {error.lineno}, column {error.colno})")]
        ) from None
    except RecursionError:
        raise EventValidationError([FieldError("event", f"nests deeper than {MAX_DEPTH} levels")]) from None
    except ValueError as error:  # NaN or Infinity
        raise EventValidationError([FieldError("event", str(error))]) from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(document) > MAX_DEPTH:
        raise EventValidationError([FieldError("event", f"nests deeper than {MAX_DEPTH} levels")])
    return document


def _bounded_int(digits: str) -> int:
    return int(digits) if len(digits) <= MAX_NUMBER_DIGITS else _TOO_MANY_DIGITS


def _no_constant(name: str) -> object:
    raise ValueError(f"holds {name}, which is not a JSON number")


def _depth(document: object) -> int:
    """How deeply the value nests, counted without recursion."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, level)
            pending.extend((item, level + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def event_from_json(obj: object, *, today: dt.date) -> tuple[str, dict[str, Any]]:
    """Turn one JSON event (already parsed with json.loads) into (event_type, Avro-ready record).

    The record has the latest version's shape, defaults filled in, times as aware datetimes
    and dates as datetime.date. Raises EventValidationError naming every wrong field.
    """
    if not isinstance(obj, Mapping):
        raise EventValidationError([FieldError("event", f"expected a JSON object, got {_json_kind(obj)}")])
    event_type = obj.get("event_type")
    if event_type is None:
        raise EventValidationError([FieldError("event_type", "is missing")])
    if not isinstance(event_type, str):
        raise EventValidationError([FieldError("event_type", f"expected text, got {_json_kind(event_type)}")])
    try:
        schema = default_registry().latest(event_type)
    except ContractError as error:
        raise EventValidationError([FieldError(error.field, error.reason)]) from None
    reading = _JsonReader(schema.schema["__named_schemas"])
    record = reading.value(obj, schema.schema, "")
    if reading.errors:
        raise EventValidationError(reading.errors)
    check_event(event_type, record, today=today)
    return event_type, record


class _JsonReader:
    """Converts JSON values to Avro values along a schema, collecting every error with its path."""

    def __init__(self, named: Mapping[str, AvroSchema]) -> None:
        self.named = named
        self.errors: list[FieldError] = []

    def fail(self, path: str, reason: str) -> None:
        self.errors.append(FieldError(path or "event", reason))

    def value(self, value: Any, schema: Any, path: str) -> Any:
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, list):
            return self.union(value, schema, path)
        kind = schema if isinstance(schema, str) else schema["type"]
        name = schema.get("name") if isinstance(schema, dict) else None
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if name == _PERSON_REF:
            return self.person_ref(value, path)
        if name == _RELATED_PERSON:
            return self.related_person(value, schema, path)
        if logical == "timestamp-millis":
            return self.instant(value, path)
        if logical == "date":
            return self.date(value, path)
        if kind == "record":
            return self.record(value, schema, path)
        if kind == "enum":
            return self.enum(value, schema, path)
        if kind == "array":
            if not isinstance(value, list):
                return self.wrong_type(value, kind, path)
            return [self.value(item, schema["items"], f"{path}[{index}]") for index, item in enumerate(value)]
        return self.primitive(value, kind, path)

    def union(self, value: Any, branches: list[Any], path: str) -> Any:
        if value is None and "null" in branches:
            return None
        (branch,) = [branch for branch in branches if branch != "null"]
        return self.value(value, branch, path)

    def record(self, value: Any, schema: AvroSchema, path: str) -> Any:
        if not isinstance(value, Mapping):
            return self.wrong_type(value, "record", path)
        fields = {field["name"]: field for field in schema["fields"]}
        for key in value:
            if key not in fields:
                self.unknown_field(str(key), list(fields), path)
        record: dict[str, Any] = {}
        for name, field in fields.items():
            field_path = f"{path}.{name}" if path else name
            if name in value:
                record[name] = self.value(value[name], field["type"], field_path)
            elif "default" in field:
                record[name] = copy.deepcopy(field["default"])
            else:
                self.fail(field_path, "is missing")
        return record

    def unknown_field(self, key: str, known: list[str], path: str) -> None:
        nearby = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {nearby[0]}?" if nearby else f"expected {', '.join(known) or 'no fields'}"
        key_shown = printable(key)
        self.fail(f"{path}.{key_shown}" if path else key_shown, f"unknown field; {hint}")

    def person_ref(self, value: Any, path: str, *, beside: tuple[str, ...] = ()) -> Any:
        """A PersonRef from an object with one identity key; `beside` names keys the caller reads."""
        if not isinstance(value, Mapping):
            return self.wrong_type(value, "record", path)
        for key in value:
            if key not in PERSON_REF_KINDS and key not in beside:
                self.unknown_field(str(key), [*beside, *PERSON_REF_KINDS], path)
        given = [kind for kind in PERSON_REF_KINDS if kind in value]
        if len(given) != 1:
            wanted = "exactly one of " + ", ".join(PERSON_REF_KINDS)
            self.fail(path, f"needs {wanted}" if not given else f"has {' and '.join(given)}; give {wanted}")
            return None
        kind = given[0]
        number = value[kind]
        if not isinstance(number, str):
            # Say what kind of value arrived, never the value: it may be an identity number.
            return self.wrong_type(number, "string", f"{path}.{kind}")
        return {"kind": kind, "value": number}

    def related_person(self, value: Any, schema: AvroSchema, path: str) -> Any:
        if not isinstance(value, Mapping):
            return self.wrong_type(value, "record", path)
        # JSON writes the person's identity key beside role and protected_identity.
        record: dict[str, Any] = {}
        for field in schema["fields"]:
            name = field["name"]
            if name == "person":
                record[name] = self.person_ref(value, path, beside=("role", "protected_identity"))
            elif name in value:
                record[name] = self.value(value[name], field["type"], f"{path}.{name}")
            else:
                self.fail(f"{path}.{name}", "is missing")
        return record

    def enum(self, value: Any, schema: AvroSchema, path: str) -> Any:
        symbols: list[str] = schema["symbols"]
        if value not in symbols:
            got = shown(value) if isinstance(value, str) else _json_kind(value)
            self.fail(path, f"{got} is not one of {', '.join(symbols)}")
        return value

    def instant(self, value: Any, path: str) -> Any:
        example = "2026-03-01T08:15:00+01:00"
        if not isinstance(value, str):
            return self.fail(path, f"expected an ISO 8601 time such as {example}, got {_json_kind(value)}")
        form = _ISO_TIME.match(value)
        if form is None:
            return self.fail(path, f"{shown(value)} is not an ISO 8601 time such as {example}")
        if form["offset"] is None:
            return self.fail(path, f"{shown(value)} has no UTC offset; add one, e.g. +01:00 or Z")
        try:
            instant = dt.datetime.fromisoformat(value)
            in_utc = instant.astimezone(dt.UTC)
        except ValueError:
            return self.fail(path, f"{shown(value)} is not a time")
        except OverflowError:
            return self.fail(path, f"{shown(value)} is outside the times accepted, {FIRST_DAY} to {LAST_DAY}")
        if not FIRST_DAY <= in_utc.date() <= LAST_DAY:
            return self.fail(path, f"{shown(value)} is outside the times accepted, {FIRST_DAY} to {LAST_DAY}")
        return instant

    def date(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            return self.fail(path, f"expected an ISO date YYYY-MM-DD, got {_json_kind(value)}")
        if not _ISO_DATE.match(value):
            return self.fail(path, f"{shown(value)} is not an ISO date YYYY-MM-DD")
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return self.fail(path, f"{value} is not a date")
        if not FIRST_DAY <= day <= LAST_DAY:
            return self.fail(path, f"{value} is outside the dates accepted, {FIRST_DAY} to {LAST_DAY}")
        return day

    def primitive(self, value: Any, kind: str, path: str) -> Any:
        if kind == "string" and isinstance(value, str):
            # One spelling for one text: decomposed and composed ö are the same letter.
            return value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)
        if kind == "boolean" and isinstance(value, bool):
            return value
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            if isinstance(value, _OutOfRange) or not -_INT_LIMIT <= value < _INT_LIMIT:
                return self.fail(path, "is out of range")
            return value
        if kind not in _EXPECTED:
            raise TypeError(f"the JSON format has no rule for Avro type {kind}")
        return self.wrong_type(value, kind, path)

    def wrong_type(self, value: Any, kind: str, path: str) -> None:
        self.fail(path, f"expected {_EXPECTED[kind]}, got {_json_kind(value)}")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
