"""The two kinds of record the generator writes: agency events and ground-truth outcomes.

Agency events are in the JSON ingest format of the event catalogue (docs/events.md);
outcomes go to a separate truth file that no part of Riskwatch reads, only evaluations.
Times are written in Swedish local time with their offset, as an agency would.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
import random
from dataclasses import dataclass
from typing import Literal, TypeAlias

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonObject: TypeAlias = dict[str, JsonValue]
Payload: TypeAlias = dict[str, str | bool]  # every catalogue payload field is text, a symbol, a date or a flag

Outcome = Literal["aggravated_assault", "attempted_murder", "murder"]

_CET = dt.timezone(dt.timedelta(hours=1))
_EPOCH_DAY = dt.date(1970, 1, 1)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(value: JsonValue) -> str:
    """Compact JSON with non-ASCII letters kept as they are (the files are UTF-8)."""
    return _ENCODER.encode(value)


@functools.lru_cache(maxsize=4096)
def encode_name(name: str) -> str:
    """A unit or facility name as JSON; there are few, and every event carries one."""
    return _ENCODER.encode(name)


def encode_payload(payload: Payload) -> str:
    """A payload as JSON. Most payloads are a few flags, so the same ones recur and are cached."""
    return _encode_payload_items(tuple(payload.items()))


@functools.lru_cache(maxsize=65536)
def _encode_payload_items(items: tuple[tuple[str, str | bool], ...]) -> str:
    return _ENCODER.encode(dict(items))


@dataclass(frozen=True, slots=True)
class AgencyEvent:
    """One agency event, kept as the line of JSON an agency would send to ingest."""

    event_id: str
    event_type: str
    json_line: str

    @property
    def document(self) -> JsonObject:
        parsed: JsonObject = json.loads(self.json_line)
        return parsed

    def to_json_line(self) -> str:
        return self.json_line


@dataclass(frozen=True, slots=True)
class SevereOutcome:
    """A severe act of violence that happened, whether or not any agency reported it."""

    subject_personal_identity_number: str
    outcome: Outcome
    occurred_at: int  # seconds since the epoch
    reported_event_id: str | None

    @property
    def document(self) -> JsonObject:
        return {
            "subject_personal_identity_number": self.subject_personal_identity_number,
            "outcome": self.outcome,
            "occurred_at": swedish_time(self.occurred_at),
            "reported_event_id": self.reported_event_id,
        }

    def to_json_line(self) -> str:
        return encode(self.document) + "\n"


Record: TypeAlias = AgencyEvent | SevereOutcome


def swedish_time(epoch_seconds: int) -> str:
    """ISO 8601 in Swedish local time with its offset, e.g. 2026-03-14T21:37:05+01:00.

    Computed from the EU summer-time rule rather than a time-zone database, so that the
    output is the same on every machine.
    """
    offset = swedish_utc_offset(epoch_seconds)
    day, second = divmod(epoch_seconds + offset, 86400)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{_iso_day(day)}T{hour:02d}:{minute:02d}:{second:02d}{'+02:00' if offset == 7200 else '+01:00'}"


@functools.lru_cache(maxsize=4096)
def _iso_day(days_since_epoch: int) -> str:
    return (_EPOCH_DAY + dt.timedelta(days=days_since_epoch)).isoformat()


def swedish_date(epoch_seconds: int) -> dt.date:
    return _EPOCH_DAY + dt.timedelta(days=(epoch_seconds + swedish_utc_offset(epoch_seconds)) // 86400)


def swedish_utc_offset(epoch_seconds: int) -> int:
    """Seconds Swedish time is ahead of UTC at that moment."""
    return 7200 if _is_summer_time(epoch_seconds) else 3600


@functools.lru_cache(maxsize=4096)
def swedish_midnight(day: dt.date) -> int:
    """The epoch second at which `day` begins in Sweden."""
    winter_midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=_CET).timestamp())
    return winter_midnight - 3600 if _is_summer_time(winter_midnight - 3600) else winter_midnight


def _is_summer_time(epoch_seconds: int) -> bool:
    """Summer time runs from 01:00 UTC on the last Sunday of March to that of October."""
    return bisect.bisect_right(_SUMMER_TIME_SWITCHES, epoch_seconds) % 2 == 1


def _last_sunday_0100_utc(year: int, month: int) -> int:
    last_day = dt.date(year, month, 31)
    sunday = last_day - dt.timedelta(days=(last_day.weekday() + 1) % 7)
    return int(dt.datetime(sunday.year, sunday.month, sunday.day, 1, tzinfo=dt.UTC).timestamp())


# The EU rule in its present form holds from 1996; windows are limited to these years.
SUPPORTED_YEARS = range(1996, 2100)
_SUMMER_TIME_SWITCHES: tuple[int, ...] = tuple(
    switch for year in SUPPORTED_YEARS for switch in (_last_sunday_0100_utc(year, 3), _last_sunday_0100_utc(year, 10))
)


_UUID_CLEARED = ~((0xF000 << 64) | (0xC000 << 48))  # the version and variant bits
_UUID_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def random_uuid4(rng: random.Random) -> str:
    """A version-4 UUID from `rng`: str(uuid.UUID(int=rng.getrandbits(128), version=4)), made faster."""
    digits = f"{rng.getrandbits(128) & _UUID_CLEARED | _UUID_VERSION_4:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
