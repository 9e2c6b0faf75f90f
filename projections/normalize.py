"""From an agency event (decoded Avro record) to the canonical risk event.

This is where the agencies' vocabularies meet: each event type says which canonical facts
(offence, markers, attributes) it carries. Free-text fields (concern, description, reason) are
not carried over: they may name people, and the canonical stream carries pseudonyms only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from projections.events import (
    OFFENCES,
    OVERRIDE,
    RISKWATCH_AGENCY,
    Marker,
    RiskEvent,
    Victim,
    to_millis,
)
from projections.levels import Level

PSEUDONYM = "pseudonym"
VICTIM_ROLE = "victim"
# OSL 10 kap. 18 c §: the only basis on which these agencies may share with the police.
SECRECY_BREAKING_BASIS = "osl_10_18c"
AGENCIES_NEEDING_SECRECY_BREAKING_BASIS = frozenset({"social_services", "healthcare"})
RISKWATCH_UNIT = "Riskwatch"


class NotNormalizable(ValueError):
    """The agency event cannot become a canonical risk event; the reason names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Facts:
    offence: str | None = None
    markers: frozenset[str] = frozenset()
    attributes: Mapping[str, str] = field(default_factory=dict)


Payload = Mapping[str, Any]


def _flags(payload: Payload, flag_to_marker: Mapping[str, Marker]) -> frozenset[str]:
    return frozenset(marker for flag, marker in flag_to_marker.items() if payload.get(flag, False))


def _date(payload: Payload, name: str) -> str:
    value = _required(payload, name)
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise NotNormalizable(f"payload.{name}: not a date") from None


def _required(payload: Payload, name: str) -> Any:
    try:
        return payload[name]
    except KeyError:
        raise NotNormalizable(f"payload.{name}: missing") from None


def _offence(payload: Payload) -> str:
    offence = str(_required(payload, "offence"))
    if offence not in OFFENCES:
        raise NotNormalizable(f"payload.offence: unknown offence category {offence!r}")
    return offence


def _non_empty(**attributes: str) -> dict[str, str]:
    return {name: value for name, value in attributes.items() if value}


def _assessment(payload: Payload) -> _Facts:
    return _Facts(
        attributes={
            "instrument": str(_required(payload, "instrument")),
            "assessed_level": str(_required(payload, "level")),
        }
    )


def _crime_report(payload: Payload) -> _Facts:
    markers = _flags(
        payload,
        {
            "strangulation": Marker.STRANGULATION,
            "weapon": Marker.WEAPON,
            "threat_to_kill": Marker.THREAT_TO_KILL,
            "child_present": Marker.CHILD_PRESENT,
            "victim_fear": Marker.VICTIM_FEAR,
            "controlling_behaviour": Marker.CONTROLLING_BEHAVIOUR,
            "substance_influence": Marker.SUBSTANCE_ABUSE,
        },
    )
    return _Facts(
        offence=_offence(payload),
        markers=markers,
        attributes=_non_empty(offence_code=str(payload.get("offence_code", ""))),
    )


def _arrest(payload: Payload) -> _Facts:
    return _Facts(
        offence=_offence(payload),
        attributes=_non_empty(offence_code=str(payload.get("suspected_offence_code", ""))),
    )


def _domestic_callout(payload: Payload) -> _Facts:
    return _Facts(markers=_flags(payload, {"injuries": Marker.INJURIES, "child_present": Marker.CHILD_PRESENT}))


def _em_alarm(payload: Payload) -> _Facts:
    # A zone breach or a tampered tag both break the conditions the monitoring enforces.
    return _Facts(
        markers=frozenset({Marker.ELECTRONIC_MONITORING, Marker.BREACH_OF_CONDITIONS}),
        attributes={"alarm": str(_required(payload, "alarm"))},
    )


def _contact_ban_issued(payload: Payload) -> _Facts:
    markers = {Marker.CONTACT_BAN}
    if payload.get("electronic_monitoring", False):
        markers.add(Marker.ELECTRONIC_MONITORING)
    return _Facts(
        markers=frozenset(markers),
        attributes={
            "ban_type": str(_required(payload, "ban_type")),
            "valid_from": _date(payload, "valid_from"),
            "valid_to": _date(payload, "valid_to"),
        },
    )


def _contact_ban_breach(payload: Payload) -> _Facts:
    markers = {Marker.BREACH_OF_CONDITIONS}
    if payload.get("electronic_monitoring", False):
        markers.add(Marker.ELECTRONIC_MONITORING)
    return _Facts(offence="contact_ban_breach", markers=frozenset(markers))


def _offence_only(payload: Payload) -> _Facts:
    return _Facts(offence=_offence(payload))


def _detention_decided(payload: Payload) -> _Facts:
    return _Facts(offence=_offence(payload), markers=frozenset({Marker.CUSTODY}))


def _release_scheduled(payload: Payload) -> _Facts:
    return _Facts(
        attributes={
            "release_date": _date(payload, "release_date"),
            "release_kind": str(_required(payload, "release_kind")),
        }
    )


def _released(payload: Payload) -> _Facts:
    return _Facts(
        markers=frozenset({Marker.RELEASE}), attributes={"release_kind": str(_required(payload, "release_kind"))}
    )


def _furlough_granted(payload: Payload) -> _Facts:
    return _Facts(attributes={"start_date": _date(payload, "start_date"), "end_date": _date(payload, "end_date")})


def _furlough_started(payload: Payload) -> _Facts:
    return _Facts(
        markers=frozenset({Marker.FURLOUGH}),
        attributes={"expected_return_date": _date(payload, "expected_return_date")},
    )


def _furlough_ended(payload: Payload) -> _Facts:
    on_time = bool(payload.get("returned_on_time", True))
    return _Facts(
        markers=frozenset() if on_time else frozenset({Marker.BREACH_OF_CONDITIONS}),
        attributes={"returned_on_time": "true" if on_time else "false"},
    )


def _programme(payload: Payload) -> _Facts:
    return _Facts(attributes={"programme": str(_required(payload, "programme"))})


def _concern_shared(payload: Payload) -> _Facts:
    return _Facts(
        markers=_flags(
            payload,
            {
                "victim_fear": Marker.VICTIM_FEAR,
                "controlling_behaviour": Marker.CONTROLLING_BEHAVIOUR,
                "threat_to_children": Marker.THREAT_TO_CHILDREN,
                "substance_abuse": Marker.SUBSTANCE_ABUSE,
            },
        )
    )


def _separation_reported(payload: Payload) -> _Facts:
    imminent = bool(payload.get("imminent", False))
    return _Facts(markers=frozenset({Marker.SEPARATION}), attributes={"imminent": "true" if imminent else "false"})


def _suicide_threat(payload: Payload) -> _Facts:
    attempt = bool(payload.get("attempt", False))
    return _Facts(markers=frozenset({Marker.SUICIDE_THREAT}), attributes={"attempt": "true" if attempt else "false"})


def _threats_in_care(payload: Payload) -> _Facts:
    return _Facts(
        markers=_flags(
            payload, {"threat_to_kill": Marker.THREAT_TO_KILL, "threat_to_children": Marker.THREAT_TO_CHILDREN}
        )
    )


def _victim_injury_treated(payload: Payload) -> _Facts:
    markers = {Marker.INJURIES}
    if payload.get("consistent_with_strangulation", False):
        markers.add(Marker.STRANGULATION)
    return _Facts(markers=frozenset(markers))


def _marker(marker: Marker) -> Callable[[Payload], _Facts]:
    return lambda payload: _Facts(markers=frozenset({marker}))


def _nothing(payload: Payload) -> _Facts:
    return _Facts()


_FACTS_BY_EVENT_TYPE: Mapping[str, Callable[[Payload], _Facts]] = {
    "police.arrest": _arrest,
    "police.crime_report": _crime_report,
    "police.domestic_callout": _domestic_callout,
    "police.risk_assessment": _assessment,
    "police.weapons_licence_held": lambda payload: _Facts(
        markers=frozenset({Marker.FIREARM_ACCESS}),
        attributes={"weapon_kind": str(payload.get("weapon_kind", "firearm"))},
    ),
    "police.weapons_licence_revoked": _nothing,
    "police.em_alarm": _em_alarm,
    "prosecution.contact_ban_issued": _contact_ban_issued,
    "prosecution.contact_ban_ended": _nothing,
    "prosecution.contact_ban_breach_reported": _contact_ban_breach,
    "prosecution.charge_filed": _offence_only,
    "prosecution.detention_decided": _detention_decided,
    "prosecution.detention_lifted": _marker(Marker.RELEASE),
    "prison_probation.custody_started": lambda payload: _Facts(
        markers=frozenset({Marker.CUSTODY}), attributes={"facility": str(_required(payload, "facility"))}
    ),
    "prison_probation.release_scheduled": _release_scheduled,
    "prison_probation.released": _released,
    "prison_probation.furlough_granted": _furlough_granted,
    "prison_probation.furlough_started": _furlough_started,
    "prison_probation.furlough_ended": _furlough_ended,
    "prison_probation.probation_started": lambda payload: _Facts(attributes={"end_date": _date(payload, "end_date")}),
    "prison_probation.probation_ended": _nothing,
    "prison_probation.programme_enrolled": _programme,
    "prison_probation.programme_completed": _programme,
    "prison_probation.programme_dropped": _programme,
    "prison_probation.supervision_breach": _marker(Marker.BREACH_OF_CONDITIONS),
    "social_services.concern_shared": _concern_shared,
    "social_services.risk_assessment": _assessment,
    "social_services.separation_reported": _separation_reported,
    "healthcare.psychiatric_emergency": _marker(Marker.MENTAL_ILL_HEALTH),
    "healthcare.suicide_threat": _suicide_threat,
    "healthcare.threats_expressed_in_care": _threats_in_care,
    "healthcare.substance_abuse_treatment": _marker(Marker.SUBSTANCE_ABUSE),
    "healthcare.victim_injury_treated": _victim_injury_treated,
}

EVENT_TYPES: frozenset[str] = frozenset(_FACTS_BY_EVENT_TYPE)


def normalize(event_type: str, record: Mapping[str, Any]) -> RiskEvent:
    """The canonical risk event for one decoded agency event; NotNormalizable says why not."""
    facts_of = _FACTS_BY_EVENT_TYPE.get(event_type)
    if facts_of is None:
        raise NotNormalizable(f"event_type: unknown event type {event_type!r}")
    if record.get("event_type") != event_type:
        raise NotNormalizable(f"event_type: record says {record.get('event_type')!r}, expected {event_type!r}")
    agency = str(_envelope(record, "agency"))
    if agency != event_type.split(".", 1)[0]:
        raise NotNormalizable(f"agency: {agency!r} does not match event type {event_type!r}")
    if agency in AGENCIES_NEEDING_SECRECY_BREAKING_BASIS and record.get("legal_basis") != SECRECY_BREAKING_BASIS:
        raise NotNormalizable(f"legal_basis: {agency} events require {SECRECY_BREAKING_BASIS}")
    subject = _pseudonym(_envelope(record, "subject"), "subject")
    facts = facts_of(_envelope(record, "payload"))
    try:
        event_time = to_millis(_envelope(record, "event_time"))
        recorded_time = to_millis(_envelope(record, "recorded_time"))
    except ValueError as error:
        raise NotNormalizable(f"event_time/recorded_time: {error}") from None
    return RiskEvent(
        event_id=str(_envelope(record, "event_id")),
        subject=subject,
        source_type=event_type,
        event_time=event_time,
        recorded_time=recorded_time,
        agency=agency,
        region=str(_envelope(record, "region")),
        unit=str(_envelope(record, "unit")),
        offence=facts.offence,
        markers=facts.markers,
        victims=_victims(record.get("related_persons", ())),
        attributes=facts.attributes,
    )


def _envelope(record: Mapping[str, Any], name: str) -> Any:
    try:
        return record[name]
    except KeyError:
        raise NotNormalizable(f"{name}: missing") from None


def _pseudonym(person: Mapping[str, Any], where: str) -> str:
    # The reason never quotes the value: it may be a clear identity.
    if person.get("kind") != PSEUDONYM or not person.get("value"):
        raise NotNormalizable(f"{where}: must be a pseudonym, got kind {person.get('kind')!r}")
    return str(person["value"])


def _victims(related_persons: Any) -> tuple[Victim, ...]:
    victims: dict[str, bool] = {}
    for index, related in enumerate(related_persons):
        # Every related person must be pseudonymised, even those the model does not use.
        pseudonym = _pseudonym(related.get("person", {}), f"related_persons[{index}].person")
        if related.get("role") == VICTIM_ROLE:
            victims[pseudonym] = victims.get(pseudonym, False) or bool(related.get("protected_identity", False))
    return tuple(Victim(pseudonym, protected) for pseudonym, protected in sorted(victims.items()))


def override_event(
    *,
    event_id: str,
    subject: str,
    level: Level | str,
    reason: str,
    analyst: str,
    at: int,
    region: str,
    unit: str = RISKWATCH_UNIT,
    recorded_at: int | None = None,
) -> RiskEvent:
    """An analyst's override of the computed level; a reason is mandatory."""
    override_level = level if isinstance(level, Level) else Level.parse(level)
    if not reason.strip():
        raise NotNormalizable("reason: an override needs a reason")
    if not analyst.strip():
        raise NotNormalizable("analyst: an override needs the analyst's name")
    return RiskEvent(
        event_id=event_id,
        subject=subject,
        source_type=OVERRIDE,
        event_time=at,
        recorded_time=at if recorded_at is None else recorded_at,
        agency=RISKWATCH_AGENCY,
        region=region,
        unit=unit,
        offence=None,
        markers=frozenset(),
        victims=(),
        attributes={"override_level": override_level.label, "reason": reason, "analyst": analyst},
    )

