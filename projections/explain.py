"""One human sentence saying why a subject is at their level, built from the score's own parts.

It names agencies and days, never units, places or persons: it may travel with an alert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from projections.events import DAY_MS, Marker, RiskEvent
from projections.levels import Level
from projections.policy import Policy
from projections.scoring import MULTIPLE_VICTIMS, ActiveMultiplier, Scoring, Weighted

MAX_PHRASES = 3
RED_FLAG_MARKERS: frozenset[str] = frozenset({Marker.STRANGULATION, Marker.THREAT_TO_KILL})

AGENCY_NAMES: Mapping[str, str] = {
    "police": "police",
    "prosecution": "prosecution",
    "prison_probation": "prison and probation",
    "social_services": "social services",
    "healthcare": "healthcare",
    "riskwatch": "Riskwatch",
}

MARKER_LABELS: Mapping[str, str] = {
    Marker.STRANGULATION: "strangulation",
    Marker.THREAT_TO_KILL: "threat to kill",
    Marker.VICTIM_FEAR: "victim's fear",
    Marker.CONTROLLING_BEHAVIOUR: "controlling behaviour",
    Marker.SUICIDE_THREAT: "suicide threat",
    Marker.SEPARATION: "separation",
    Marker.THREAT_TO_CHILDREN: "threats to children",
    Marker.CHILD_PRESENT: "child present at violence",
    Marker.SUBSTANCE_ABUSE: "substance abuse",
    Marker.MENTAL_ILL_HEALTH: "mental ill-health",
    Marker.BREACH_OF_CONDITIONS: "breach of conditions",
    Marker.FIREARM_ACCESS: "firearms licence",
    Marker.ELECTRONIC_MONITORING: "electronic monitoring",
    Marker.CONTACT_BAN: "contact ban",
    Marker.INJURIES: "injuries",
    Marker.WEAPON: "weapon",
    Marker.RELEASE: "release",
    Marker.FURLOUGH: "furlough",
    Marker.CUSTODY: "custody",
}

EVENT_LABELS: Mapping[str, str] = {
    "police.domestic_callout": "domestic call-out",
    "police.weapons_licence_held": "firearms licence",
    "police.em_alarm": "EM alarm",
    "prosecution.contact_ban_issued": "contact ban",
    "prison_probation.supervision_breach": "supervision breach",
    "prison_probation.programme_dropped": "programme dropped",
    "prison_probation.furlough_ended": "late return from furlough",
    "social_services.concern_shared": "concern",
    "healthcare.psychiatric_emergency": "psychiatric emergency",
    "healthcare.suicide_threat": "suicide threat",
    "healthcare.threats_expressed_in_care": "threats in care",
    "healthcare.substance_abuse_treatment": "substance-abuse treatment",
    "healthcare.victim_injury_treated": "victim treated for injuries",
}

RELEASE_LABELS: Mapping[str, str] = {
    "prison_probation.released": "released from custody",
    "prosecution.detention_lifted": "released from detention",
    "prison_probation.furlough_started": "furlough started",
}


def explain(
    *,
    level: Level,
    computed_level: Level,
    override: tuple[Level, str] | None,
    scoring: Scoring,
    at: int,
    policy: Policy,
    assessment: RiskEvent | None = None,
) -> str:
    """`assessment` is the current structured assessment, if one: it is cited when it holds the level."""
    mentioned: set[str] = set()
    phrases: list[str] = []

    def add(phrase: str) -> None:
        # Two parts of the score can rest on one event; the sentence says each thing once.
        if phrase not in phrases and len(phrases) < MAX_PHRASES:
            phrases.append(phrase)

    if scoring.gravest is not None:
        add(_gravest_phrase(scoring.gravest, scoring, at, policy, mentioned))
    else:
        add(f"no harmful event in the last {policy.horizon_ms // DAY_MS} days")
    for multiplier in scoring.multipliers:
        if multiplier.name not in mentioned:
            add(_multiplier_phrase(multiplier, len(scoring.victims), at))
    if scoring.escalation > 0:
        add(f"escalating: graver acts in the last {policy.escalation_recent_ms // DAY_MS} days than before")
    if scoring.frequent_count > 1:
        add(f"{scoring.frequent_count} harmful events in the last {policy.frequency_window_ms // DAY_MS} days")
    level_phrase = _level_phrase(level, computed_level, override)
    if assessment is not None and Level.parse(assessment.attributes["assessed_level"]) >= computed_level:
        level_phrase += f" ({assessment_phrase(assessment)})"
    return f"{level_phrase}: {'; '.join(phrases)}"


INSTRUMENT_NAMES: Mapping[str, str] = {
    "SARA_SV": "SARA:SV",
    "B_SAFER": "B-SAFER",
    "PATRIARK": "PATRIARK",
    "FREDA": "FREDA",
}


def assessment_phrase(assessment: RiskEvent) -> str:
    """The structured assessment in words: instrument, conclusion, agency and date."""
    instrument = assessment.attributes.get("instrument", "")
    day = dt.datetime.fromtimestamp(assessment.event_time / 1000, tz=dt.UTC).date().isoformat()
    return (
        f"{INSTRUMENT_NAMES.get(instrument, instrument.replace('_', ' ') or 'structured')} assessment "
        f"{assessment.attributes['assessed_level']} by {agency_name(assessment.agency)} on {day}"
    )


def _level_phrase(level: Level, computed_level: Level, override: tuple[Level, str] | None) -> str:
    if override is None:
        return level.label
    override_level, analyst = override
    return f"{level.label} (computed {computed_level.label}, override {override_level.label} by {analyst})"


def _gravest_phrase(top: Weighted, scoring: Scoring, at: int, policy: Policy, mentioned: set[str]) -> str:
    event = top.event
    label, marker = event_label(event)
    # A multiplier resting last on this very event would only tell it again.
    mentioned.update(multiplier.name for multiplier in scoring.multipliers
                     if multiplier.markers and multiplier.events[-1].event_id == event.event_id)
    if marker is not None:
        mentioned.update(multiplier.name for multiplier in scoring.multipliers if marker in multiplier.markers)
    if marker in RED_FLAG_MARKERS:
        separation = _nearest_separation(event, scoring.separations, policy.red_flag_window_ms)
        if separation is not None:
            mentioned.update(
                multiplier.name for multiplier in scoring.multipliers if Marker.SEPARATION in multiplier.markers
            )
            return near_separation(event, separation)
    return f"{label} reported by {agency_name(event.agency)} {ago(at - event.event_time)}"


def _nearest_separation(event: RiskEvent, facts: tuple[RiskEvent, ...], window: int) -> RiskEvent | None:
    separations = [
        other
        for other in facts
        if Marker.SEPARATION in other.markers and abs(other.event_time - event.event_time) <= window
    ]
    if not separations:
        return None
    return min(separations, key=lambda other: (abs(other.event_time - event.event_time), other.sort_key))


def near_separation(act: RiskEvent, separation: RiskEvent) -> str:
    """The red flag in words: "strangulation reported by police 3 days after separation reported by ..."."""
    label, _ = event_label(act)
    return (
        f"{label} reported by {agency_name(act.agency)} {_apart(act, separation)} "
        f"separation reported by {agency_name(separation.agency)}"
    )


def _apart(event: RiskEvent, separation: RiskEvent) -> str:
    days = abs(event.event_time - separation.event_time) // DAY_MS
    if days == 0:
        return "the same day as"
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} {'after' if event.event_time > separation.event_time else 'before'}"


def _multiplier_phrase(multiplier: ActiveMultiplier, victims: int, at: int) -> str:
    if multiplier.name == MULTIPLE_VICTIMS:
        return f"{victims} distinct victims"
    latest = multiplier.events[-1]
    when = ago(at - latest.event_time)
    release = RELEASE_LABELS.get(latest.source_type)
    if release is not None:
        return f"{release} {when}"
    marker = min(latest.markers & multiplier.markers)
    return f"{MARKER_LABELS.get(marker, marker.replace('_', ' '))} reported by {agency_name(latest.agency)} {when}"


def event_label(event: RiskEvent) -> tuple[str, str | None]:
    """What the event reports, in words, and the marker the words come from (if one)."""
    if Marker.STRANGULATION in event.markers:
        return MARKER_LABELS[Marker.STRANGULATION], Marker.STRANGULATION
    if Marker.THREAT_TO_KILL in event.markers and event.offence in (None, "unlawful_threat", "other"):
        return MARKER_LABELS[Marker.THREAT_TO_KILL], Marker.THREAT_TO_KILL
    if event.offence is not None:
        return event.offence.replace("_", " "), None
    assessed_level = event.attributes.get("assessed_level")
    if assessed_level is not None:
        return f"{assessed_level} risk assessment ({event.attributes.get('instrument', 'unknown instrument')})", None
    alarm = event.attributes.get("alarm")
    if alarm is not None:
        return f"EM alarm ({alarm.replace('_', ' ')})", None
    label = EVENT_LABELS.get(event.source_type)
    if label is not None:
        return label, None
    return event.source_type.split(".", 1)[-1].replace("_", " "), None


def agency_name(agency: str) -> str:
    return AGENCY_NAMES.get(agency, agency)


def ago(milliseconds: int) -> str:
    days = milliseconds // DAY_MS
    if days == 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"
