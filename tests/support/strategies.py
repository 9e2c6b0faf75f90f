"""Hypothesis strategies of the pure core's inputs: risk events of one subject and the logs they make."""

from __future__ import annotations

from hypothesis import strategies as st

from projections.events import DAY_MS, OFFENCES, OVERRIDE, TICKS, Marker, RiskEvent, Victim
from projections.levels import Level
from tests.support.scenario import SUBJECT, T0
from tests.support.ticks import stored_tick

SPAN_MS = 7 * 365 * DAY_MS  # longer than the state keeps, so pruning is exercised

FACT_TYPES = [
    "police.crime_report",
    "police.arrest",
    "police.domestic_callout",
    "police.risk_assessment",
    "police.weapons_licence_held",
    "police.weapons_licence_revoked",
    "police.em_alarm",
    "prosecution.contact_ban_breach_reported",
    "prosecution.detention_decided",
    "prison_probation.released",
    "prison_probation.supervision_breach",
    "social_services.separation_reported",
    "social_services.concern_shared",
    "healthcare.suicide_threat",
    "healthcare.victim_injury_treated",
]
OFFENCE_TYPES = {
    "police.crime_report",
    "police.arrest",
    "prosecution.contact_ban_breach_reported",
    "prosecution.detention_decided",
}


@st.composite
def risk_events(draw: st.DrawFn, span_ms: int = SPAN_MS) -> RiskEvent:
    source_type = draw(st.sampled_from([*FACT_TYPES, OVERRIDE]))
    at = T0 + draw(st.integers(0, span_ms // 3_600_000)) * 3_600_000  # hourly, so equal times occur
    attributes: dict[str, str] = {}
    if source_type == OVERRIDE:
        attributes = {
            "override_level": draw(st.sampled_from([level.label for level in Level])),
            "reason": "r",
            "analyst": "a",
        }
    elif source_type == "police.risk_assessment":
        attributes = {"instrument": "SARA_SV", "assessed_level": draw(st.sampled_from(["low", "moderate", "high"]))}
    return RiskEvent(
        event_id=f"e{draw(st.integers(0, 10**6)):07d}",
        subject=SUBJECT,
        source_type=source_type,
        event_time=at,
        recorded_time=at,
        agency=source_type.split(".")[0],
        region=draw(st.sampled_from(["syd", "vast", "nord"])),
        unit="Enhet",
        offence=draw(st.sampled_from(sorted(OFFENCES))) if source_type in OFFENCE_TYPES else None,
        markers=draw(st.frozensets(st.sampled_from(list(Marker)), max_size=3))
        if source_type != OVERRIDE
        else frozenset(),
        victims=tuple(
            draw(
                st.lists(
                    st.builds(Victim, st.sampled_from(["v1", "v2", "v3"]), st.booleans()),
                    max_size=2,
                    unique_by=lambda v: v.pseudonym,
                )
            )
        ),
        attributes=attributes,
    )


event_logs = st.lists(risk_events(), min_size=0, max_size=25, unique_by=lambda event: event.event_id)
# within a year: nothing falls behind the state's retention, whatever the arrival order
recent_logs = st.lists(risk_events(365 * DAY_MS), min_size=0, max_size=25, unique_by=lambda event: event.event_id)
assessment_times = st.integers(T0 - DAY_MS, T0 + SPAN_MS + 400 * DAY_MS)

# the scheduler's ticks about SUBJECT at any hour of the span
ticks = st.builds(
    lambda kind, hours: stored_tick(kind, SUBJECT, T0 + hours * 3_600_000),
    st.sampled_from(sorted(TICKS)),
    st.integers(0, SPAN_MS // 3_600_000),
)
