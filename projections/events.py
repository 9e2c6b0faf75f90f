"""The canonical risk event (record riskwatch.canonical.RiskEvent) as the pure core sees it.

Times are epoch milliseconds UTC. Only pseudonyms are carried: normalize refuses anything else.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

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
        attributes = self.attributes
        put(self, "attributes", _NO_ATTRIBUTES if not attributes else MappingProxyType(
            {_interned(key): value for key, value in sorted(attributes.items())}
        ))

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.event_time, self.event_id)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RiskEvent:
        """From the Avro record, decoded (datetimes) or not (epoch millis)."""
        return cls(
            event_id=record["event_id"],
            subject=record["subject"],
            source_type=record["source_type"],
            event_time=to_millis(record["event_time"]),
            recorded_time=to_millis(record["recorded_time"]),
            agency=record["agency"],
            region=record["region"],
            unit=record["unit"],
            offence=record.get("offence"),
            markers=frozenset(record.get("markers", ())),
            victims=tuple(
                Victim(pseudonym=victim["pseudonym"], protected_identity=bool(victim["protected_identity"]))
                for victim in record.get("victims", ())
            ),
            attributes=dict(record.get("attributes", {})),
        )

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
