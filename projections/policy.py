"""The risk policy: every number the model uses, from one versioned TOML file.

The file is read through pydantic models of its tables (frozen, strict: a TOML boolean is
not a number, a float not a whole number, and an unknown key is refused); the result is a
plain frozen Policy, which the model reads on its hot path. A malformed file is refused with
the key and the reason, never half-loaded.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

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
    try:
        policy_file = PolicyFile.model_validate(document)
    except ValidationError as error:
        key, reason = _key_and_reason(error.errors()[0])
        raise PolicyError(source, key, reason) from None
    return policy_file.policy()


# ---- the file's tables ------------------------------------------------------------------------
# Each rule beyond a type or a bound raises _refused(reason, key): `key` is the entry below the
# place the validator runs at ("" for that place itself), so the error names the entry.


def _refused(reason: str, key: str = "") -> PydanticCustomError:
    return PydanticCustomError("policy", "{reason}", {"reason": reason, "key": key})


class _Table(BaseModel):
    """A TOML table: every key known, every value of its type."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            _only(data, set(cls.model_fields))
        return data


def _only(table: Mapping[str, Any], allowed: set[str] | frozenset[str]) -> None:
    for name in table:
        if name not in allowed:
            raise _refused(f"unknown key; expected one of {', '.join(sorted(allowed))}", str(name))


def _known_level(text: str) -> str:
    try:
        Level.parse(text)
    except ValueError:
        raise _refused("must be one of low, moderate, high, extreme") from None
    return text


def _marker_list(markers: list[Any]) -> list[Any]:
    if not markers:
        raise _refused("must name at least one marker")
    for marker in markers:
        if marker not in MARKERS:
            raise _refused(f"unknown marker {marker!r}")
    return markers


def _offence_list(offences: list[Any]) -> list[Any]:
    for offence in offences:
        if offence not in OFFENCES:
            raise _refused(f"unknown offence {offence!r}")
    return offences


def _source_types(table: Any) -> Any:
    """Keys of event types (police.em_alarm), checked before their values."""
    if isinstance(table, Mapping):
        for name in table:
            if "." not in name:
                raise _refused("must be an event type like 'police.em_alarm'", name)
    return table


Number = Annotated[float, Field(ge=0.0)]
Factor = Annotated[float, Field(ge=1.0)]  # a multiplier or cap: never lowers the score
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Whole = Annotated[int, Field(gt=0)]
LevelName = Annotated[str, AfterValidator(_known_level)]
Markers = Annotated[list[Any], AfterValidator(_marker_list)]
Offences = Annotated[list[Any], AfterValidator(_offence_list)]


class TimeTable(_Table):
    horizon_days: Whole
    half_life_days: Whole

    @field_validator("horizon_days")
    @classmethod
    def _within_retention(cls, days: int) -> int:
        if days > STATE_RETENTION_DAYS:
            raise _refused(f"must be at most {STATE_RETENTION_DAYS}, the days of events a subject's state keeps")
        return days


class LevelsTable(_Table):
    moderate: Number
    high: Number
    extreme: Number

    @model_validator(mode="after")
    def _rising(self) -> LevelsTable:
        if not 0 < self.moderate < self.high < self.extreme:
            raise _refused("thresholds must rise strictly: 0 < moderate < high < extreme")
        return self


class ReviewHoursTable(_Table):
    low: Whole
    moderate: Whole
    high: Whole
    extreme: Whole


class AssessedLevelTable(_Table):
    low: Number
    moderate: Number
    high: Number


class FloorTable(_Table):
    markers: Markers
    gravity: Number


class GravityTable(_Table):
    offence: dict[str, Number]
    offence_share: dict[str, Share]
    event: dict[str, Number]
    assessed_level: AssessedLevelTable
    floor: tuple[FloorTable, ...] = ()

    @field_validator("offence", mode="before")
    @classmethod
    def _every_offence(cls, table: Any) -> Any:
        if isinstance(table, Mapping):
            _only(table, OFFENCES)
            for name in sorted(OFFENCES):
                if name not in table:
                    raise _refused("missing", name)
        return table

    _event_types = field_validator("offence_share", "event", mode="before")(_source_types)

    @field_validator("floor", mode="before")
    @classmethod
    def _array_of_tables(cls, entries: Any) -> Any:
        if not isinstance(entries, list):
            raise _refused("must be an array of tables ([[gravity.floor]])")
        return tuple(entries)


class FrequencyTable(_Table):
    # Fields in the order they were always checked in: the first error of a table is the same.
    cap: Factor
    window_days: Whole
    step: Number


class EscalationTable(_Table):
    weight: Number
    recent_days: Whole

    @field_validator("weight")
    @classmethod
    def _not_above_one(cls, weight: float) -> float:
        if weight > 1:
            raise _refused("must be at most 1, or a graver earlier act could lower the score")
        return weight


class MarkerMultiplierTable(_Table):
    factor: Factor
    markers: Markers
    window_days: Whole | None = None
    ended_by: list[Any] = []

    @field_validator("ended_by")
    @classmethod
    def _event_types(cls, ended_by: list[Any]) -> list[Any]:
        for index, source_type in enumerate(ended_by):
            if not isinstance(source_type, str) or "." not in source_type:
                raise _refused("must be an event type like 'police.weapons_licence_revoked'", f"[{index}]")
        return ended_by


class MultipliersTable(_Table):
    cap: Factor
    multiple_victims: Factor
    marker: dict[str, MarkerMultiplierTable]


class AlertsTable(_Table):
    red_flag_window_days: Whole
    violent_offences: Offences
    level_rose_from: LevelName = "moderate"
    paging_window_hours: Whole = 72
    page_from_level: LevelName = "low"


class ReviewsTable(_Table):
    from_level: LevelName = "high"
    overdue_hours: Whole = 24


class StructuredAssessmentTable(_Table):
    valid_days: Whole | None = None


class PolicyFile(_Table):
    """The policy file as written; `policy()` is what the model reads."""

    version: str
    time: TimeTable
    levels: LevelsTable
    review_hours: ReviewHoursTable
    gravity: GravityTable
    frequency: FrequencyTable
    escalation: EscalationTable
    multipliers: MultipliersTable
    alerts: AlertsTable
    reviews: ReviewsTable = ReviewsTable()
    structured_assessment: StructuredAssessmentTable = StructuredAssessmentTable()

    @field_validator("version")
    @classmethod
    def _not_empty(cls, version: str) -> str:
        if not version.strip():
            raise _refused("must not be empty")
        return version

    def policy(self) -> Policy:
        levels, gravity, multipliers, alerts = self.levels, self.gravity, self.multipliers, self.alerts
        thresholds = {Level.MODERATE: levels.moderate, Level.HIGH: levels.high, Level.EXTREME: levels.extreme,
                      Level.LOW: 0.0}
        return Policy(
            version=self.version,
            horizon_ms=self.time.horizon_days * DAY_MS,
            half_life_ms=self.time.half_life_days * DAY_MS,
            thresholds=MappingProxyType(thresholds),
            review_ms=MappingProxyType(
                {level: getattr(self.review_hours, level.label) * HOUR_MS for level in Level}
            ),
            offence_gravity=MappingProxyType({name: gravity.offence[name] for name in sorted(OFFENCES)}),
            offence_share=MappingProxyType(dict(sorted(gravity.offence_share.items()))),
            event_gravity=MappingProxyType(dict(sorted(gravity.event.items()))),
            assessed_level_gravity=MappingProxyType(
                {name: getattr(gravity.assessed_level, name) for name in ASSESSED_LEVELS}
            ),
            floors=tuple(GravityFloor(frozenset(floor.markers), floor.gravity) for floor in gravity.floor),
            frequency_window_ms=self.frequency.window_days * DAY_MS,
            frequency_step=self.frequency.step,
            frequency_cap=self.frequency.cap,
            escalation_recent_ms=self.escalation.recent_days * DAY_MS,
            escalation_weight=self.escalation.weight,
            multiplier_cap=multipliers.cap,
            multiple_victims_factor=multipliers.multiple_victims,
            multipliers=tuple(
                MarkerMultiplier(
                    name=name,
                    factor=entry.factor,
                    markers=frozenset(entry.markers),
                    window_ms=None if entry.window_days is None else entry.window_days * DAY_MS,
                    ended_by=frozenset(entry.ended_by),
                )
                for name, entry in sorted(multipliers.marker.items())
            ),
            red_flag_window_ms=alerts.red_flag_window_days * DAY_MS,
            violent_offences=frozenset(alerts.violent_offences),
            level_rose_from=Level.parse(alerts.level_rose_from),
            paging_window_ms=alerts.paging_window_hours * HOUR_MS,
            page_from_level=Level.parse(alerts.page_from_level),
            review_from_level=Level.parse(self.reviews.from_level),
            review_overdue_ms=self.reviews.overdue_hours * HOUR_MS,
            assessment_valid_ms=(None if self.structured_assessment.valid_days is None
                                 else self.structured_assessment.valid_days * DAY_MS),
        )


# ---- pydantic's errors in the policy's words ------------------------------------------------------

_TYPE_REASONS: Mapping[str, str] = {
    "missing": "missing",
    "string_type": "must be a string",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "list_type": "must be an array",
    "tuple_type": "must be an array",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "greater_than": "must be a positive whole number",  # the only gt bound: whole numbers above 0
}


def _key_and_reason(error: ErrorDetails) -> tuple[str, str]:
    loc = error["loc"]
    context = error.get("ctx") or {}
    kind = error["type"]
    if kind == "policy":
        below = str(context["key"])
        if below:
            loc = (*loc, int(below[1:-1]) if below.startswith("[") else below)
        return _key(loc), str(context["reason"])
    key = _key(loc)
    if kind == "greater_than_equal":
        return key, f"must be at least {float(context['ge']):g}"
    if kind == "less_than_equal":
        return key, f"must be at most {float(context['le']):g}"
    return key, _TYPE_REASONS.get(kind, error["msg"])


def _key(loc: tuple[int | str, ...]) -> str:
    """("gravity", "floor", 0, "markers") -> gravity.floor[0].markers."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key = f"{key}.{part}" if key else str(part)
    return key or "(file)"
