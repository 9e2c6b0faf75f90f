"""The canonical risk event (record riskwatch.canonical.RiskEvent) as the pure core sees it.

Times are epoch milliseconds UTC. Only pseudonyms are carried: normalize refuses anything else.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, cast

# Fixed for ever: ids derived from it (scheduler events, alerts) must be the same in every process.
RISKWATCH_NAMESPACE = uuid.UUID("6f1c3f4e-2b7a-5d2e-9c51-8a0d4e7b3c19")

OVERRIDE = "riskwatch.override"
REVIEW_DUE = "riskwatch.review_due"
REASSESSMENT = "riskwatch.reassessment"
RISKWATCH_AGENCY = "riskwatch"

# Scheduler ticks say "look again now"; they carry no fact about the subject.
TICKS = frozenset({REVIEW_DUE, REASSESSMENT})

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


# The catalogue's enum riskwatch.Offence.
OFFENCES = frozenset(
    {
        "murder",
        "attempted_murder",
        "rape",
        "aggravated_assault",
        "gross_violation_of_integrity",
        "unlawful_threat",
        "stalking",
        "assault",
        "harassment",
        "criminal_damage",
        "contact_ban_breach",
        "other",
    }
)


class Marker(StrEnum):
    """Facts an agency event can carry (the catalogue's `markers`)."""

    STRANGULATION = "strangulation"
    WEAPON = "weapon"
    THREAT_TO_KILL = "threat_to_kill"
    CHILD_PRESENT = "child_present"
    VICTIM_FEAR = "victim_fear"
    CONTROLLING_BEHAVIOUR = "controlling_behaviour"
    SUBSTANCE_ABUSE = "substance_abuse"
    MENTAL_ILL_HEALTH = "mental_ill_health"
    SUICIDE_THREAT = "suicide_threat"
    FIREARM_ACCESS = "firearm_access"
    SEPARATION = "separation"
    RELEASE = "release"
    FURLOUGH = "furlough"
    CUSTODY = "custody"
    CONTACT_BAN = "contact_ban"
    ELECTRONIC_MONITORING = "electronic_monitoring"
    BREACH_OF_CONDITIONS = "breach_of_conditions"
    THREAT_TO_CHILDREN = "threat_to_children"
    INJURIES = "injuries"


def to_millis(moment: dt.datetime | int) -> int:
    """Epoch milliseconds from a decoded Avro timestamp-millis (aware datetime) or from millis."""
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            raise ValueError("timestamp has no time zone")
        return (moment - _EPOCH) // _MILLISECOND
    return int(moment)


@dataclass(frozen=True, slots=True)
class Victim:
    pseudonym: str
    protected_identity: bool

    def __post_init__(self) -> None:
        # a subject's events name the same few victims: one string each, however many events
        object.__setattr__(self, "pseudonym", _interned(self.pseudonym))


# Fields whose values repeat across events (the subject's within a state, the rest across all):
# interned, so an event holds a reference, not a copy. Interned strings are freed when unused.
_SHARED_TEXT = ("subject", "source_type", "agency", "region", "unit", "offence")
_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})
_MARKER_SETS: dict[frozenset[str], frozenset[str]] = {}
_MARKER_SETS_KEPT = 4096  # distinct marker sets shared; past that (never seen in practice) each event has its own


def _interned(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


def _shared_attributes(attributes: Mapping[str, str] | None) -> Mapping[str, str]:
    if not attributes:
        return _NO_ATTRIBUTES
    return MappingProxyType({_interned(key): value for key, value in sorted(attributes.items())})


def _shared_markers(markers: Iterable[str]) -> frozenset[str]:
    markers = frozenset(markers)
    shared = _MARKER_SETS.get(markers)
    if shared is not None:
        return shared
    if len(_MARKER_SETS) < _MARKER_SETS_KEPT:
        _MARKER_SETS[markers] = markers = frozenset(_interned(marker) for marker in markers)
    return markers


@dataclass(frozen=True, slots=True)
class RiskEvent:
    event_id: str
    subject: str
    source_type: str
    event_time: int
    recorded_time: int
    agency: str
    region: str
    unit: str
    offence: str | None
    markers: frozenset[str]
    victims: tuple[Victim, ...]
    attributes: Mapping[str, str]
    # what the last policy to score the event made of it (projections.scoring.Weighing): derived,
    # never stored, compared or shown; an event is scored several times per batch that touches it
    weighing_: Any = field(default=None, init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        # Frozen all the way down: a state shares its events with the states folded from it.
        # A worker keeps thousands of states: the few distinct names, marker sets and empty
        # attribute maps are shared by every event that has them, not held once per event.
        put = object.__setattr__
        for name in _SHARED_TEXT:
            value = getattr(self, name)
            if type(value) is str:
                put(self, name, sys.intern(value))
        put(self, "markers", _shared_markers(self.markers))
        put(self, "victims", tuple(self.victims))
        put(self, "attributes", _shared_attributes(self.attributes))

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.event_time, self.event_id)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RiskEvent:
        """From the Avro record, decoded (datetimes) or not (epoch millis).

        Every event the risk stage and a rebuild read comes through here, so the event is filled
        in directly, its values shared as __post_init__ shares them: through __init__ a frozen
        event has every field set twice, and making it cost nearly as much as decoding its body.
        """
        event = _new(RiskEvent)
        _set_event_id(event, record["event_id"])
        _set_subject(event, _interned(record["subject"]))
        _set_source_type(event, _interned(record["source_type"]))
        _set_event_time(event, to_millis(record["event_time"]))
        _set_recorded_time(event, to_millis(record["recorded_time"]))
        _set_agency(event, _interned(record["agency"]))
        _set_region(event, _interned(record["region"]))
        _set_unit(event, _interned(record["unit"]))
        _set_offence(event, _interned(record.get("offence")))
        _set_markers(event, _shared_markers(record.get("markers", ())))
        _set_victims(event, tuple(
            _victim(victim["pseudonym"], bool(victim["protected_identity"])) for victim in record.get("victims", ())
        ))
        _set_attributes(event, _shared_attributes(record.get("attributes")))
        _set_weighing(event, None)
        return event

    def to_record(self) -> dict[str, Any]:
        """The Avro record; timestamps as epoch millis, which the Avro encoder accepts for timestamp-millis."""
        return {
            "event_id": self.event_id,
            "subject": self.subject,
            "source_type": self.source_type,
            "event_time": self.event_time,
            "recorded_time": self.recorded_time,
            "agency": self.agency,
            "region": self.region,
            "unit": self.unit,
            "offence": self.offence,
            "markers": sorted(self.markers),
            "victims": [
                {"pseudonym": victim.pseudonym, "protected_identity": victim.protected_identity}
                for victim in self.victims
            ],
            "attributes": dict(self.attributes),
        }


# from_record's direct filling of frozen events and victims: the slots' own setters, by name.
_new = object.__new__


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    return cast(Callable[[Any, Any], None], getattr(cls, name).__set__)


_set_event_id = _setter(RiskEvent, "event_id")
_set_subject = _setter(RiskEvent, "subject")
_set_source_type = _setter(RiskEvent, "source_type")
_set_event_time = _setter(RiskEvent, "event_time")
_set_recorded_time = _setter(RiskEvent, "recorded_time")
_set_agency = _setter(RiskEvent, "agency")
_set_region = _setter(RiskEvent, "region")
_set_unit = _setter(RiskEvent, "unit")
_set_offence = _setter(RiskEvent, "offence")
_set_markers = _setter(RiskEvent, "markers")
_set_victims = _setter(RiskEvent, "victims")
_set_attributes = _setter(RiskEvent, "attributes")
_set_weighing = _setter(RiskEvent, "weighing_")
set_weighing = _set_weighing  # projections.scoring keeps what a policy makes of the event
_set_pseudonym = _setter(Victim, "pseudonym")
_set_protected_identity = _setter(Victim, "protected_identity")
assert len(RiskEvent.__slots__) == 13 and len(Victim.__slots__) == 2, "a new field must be filled by from_record too"


def _victim(pseudonym: str, protected_identity: bool) -> Victim:
    """Victim(pseudonym, protected_identity), filled in directly (see RiskEvent.from_record)."""
    victim = _new(Victim)
    _set_pseudonym(victim, _interned(pseudonym))
    _set_protected_identity(victim, protected_identity)
    return victim
