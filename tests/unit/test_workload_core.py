"""The workload rules of the pure core: paging, the structured-assessment floor, explanations."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from projections.alerts import Trigger, evaluate_arrival, pages
from projections.events import DAY_MS, HOUR_MS, RiskEvent
from projections.levels import Level
from projections.model import assess, empty_state, fold, fold_all
from projections.normalize import override_event
from projections.policy import PolicyError, default_policy, parse_policy
from tests.support.scenario import SUBJECT, T0, crime
from tests.support.scenario import risk_event as event

import pytest
import tomllib
from importlib import resources

POLICY = default_policy()


def _document() -> dict[str, Any]:
    text = resources.files("projections").joinpath("policies", "2026.2.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def assessment(event_id: str, day: float, level: str, instrument: str = "SARA_SV") -> RiskEvent:
    return event(event_id, day, "police.risk_assessment",
                 attributes={"instrument": instrument, "assessed_level": level})


def test_history_does_not_page() -> None:
    breach = event("b", 0, "prosecution.contact_ban_breach_reported", offence="contact_ban_breach")
    raised, _ = evaluate_arrival(empty_state(SUBJECT), fold(empty_state(SUBJECT), breach), breach, POLICY)
    [alert] = [a for a in raised if a.trigger == Trigger.CONTACT_BAN_BREACH]
    window = POLICY.paging_window_ms
    assert window == 168 * HOUR_MS
    assert pages(alert, alert.event_time + window, POLICY)
    assert not pages(alert, alert.event_time + window + 1, POLICY)
    assert not pages(alert, alert.event_time, POLICY, backfill=True)
    quiet = dataclasses.replace(POLICY, page_from_level=Level.EXTREME)
    assert alert.level_after < Level.EXTREME
    assert pages(alert, alert.event_time, quiet), "an urgent alert pages whatever the level"
    routine = dataclasses.replace(alert, priority=2)
    assert not pages(routine, alert.event_time, quiet)


def test_paging_keys_are_read_and_checked() -> None:
    document = _document()
    document["alerts"]["paging_window_hours"] = 24
    assert parse_policy(document).paging_window_ms == 24 * HOUR_MS
    document["alerts"]["paging_window_hours"] = 0
    with pytest.raises(PolicyError) as refused:
        parse_policy(document)
    assert refused.value.key == "alerts.paging_window_hours"
    document = _document()
    document["reviews"]["every_hours"] = 3
    with pytest.raises(PolicyError) as refused:
        parse_policy(document)
    assert refused.value.key == "reviews.every_hours"


def test_a_current_structured_assessment_holds_the_level() -> None:
    assert POLICY.assessment_valid_ms is not None
    state = fold_all(empty_state(SUBJECT), [assessment("sara", 0, "high"), crime("a", 1, "harassment")])
    held = assess(state, T0 + 2 * DAY_MS, POLICY)
    assert held.computed_level < Level.HIGH
    assert held.level == Level.HIGH
    assert "SARA:SV assessment high by police on 2026-01-01" in held.explanation
    # the window ends: the score speaks alone again
    later = T0 + POLICY.assessment_valid_ms + DAY_MS
    assert assess(state, later, POLICY).level == assess(state, later, POLICY).computed_level


def test_a_newer_assessment_replaces_the_older_one() -> None:
    state = fold_all(empty_state(SUBJECT), [assessment("sara", 0, "high"),
                                            assessment("freda", 5, "low", instrument="FREDA")])
    assert assess(state, T0 + 6 * DAY_MS, POLICY).level < Level.HIGH


def test_only_an_override_lowers_below_the_assessment() -> None:
    state = fold_all(empty_state(SUBJECT), [assessment("sara", 0, "high")])
    lowered = fold(state, override_event(event_id="o", subject=SUBJECT, level="low", reason="victim moved abroad",
                                         analyst="analyst-1", at=T0 + DAY_MS, region="syd"))
    result = assess(lowered, T0 + 2 * DAY_MS, POLICY)
    assert result.level == Level.LOW
    assert result.override is not None


def test_explanations_never_repeat_a_clause() -> None:
    threat = event("t", 0, "healthcare.suicide_threat", markers=["suicide_threat"])
    state = fold_all(empty_state(SUBJECT), [crime("a", -10, "harassment"), threat])
    explanation = assess(state, T0, POLICY).explanation
    clauses = re.split(r"; ", explanation.split(": ", 1)[1])
    assert len(clauses) == len(set(clauses)), explanation
    assert explanation.count("suicide threat") == 1, explanation
