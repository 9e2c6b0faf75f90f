"""The risk policy: every number the model uses, from one versioned TOML file.

A malformed file is refused with the key and the reason, never half-loaded.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from projections.events import DAY_MS, HOUR_MS, OFFENCES, Marker
from projections.levels import Level

DEFAULT_POLICY_FILE = "2026.2.toml"
# States keep five years of events (a leap day included); no policy may look further back.
STATE_RETENTION_DAYS = 1826
ASSESSED_LEVELS = ("low", "moderate", "high")
MARKERS = frozenset(Marker)


class PolicyError(ValueError):
    """The policy file is malformed: `key` names the entry, `reason` says what is wrong."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GravityFloor:
    markers: frozenset[str]
    gravity: float


@dataclass(frozen=True, slots=True)
class MarkerMultiplier:
    name: str
    factor: float
    markers: frozenset[str]
    window_ms: int | None
    ended_by: frozenset[str]


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    horizon_ms: int
    half_life_ms: int
    thresholds: Mapping[Level, float]
    review_ms: Mapping[Level, int]
    offence_gravity: Mapping[str, float]
    offence_share: Mapping[str, float]
    event_gravity: Mapping[str, float]
    assessed_level_gravity: Mapping[str, float]
    floors: tuple[GravityFloor, ...]
    frequency_window_ms: int
    frequency_step: float
    frequency_cap: float
    escalation_recent_ms: int
    escalation_weight: float
    multiplier_cap: float
    multiple_victims_factor: float
    multipliers: tuple[MarkerMultiplier, ...]
    red_flag_window_ms: int
    violent_offences: frozenset[str]
    level_rose_from: Level  # a rise alerts only when it reaches this level or above
    # An alert whose causing event is older than this when processed is history: recorded, never paged.
    paging_window_ms: int = 72 * HOUR_MS
    # Alerts below this level (unless urgent) are recorded and count in the evaluation but open no case.
    page_from_level: Level = Level.LOW
    # Subjects at this level or above get review items; an open one is overdue this long after it was due.
    review_from_level: Level = Level.HIGH
    review_overdue_ms: int = 24 * HOUR_MS
    # How long a structured assessment (SARA:SV, B-SAFER, PATRIARK, FREDA) holds the level at or above
    # its conclusion; None: assessments only weigh as events.
    assessment_valid_ms: int | None = None

    def level_for(self, score: float) -> Level:
        for level in (Level.EXTREME, Level.HIGH, Level.MODERATE):
            if score >= self.thresholds[level]:
                return level
        return Level.LOW


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(str(path), "(file)", f"not valid TOML: {error}") from None
    return parse_policy(document, source=str(path))


@functools.cache
def default_policy() -> Policy:
    text = resources.files("projections").joinpath("policies", DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
    return parse_policy(tomllib.loads(text), source=DEFAULT_POLICY_FILE)


def parse_policy(document: Mapping[str, Any], *, source: str = "policy") -> Policy:
    """A Policy from a parsed TOML document; PolicyError names the first bad key."""
    return _Reader(source).policy(document)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, reason: str) -> PolicyError:
        return PolicyError(self.source, key, reason)

    def policy(self, document: Mapping[str, Any]) -> Policy:
        self.only(
            document,
            "",
            {
                "version",
                "time",
                "levels",
                "review_hours",
                "gravity",
                "frequency",
                "escalation",
                "multipliers",
                "alerts",
                "reviews",
                "structured_assessment",
            },
        )
        version = self.value(document, "", "version", str)
        if not version.strip():
            raise self.fail("version", "must not be empty")
        time = self.table(document, "", "time")
        levels = self.table(document, "", "levels")
        reviews = self.table(document, "", "review_hours")
        gravity = self.table(document, "", "gravity")
        frequency = self.table(document, "", "frequency")
        escalation = self.table(document, "", "escalation")
        multipliers = self.table(document, "", "multipliers")
        alerts = self.table(document, "", "alerts")
        self.only(time, "time", {"horizon_days", "half_life_days"})
        self.only(levels, "levels", {"moderate", "high", "extreme"})
        self.only(reviews, "review_hours", {level.label for level in Level})
        self.only(gravity, "gravity", {"offence", "offence_share", "event", "assessed_level", "floor"})
        self.only(frequency, "frequency", {"window_days", "step", "cap"})
        self.only(escalation, "escalation", {"recent_days", "weight"})
        self.only(multipliers, "multipliers", {"cap", "multiple_victims", "marker"})
        self.only(alerts, "alerts", {"red_flag_window_days", "violent_offences", "level_rose_from",
                                     "paging_window_hours", "page_from_level"})
        reviews_queue = self.value(document, "", "reviews", dict, default=_NONE)
        self.only(reviews_queue, "reviews", {"from_level", "overdue_hours"})
        structured = self.value(document, "", "structured_assessment", dict, default=_NONE)
        self.only(structured, "structured_assessment", {"valid_days"})

        thresholds = {
            level: self.number(levels, "levels", level.label) for level in (Level.MODERATE, Level.HIGH, Level.EXTREME)
        }
        thresholds[Level.LOW] = 0.0
        if not 0 < thresholds[Level.MODERATE] < thresholds[Level.HIGH] < thresholds[Level.EXTREME]:
            raise self.fail("levels", "thresholds must rise strictly: 0 < moderate < high < extreme")

        offence = self.table(gravity, "gravity", "offence")
        self.only(offence, "gravity.offence", OFFENCES)
        weighted_events = self.table(gravity, "gravity", "event")
        offence_share = self.table(gravity, "gravity", "offence_share")
        self.source_types(weighted_events, "gravity.event")
        self.source_types(offence_share, "gravity.offence_share")
        assessed = self.table(gravity, "gravity", "assessed_level")
        self.only(assessed, "gravity.assessed_level", set(ASSESSED_LEVELS))

        horizon_ms = self.days(time, "time", "horizon_days")
        if horizon_ms > STATE_RETENTION_DAYS * DAY_MS:
            raise self.fail(
                "time.horizon_days",
                f"must be at most {STATE_RETENTION_DAYS}, the days of events a subject's state keeps",
            )
        escalation_weight = self.number(escalation, "escalation", "weight")
        if escalation_weight > 1:
            raise self.fail("escalation.weight", "must be at most 1, or a graver earlier act could lower the score")
        frequency_cap = self.number(frequency, "frequency", "cap", minimum=1.0)

        return Policy(
            version=version,
            horizon_ms=horizon_ms,
            half_life_ms=self.days(time, "time", "half_life_days"),
            thresholds=MappingProxyType(thresholds),
            review_ms=MappingProxyType(
                {level: self.positive_int(reviews, "review_hours", level.label) * HOUR_MS for level in Level}
            ),
            offence_gravity=MappingProxyType(
                {name: self.number(offence, "gravity.offence", name) for name in sorted(OFFENCES)}
            ),
            offence_share=MappingProxyType(
                {
                    name: self.number(offence_share, "gravity.offence_share", name, maximum=1.0)
                    for name in sorted(offence_share)
                }
            ),
            event_gravity=MappingProxyType(
                {name: self.number(weighted_events, "gravity.event", name) for name in sorted(weighted_events)}
            ),
            assessed_level_gravity=MappingProxyType(
                {name: self.number(assessed, "gravity.assessed_level", name) for name in ASSESSED_LEVELS}
            ),
            floors=self.floors(gravity),
            frequency_window_ms=self.days(frequency, "frequency", "window_days"),
            frequency_step=self.number(frequency, "frequency", "step"),
            frequency_cap=frequency_cap,
            escalation_recent_ms=self.days(escalation, "escalation", "recent_days"),
            escalation_weight=escalation_weight,
            multiplier_cap=self.number(multipliers, "multipliers", "cap", minimum=1.0),
            multiple_victims_factor=self.number(multipliers, "multipliers", "multiple_victims", minimum=1.0),
            multipliers=self.marker_multipliers(self.table(multipliers, "multipliers", "marker")),
            red_flag_window_ms=self.days(alerts, "alerts", "red_flag_window_days"),
            violent_offences=self.offence_list(alerts, "alerts", "violent_offences"),
            level_rose_from=self.level(alerts, "alerts", "level_rose_from"),
            paging_window_ms=self.hours(alerts, "alerts", "paging_window_hours", default=72),
            page_from_level=self.level(alerts, "alerts", "page_from_level", default="low"),
            review_from_level=self.level(reviews_queue, "reviews", "from_level", default="high"),
            review_overdue_ms=self.hours(reviews_queue, "reviews", "overdue_hours", default=24),
            assessment_valid_ms=(self.days(structured, "structured_assessment", "valid_days")
                                 if "valid_days" in structured else None),
        )

    def floors(self, gravity: Mapping[str, Any]) -> tuple[GravityFloor, ...]:
        entries = gravity.get("floor", [])
        if not isinstance(entries, list):
            raise self.fail("gravity.floor", "must be an array of tables ([[gravity.floor]])")
        floors = []
        for index, entry in enumerate(entries):
            key = f"gravity.floor[{index}]"
            if not isinstance(entry, dict):
                raise self.fail(key, "must be a table")
            self.only(entry, key, {"markers", "gravity"})
            floors.append(
                GravityFloor(
                    markers=self.marker_list(entry, key, "markers"), gravity=self.number(entry, key, "gravity")
                )
            )
        return tuple(floors)

    def marker_multipliers(self, table: Mapping[str, Any]) -> tuple[MarkerMultiplier, ...]:
        multipliers = []
        for name in sorted(table):
            key = f"multipliers.marker.{name}"
            entry = self.table(table, "multipliers.marker", name)
            self.only(entry, key, {"factor", "markers", "window_days", "ended_by"})
            ended_by = self.value(entry, key, "ended_by", list, default=[])
            for index, source_type in enumerate(ended_by):
                if not isinstance(source_type, str) or "." not in source_type:
                    raise self.fail(
                        f"{key}.ended_by[{index}]", "must be an event type like 'police.weapons_licence_revoked'"
                    )
            multipliers.append(
                MarkerMultiplier(
                    name=name,
                    factor=self.number(entry, key, "factor", minimum=1.0),
                    markers=self.marker_list(entry, key, "markers"),
                    window_ms=self.days(entry, key, "window_days") if "window_days" in entry else None,
                    ended_by=frozenset(ended_by),
                )
            )
        return tuple(multipliers)

    def marker_list(self, table: Mapping[str, Any], path: str, name: str) -> frozenset[str]:
        markers = self.value(table, path, name, list)
        if not markers:
            raise self.fail(f"{path}.{name}", "must name at least one marker")
        for marker in markers:
            if marker not in MARKERS:
                raise self.fail(f"{path}.{name}", f"unknown marker {marker!r}")
        return frozenset(markers)

    def offence_list(self, table: Mapping[str, Any], path: str, name: str) -> frozenset[str]:
        offences = self.value(table, path, name, list)
        for offence in offences:
            if offence not in OFFENCES:
                raise self.fail(f"{path}.{name}", f"unknown offence {offence!r}")
        return frozenset(offences)

    def source_types(self, table: Mapping[str, Any], path: str) -> None:
        for name in table:
            if "." not in name:
                raise self.fail(f"{path}.{name}", "must be an event type like 'police.em_alarm'")

    def only(self, table: Mapping[str, Any], path: str, allowed: set[str] | frozenset[str]) -> None:
        for name in table:
            if name not in allowed:
                raise self.fail(_join(path, name), f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def level(self, table: Mapping[str, Any], path: str, name: str, default: str = "moderate") -> Level:
        text = self.value(table, path, name, str, default=default)
        try:
            return Level.parse(text)
        except ValueError:
            raise self.fail(_join(path, name), "must be one of low, moderate, high, extreme") from None

    def table(self, table: Mapping[str, Any], path: str, name: str) -> Mapping[str, Any]:
        found: Mapping[str, Any] = self.value(table, path, name, dict)
        return found

    def value(
        self, table: Mapping[str, Any], path: str, name: str, kind: type | tuple[type, ...], default: Any = None
    ) -> Any:
        key = _join(path, name)
        if name not in table:
            if default is not None:
                return default
            raise self.fail(key, "missing")
        value = table[name]
        # TOML booleans are Python ints: refuse `true` where a number belongs.
        if not isinstance(value, kind) or isinstance(value, bool):
            raise self.fail(key, f"must be {_KIND_NAMES[kind]}")
        return value

    def number(
        self, table: Mapping[str, Any], path: str, name: str, *, minimum: float = 0.0, maximum: float | None = None
    ) -> float:
        value = float(self.value(table, path, name, (int, float)))
        if value < minimum:
            raise self.fail(_join(path, name), f"must be at least {minimum:g}")
        if maximum is not None and value > maximum:
            raise self.fail(_join(path, name), f"must be at most {maximum:g}")
        return value

    def positive_int(self, table: Mapping[str, Any], path: str, name: str) -> int:
        value: int = self.value(table, path, name, int)
        if value <= 0:
            raise self.fail(_join(path, name), "must be a positive whole number")
        return value

    def days(self, table: Mapping[str, Any], path: str, name: str) -> int:
        return self.positive_int(table, path, name) * DAY_MS

    def hours(self, table: Mapping[str, Any], path: str, name: str, *, default: int) -> int:
        return (self.positive_int(table, path, name) if name in table else default) * HOUR_MS


# An optional table that is absent reads as empty.
_NONE: Mapping[str, Any] = MappingProxyType({})


_KIND_NAMES: Mapping[type | tuple[type, ...], str] = {
    str: "a string",
    dict: "a table",
    list: "an array",
    int: "a whole number",
    (int, float): "a number",
}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
