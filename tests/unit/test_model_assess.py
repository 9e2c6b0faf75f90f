"""assess: gravity, recency, frequency, escalation, markers, overrides, reviews and the sentence."""

from __future__ import annotations

import dataclasses
import json

import pytest

from projections.events import DAY_MS, HOUR_MS, REVIEW_DUE, RiskEvent, Victim
from projections.levels import Level
from projections.model import Assessment, SubjectState, assess, empty_state, fold, fold_all
from projections.normalize import override_event
from projections.policy import default_policy
from projections.scoring import event_gravity
from tests.support.scenario import SUBJECT, T0
from tests.support.scenario import risk_event as event
from tests.support.ticks import stored_tick

POLICY = default_policy()


def assault(event_id: str, day: float, *markers: str, offence: str = "assault") -> RiskEvent:
    return event(event_id, day, "police.crime_report", offence=offence, markers=markers)


def state_of(*events: RiskEvent) -> SubjectState:
    return fold_all(empty_state(SUBJECT), events)


def at_day(state: SubjectState, day: float) -> Assessment:
    return assess(state, T0 + int(day * DAY_MS), POLICY)


def contribution(assessment: Assessment, factor: str) -> float | None:
    return next((c.value for c in assessment.contributions if c.factor == factor), None)


def test_nothing_known_is_low_with_no_review() -> None:
    assessment = at_day(empty_state(SUBJECT), 0)
    assert (assessment.level, assessment.score, assessment.next_review_at) == (Level.LOW, 0.0, None)
    assert assessment.explanation == "low: no harmful event in the last 1825 days"
    assert assessment.policy_version == "2026.2"


@pytest.mark.parametrize(
    ("risk_event", "gravity"),
    [
        (assault("a", 0), 4),
        (assault("a", 0, "strangulation"), 8),  # a strangulation report counts at least 8
        (assault("a", 0, "threat_to_kill", offence="harassment"), 6),
        (
            event(
                "a",
                0,
                "prosecution.contact_ban_breach_reported",
                offence="contact_ban_breach",
                markers=["breach_of_conditions"],
            ),
            5,
        ),
        (
            event(
                "a",
                0,
                "prosecution.contact_ban_breach_reported",
                offence="contact_ban_breach",
                markers=["breach_of_conditions", "electronic_monitoring"],
            ),
            6,
        ),
        (event("a", 0, "police.arrest", offence="rape"), 2),  # confirms a report, a quarter of its weight
        (
            event(
                "a",
                0,
                "police.em_alarm",
                markers=["breach_of_conditions", "electronic_monitoring"],
                attributes={"alarm": "tamper"},
            ),
            6,
        ),
        (event("a", 0, "police.risk_assessment", attributes={"instrument": "SARA_SV", "assessed_level": "high"}), 6),
        (event("a", 0, "social_services.separation_reported", markers=["separation"]), 0),
    ],
)
def test_event_gravity(risk_event: RiskEvent, gravity: float) -> None:
    assert event_gravity(risk_event, POLICY) == gravity


def test_weight_halves_every_half_life_and_ends_at_the_horizon() -> None:
    state = state_of(assault("a", 0))
    assert at_day(state, 0).score == 4.0
    assert at_day(state, 180).score == 2.0
    assert at_day(state, 360).score == 1.0
    assert at_day(state, 1825).components.gravity == 4
    assert at_day(state, 1826).components.gravity == 0
    # An assessment at a time sees nothing that happened after it.
    assert at_day(state, -1).score == 0


def test_frequency_counts_harmful_events_within_the_year() -> None:
    state = state_of(
        assault("a", 0), assault("b", 100), assault("c", 200), event("d", 201, "police.weapons_licence_revoked")
    )
    assert at_day(state, 201).components.frequency == 1.2
    assert at_day(state, 400).components.frequency == 1.1


def test_escalation_needs_a_graver_recent_act_than_before() -> None:
    escalating = at_day(state_of(assault("a", 0), assault("b", 200, offence="aggravated_assault")), 200)
    assert escalating.components.escalation > 0
    assert contribution(escalating, "escalation") == escalating.components.escalation
    calming = at_day(state_of(assault("a", 0, offence="aggravated_assault"), assault("b", 200)), 200)
    assert calming.components.escalation == 0
    assert contribution(calming, "escalation") is None


def test_marker_windows() -> None:
    state = state_of(event("s", 0, "social_services.separation_reported", markers=["separation"]), assault("a", 0))
    assert contribution(at_day(state, 90), "separation") == 1.8
    assert contribution(at_day(state, 91), "separation") is None


def test_a_revoked_licence_ends_firearm_access() -> None:
    held = event("h", 0, "police.weapons_licence_held", markers=["firearm_access"])
    revoked = event("r", 10, "police.weapons_licence_revoked")
    assert contribution(at_day(state_of(held, assault("a", 20)), 20), "firearm_access") == 2.0
    assert contribution(at_day(state_of(held, revoked, assault("a", 20)), 20), "firearm_access") is None
    held_again = event("h2", 15, "police.weapons_licence_held", markers=["firearm_access"])
    assert contribution(at_day(state_of(held, revoked, held_again, assault("a", 20)), 20), "firearm_access") == 2.0


def test_multipliers_are_capped() -> None:
    report = assault("a", 0, "strangulation", "victim_fear", "controlling_behaviour", "child_present")
    assessment = at_day(
        state_of(report, event("s", 0, "social_services.separation_reported", markers=["separation"])), 0
    )
    assert assessment.components.markers == POLICY.multiplier_cap
    assert assessment.score == 8 * POLICY.multiplier_cap


def test_distinct_victims_multiply() -> None:
    first = event("a", 0, "police.crime_report", offence="assault", victims=[Victim("v1", False)])
    second = event("b", 1, "police.crime_report", offence="assault", victims=[Victim("v2", True), Victim("v1", False)])
    assessment = at_day(state_of(first, second), 1)
    assert assessment.components.victims == 2
    assert contribution(assessment, "multiple_victims") == 1.5
    assert "2 distinct victims" in assessment.explanation


def test_override_sets_the_level_beside_the_computed_one() -> None:
    lower = override_event(
        event_id="ov",
        subject=SUBJECT,
        level="low",
        reason="victim moved abroad",
        analyst="analyst-3",
        at=T0 + DAY_MS,
        region="syd",
    )
    assessment = at_day(state_of(assault("a", 0, "strangulation"), lower), 1)
    assert assessment.computed_level == Level.HIGH
    assert assessment.level == Level.LOW
    assert assessment.override is not None
    assert (assessment.override.level, assessment.override.reason, assessment.override.event_id) == (
        Level.LOW,
        "victim moved abroad",
        "ov",
    )
    assert assessment.explanation.startswith("low (computed high, override low by analyst-3)")


def test_a_later_harmful_event_lifts_a_lowering_override_but_not_a_raising_one() -> None:
    def override(level: str) -> RiskEvent:
        return override_event(
            event_id="ov", subject=SUBJECT, level=level, reason="r", analyst="a", at=T0 + DAY_MS, region="syd"
        )

    later_strangulation = assault("b", 2, "strangulation")
    lowered = at_day(state_of(assault("a", 0), override("low"), later_strangulation), 2)
    assert lowered.level == lowered.computed_level == Level.HIGH
    raised = at_day(state_of(assault("a", 0), override("extreme"), later_strangulation), 2)
    assert (raised.level, raised.computed_level) == (Level.EXTREME, Level.HIGH)


def test_the_latest_override_wins() -> None:
    first = override_event(
        event_id="ov1", subject=SUBJECT, level="extreme", reason="r", analyst="a", at=T0 + DAY_MS, region="syd"
    )
    second = override_event(
        event_id="ov0", subject=SUBJECT, level="moderate", reason="r", analyst="b", at=T0 + 2 * DAY_MS, region="syd"
    )
    assert at_day(state_of(second, first, assault("a", 0)), 3).level == Level.MODERATE


def test_reviews_fall_due_on_the_cycle_of_the_level() -> None:
    state = state_of(assault("a", 0, "strangulation"))  # high: every 7 days from the event
    assert at_day(state, 0).next_review_at == T0 + 168 * HOUR_MS
    assert at_day(state, 7).next_review_at == T0 + 2 * 168 * HOUR_MS
    assert at_day(state, 8).next_review_at == T0 + 2 * 168 * HOUR_MS


def test_explanation_names_the_top_factors_with_agencies_and_days() -> None:
    state = state_of(
        event("s", 0, "social_services.separation_reported", markers=["separation"]),
        assault("a", 3, "strangulation"),
        event("r", 10, "prison_probation.released", markers=["release"], attributes={"release_kind": "conditional"}),
    )
    explanation = at_day(state, 22).explanation
    assert explanation == (
        "extreme: strangulation reported by police 3 days after separation reported by social services; "
        "released from custody 12 days ago"
    )


def test_contributions_name_their_events_and_agencies() -> None:
    state = state_of(
        event("s", 0, "social_services.separation_reported", markers=["separation"]), assault("a", 3, "strangulation")
    )
    contributions = {c.factor: c for c in at_day(state, 3).contributions}
    assert [c for c in contributions] == ["gravity", "recency", "frequency", "victims", "strangulation", "separation"]
    assert contributions["separation"].event_ids == ("s",)
    assert contributions["separation"].agencies == ("social_services",)
    assert contributions["gravity"].event_ids == ("a",)


def test_assessment_and_state_serialise_compactly() -> None:
    state = state_of(
        assault("a", 0, "strangulation"),
        event(
            "v",
            1,
            "police.crime_report",
            offence="assault",
            victims=[Victim("v1", True)],
            attributes={"offence_code": "0301"},
        ),
    )
    stored = json.loads(json.dumps(state.to_dict()))
    assert SubjectState.from_dict(stored) == state
    assert all("subject" not in compact and "attributes" not in compact for compact in stored["events"][:1])
    assessment = at_day(state, 1)
    assert json.loads(json.dumps(assessment.to_dict()))["level"] == "high"


def test_fold_ignores_duplicates_ticks_and_other_subjects() -> None:
    state = state_of(assault("a", 0))
    assert fold(state, assault("a", 0)) is state
    assert fold(state, stored_tick(REVIEW_DUE, SUBJECT, T0)) is state
    with pytest.raises(ValueError, match="subject"):
        fold(state, dataclasses.replace(assault("b", 0), subject="someone-else"))


def test_fold_keeps_five_years_behind_the_latest_event() -> None:
    old, recent = assault("old", 0), assault("new", 1827)
    assert state_of(old, recent).events == (recent,)
    assert state_of(recent, old).events == (recent,)
