"""The ledger's assessments equal the full recompute, bit for bit, whatever the arrival.

Arrivals are generated logs, shuffled, with duplicates, overrides and scheduler ticks, over a
span longer than the state keeps (so the retention cut-off moves); each event goes through the
live path (states sharing one ledger) and through the reference (tests/support/reference_model.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


from projections.alerts import Alert, evaluate_arrival
from projections.digest import projection_digest
from projections.events import RiskEvent
from projections.model import SubjectState, assess, empty_state, fold, fold_all
from projections.policy import default_policy
from tests.support.reference_model import arrival_from_scratch, assess_from_scratch
from tests.support.scenario import SUBJECT
from tests.support.strategies import assessment_times, event_logs, ticks

POLICY = default_policy()

DETERMINISTIC = settings(max_examples=60, deadline=None, derandomize=True)


pytestmark = pytest.mark.usefixtures("ledger_from")  # tests/unit/conftest.py: on and off the ledger


@st.composite
def arrivals(draw: st.DrawFn) -> list[RiskEvent]:
    """A log in some arrival order: late events, repeats and ticks among them."""
    events = draw(event_logs)
    repeats = draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    return draw(st.permutations([*events, *repeats, *draw(st.lists(ticks, max_size=3))]))


def _alerts(alerts: list[Alert]) -> list[dict[str, Any]]:
    return [alert.to_dict() for alert in alerts]


@DETERMINISTIC
@given(arrival=arrivals())
def test_every_arrival_raises_the_alerts_and_assessment_of_the_full_recompute(arrival: list[RiskEvent]) -> None:
    state = empty_state(SUBJECT)
    for event in arrival:
        after = fold(state, event)
        alerts, assessment = evaluate_arrival(state, after, event, POLICY)
        expected_alerts, expected = arrival_from_scratch(state, after, event, POLICY)
        assert _alerts(alerts) == _alerts(expected_alerts)
        assert assessment.to_dict() == expected.to_dict()
        state = after


@DETERMINISTIC
@given(arrival=arrivals(), times=st.lists(assessment_times, min_size=1, max_size=4))
def test_assessment_at_any_time_equals_the_full_recompute_and_the_replay(
    arrival: list[RiskEvent], times: list[int]
) -> None:
    live = empty_state(SUBJECT)
    for event in arrival:
        live = fold(live, event)
    replayed = fold_all(empty_state(SUBJECT), sorted(arrival, key=lambda event: event.sort_key))
    assert live == replayed
    for at in times:
        expected = assess_from_scratch(live, at, POLICY)
        assert assess(live, at, POLICY).to_dict() == expected.to_dict()
        # the digest `riskwatch rebuild` compares: live state, rebuilt state and reference agree
        assert projection_digest([(SUBJECT, assess(live, at, POLICY))]) == projection_digest(
            [(SUBJECT, assess(replayed, at, POLICY))]
        ) == projection_digest([(SUBJECT, expected)])


@DETERMINISTIC
@given(arrival=arrivals())
def test_membership_follows_the_state_not_the_shared_ledger(arrival: list[RiskEvent]) -> None:
    state = empty_state(SUBJECT)
    seen: list[SubjectState] = []
    for event in arrival:
        state = fold(state, event)
        seen.append(state)
    for earlier in seen:
        kept = {event.event_id for event in earlier.events}
        for event in arrival:
            assert (event.event_id in earlier.event_ids) == (event.event_id in kept)
