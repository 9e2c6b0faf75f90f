"""Domain rules every agency event must keep, whether it arrived as JSON or as Avro binary.

The Avro schema settles the shape; these rules settle what the shape cannot say: that the
agency matches the event type, that times are in order, that social services and
healthcare name their legal basis, that identity numbers are real numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any

from schemas.errors import ContractError, EventValidationError, FieldError
from schemas.registry import default_registry
from schemas.text import PSEUDONYM_FORM, free_text_fault, holds_identity_number, printable
from schemas.identity import IdentityNumberError, parse_identity_number

REGIONS = ("nord", "mitt", "stockholm", "ost", "vast", "syd", "bergslagen")
SECRECY_BREAKING_BASIS = "osl_10_18c"
# Social services and healthcare may only pass information on under OSL 10 kap. 18 c §.
AGENCIES_NEEDING_SECRECY_BREAKING_BASIS = frozenset({"social_services", "healthcare"})
PERSON_REF_KINDS = ("personal_identity_number", "coordination_number", "pseudonym")
# Pairs of payload dates where the second may not come before the first.
DATE_RANGES: Mapping[str, tuple[str, str]] = {
    "prosecution.contact_ban_issued": ("valid_from", "valid_to"),
    "prison_probation.furlough_granted": ("start_date", "end_date"),
}
# Events from the future are refused; a day's slack covers clocks and time zones.
FUTURE_SLACK = dt.timedelta(days=1)

# The range of times and dates the contract accepts: wide enough for any real record, narrow
# enough that no offset or conversion can overflow.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2200, 12, 31)
# Free text reaches the topics as written: each field has a maximum, in characters. Payload
# text not named here may hold at most PAYLOAD_TEXT_MAX characters on one line.
TEXT_MAX: Mapping[str, int] = {
    "unit": 200,
    "payload.concern": 4000,
    "payload.description": 4000,
    "payload.reason": 1000,
    "payload.offence_code": 20,
    "payload.suspected_offence_code": 20,
}
PAYLOAD_TEXT_MAX = 200
MULTILINE_TEXT = frozenset({"payload.concern", "payload.description", "payload.reason"})
PERSON_VALUE_MAX = 128
RELATED_PERSONS_MAX = 20
CHILDREN_MAX = 30

_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{1,128}$", re.ASCII)
UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1)
_SHOWN_TEXT = 40


def check_event(event_type: str, record: Mapping[str, Any], *, today: dt.date) -> None:
    """Raise EventValidationError listing every broken rule; return quietly if there is none."""
    errors = list(_broken_rules(event_type, record, today=today))
    if errors:
        raise EventValidationError(errors)


def _broken_rules(event_type: str, record: Mapping[str, Any], *, today: dt.date) -> Iterator[FieldError]:
    try:
        schema = default_registry().latest(event_type)
    except ContractError as error:
        yield FieldError(error.field, error.reason)
        return
    if record.get("event_type") != event_type:
        yield FieldError("event_type", f"{shown(record.get('event_type'))} does not match the schema {event_type}")
    if not UUID_PATTERN.match(str(record.get("event_id", ""))):
        yield FieldError("event_id", "must be a UUID such as 3f2b8c1e-6a4d-4e0f-9b7a-2d5c8e1f4a6b")
    if record.get("agency") != schema.agency:
        yield FieldError(
            "agency", f"must be {schema.agency}, the agency of {event_type}, not {shown(record.get('agency'))}"
        )
    if record.get("region") not in REGIONS:
        yield FieldError(
            "region", f"{shown(record.get('region'))} is not a police region; use one of {', '.join(REGIONS)}"
        )
    unit_fault = free_text_fault(str(record.get("unit", "")), max_length=TEXT_MAX["unit"])
    if unit_fault is not None:
        yield FieldError("unit", unit_fault)
    elif not str(record.get("unit", "")).strip():
        yield FieldError("unit", "is empty; name the agency unit that recorded the event")
    yield from _time_rules(record, today=today)
    if schema.agency in AGENCIES_NEEDING_SECRECY_BREAKING_BASIS and record.get("legal_basis") != SECRECY_BREAKING_BASIS:
        yield FieldError(
            "legal_basis",
            f"{schema.agency} may only share this under OSL 10 kap. 18 c §: "
            f"legal_basis must be {SECRECY_BREAKING_BASIS}",
        )
    yield from _person_rules("subject", record.get("subject"), today=today)
    related = record.get("related_persons", [])
    if len(related) > RELATED_PERSONS_MAX:
        yield FieldError("related_persons", f"lists {len(related)} persons; at most {RELATED_PERSONS_MAX} are accepted")
        related = related[:RELATED_PERSONS_MAX]
    for index, related_person in enumerate(related):
        yield from _person_rules(f"related_persons[{index}]", related_person.get("person"), today=today)
    payload = record.get("payload", {})
    yield from _payload_rules(event_type, payload, schema.payload_schema)
    if event_type == "prosecution.contact_ban_issued" and not any(p.get("role") == "victim" for p in related):
        yield FieldError(
            "related_persons", "a contact ban protects someone: list the protected person with role victim"
        )


def _time_rules(record: Mapping[str, Any], *, today: dt.date) -> Iterator[FieldError]:
    latest_allowed = dt.datetime.combine(today + FUTURE_SLACK, dt.time.max, tzinfo=dt.UTC)
    instants: dict[str, dt.datetime] = {}
    for name in ("event_time", "recorded_time"):
        value = record.get(name)
        instant = as_instant(value)
        if instant is None:
            yield FieldError(name, "is not a time with a UTC offset")
        elif instant.date() < FIRST_DAY:
            yield FieldError(name, f"lies before {FIRST_DAY}, the earliest time accepted")
        elif instant > latest_allowed:
            yield FieldError(name, f"{instant.isoformat()} lies in the future (after {today + FUTURE_SLACK})")
        else:
            instants[name] = instant
    if len(instants) == 2 and instants["recorded_time"] < instants["event_time"]:
        yield FieldError("recorded_time", "is before event_time: an agency can only record what already happened")


def _person_rules(path: str, person: Any, *, today: dt.date) -> Iterator[FieldError]:
    if not isinstance(person, Mapping):
        return
    kind, value = person.get("kind"), person.get("value")
    field = f"{path}.{kind}" if kind in PERSON_REF_KINDS else path
    if not isinstance(value, str) or not value.strip():
        yield FieldError(field, "is empty")
    elif len(value) > PERSON_VALUE_MAX:
        yield FieldError(field, f"is longer than {PERSON_VALUE_MAX} characters")
    elif kind == "pseudonym":
        if not _PSEUDONYM.match(value):
            yield FieldError(field, "a pseudonym is made of the letters A-Z, a-z, digits, _ and -")
        elif not PSEUDONYM_FORM.match(value) and holds_identity_number(value):
            yield FieldError(field, "holds an identity number; give it as personal_identity_number instead")
    elif kind in ("personal_identity_number", "coordination_number"):
        try:
            parse_identity_number(value, today=today, coordination=kind == "coordination_number")
        except IdentityNumberError as error:
            yield FieldError(field, "is not valid: " + identity_reason(error))


def identity_reason(error: IdentityNumberError) -> str:
    """The reason a number was refused, without the digits of the number itself."""
    reason = str(error)
    # The only reason that quotes the number is an impossible date of birth.
    if re.search(r"\d{4}-\d{2}-\d{2}", reason):
        return "its date of birth is not a real date"
    return reason


def _payload_rules(
    event_type: str, payload: Mapping[str, Any], payload_schema: Mapping[str, Any]
) -> Iterator[FieldError]:
    for field in payload_schema["fields"]:
        name, path = field["name"], f"payload.{field['name']}"
        value = payload.get(name)
        if isinstance(value, str):
            fault = free_text_fault(value, max_length=TEXT_MAX.get(path, PAYLOAD_TEXT_MAX),
                                    multiline=path in MULTILINE_TEXT)
            if fault is not None:
                yield FieldError(path, fault)
                continue
        if field["type"] == "string" and "default" not in field and not str(value or "").strip():
            yield FieldError(path, "is empty")
        if isinstance(value, dt.date) and not FIRST_DAY <= value <= LAST_DAY:
            yield FieldError(path, f"{value} is outside the dates accepted, {FIRST_DAY} to {LAST_DAY}")
    if event_type in DATE_RANGES:
        start_name, end_name = DATE_RANGES[event_type]
        start, end = as_date(payload.get(start_name)), as_date(payload.get(end_name))
        if start is not None and end is not None and end < start:
            yield FieldError(f"payload.{end_name}", f"{end} is before {start_name} {start}")
    children = payload.get("children_in_household", 0)
    if children < 0:
        yield FieldError("payload.children_in_household", "cannot be negative")
    elif children > CHILDREN_MAX:
        yield FieldError("payload.children_in_household", f"is more than {CHILDREN_MAX}")


def as_instant(value: object) -> dt.datetime | None:
    """A timestamp-millis value as Avro accepts it (aware datetime or epoch milliseconds), in UTC."""
    if isinstance(value, dt.datetime):
        try:
            return value.astimezone(dt.UTC) if value.tzinfo is not None else None
        except OverflowError:  # year 1 or 9999 with an offset
            return None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + dt.timedelta(milliseconds=value)
        except OverflowError:
            return None
    return None


def as_date(value: object) -> dt.date | None:
    """A date value as Avro accepts it (date or days since 1970-01-01)."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH_DAY + dt.timedelta(days=value)
        except OverflowError:
            return None
    return None


def shown(value: object) -> str:
    """A value quoted in a message: cut short so a message stays a line, identity numbers withheld."""
    return printable(repr(value) if not isinstance(value, str) else f"'{value}'", limit=_SHOWN_TEXT)
