"""A subject's batch arriving together (projections.arrival) against the same events one by one.

One by one is `evaluate_arrival` per event, as the risk stage ran it before batches were folded
together: the reference for what a batch must keep (assessments, final state, every in-order
alert) and must not add (an alert one by one would not raise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.alerts import Alert, evaluate_arrival
from projections.arrival import arrive_together
from projections.events import TICKS, RiskEvent
from projections.model import Assessment, SubjectState, assess, empty_state, fold
from projections.policy import default_policy
from tests.support.scenario import SUBJECT
from tests.support.strategies import event_logs, recent_logs, ticks

POLICY = default_policy()
DETERMINISTIC = settings(max_examples=50, deadline=None, derandomize=True)


pytestmark = pytest.mark.usefixtures("ledger_from")  # tests/unit/conftest.py: on and off the ledger

@st.composite
def batched(draw: st.DrawFn, logs: st.SearchStrategy[list[RiskEvent]] = event_logs,
            with_ticks: bool = True) -> list[list[RiskEvent]]:
    """A log in some arrival order (late events, repeats, ticks) cut into batches."""
    events = draw(logs)
    repeats = draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    extra = draw(st.lists(ticks, max_size=3)) if with_ticks else []
    arrival = draw(st.permutations([*events, *repeats, *extra]))
    cuts = sorted(draw(st.sets(st.integers(1, max(len(arrival) - 1, 1)), max_size=6))) if arrival else []
    return [arrival[start:end] for start, end in zip([0, *cuts], [*cuts, len(arrival)], strict=True)
            if arrival[start:end]]


@dataclass
class Run:
    state: SubjectState
    assessments: list[Assessment] = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)  # first raise of each id
    raised_at: dict[str, int] = field(default_factory=dict)
    raises: dict[str, list[dict[str, object]]] = field(default_factory=dict)  # every raise of each id


def one_by_one(batches: Sequence[Sequence[RiskEvent]]) -> Run:
    run, as_of = Run(empty_state(SUBJECT)), None
    for event in (event for batch in batches for event in batch):
        after = run.state if event.source_type in TICKS else fold(run.state, event)
        fired, assessment = evaluate_arrival(run.state, after, event, POLICY)
        at = event.event_time if as_of is None else max(as_of, event.event_time)
        as_of = at
        run.assessments.append(assessment if at == event.event_time else assess(after, at, POLICY))
        for alert in fired:
            run.raises.setdefault(alert.alert_id, []).append(alert.to_dict())
            run.alerts.setdefault(alert.alert_id, alert)
            run.raised_at.setdefault(alert.alert_id, event.recorded_time)
        run.state = after
    return run


def together(batches: Sequence[Sequence[RiskEvent]]) -> Run:
    run, as_of = Run(empty_state(SUBJECT)), None
    for events in batches:
        batch = arrive_together(run.state, as_of, events, POLICY)
        assert [arrived.event for arrived in batch.arrived] == list(events)
        assert len({alert.alert_id for alert, _ in batch.alerts}) == len(batch.alerts), "each alert once a batch"
        run.state, as_of = batch.state, batch.arrived[-1].assessment.at
        run.assessments += [arrived.assessment for arrived in batch.arrived]
        for alert, recorded in batch.alerts:
            assert recorded in {event.recorded_time for event in events}
            run.alerts.setdefault(alert.alert_id, alert)
            run.raised_at.setdefault(alert.alert_id, recorded)
    return run


@DETERMINISTIC
@given(batches=batched())
def test_a_batch_keeps_assessments_and_state_and_raises_no_alert_one_by_one_would_not(
    batches: list[list[RiskEvent]],
) -> None:
    expected, actual = one_by_one(batches), together(batches)
    assert actual.state == expected.state
    assert [a.to_dict() for a in actual.assessments] == [a.to_dict() for a in expected.assessments]
    assert set(actual.alerts) <= set(expected.alerts)
    for alert_id, alert in actual.alerts.items():
        # one by one may first raise an id on a past that was still incomplete; a batch raises
        # it as one by one does again once that past is complete
        assert alert.to_dict() in expected.raises[alert_id]


@DETERMINISTIC
@given(batches=batched(recent_logs, with_ticks=False))
def test_every_in_order_alert_is_raised_whatever_the_batches(batches: list[list[RiskEvent]]) -> None:
    in_order = one_by_one([sorted({e.event_id: e for b in batches for e in b}.values(), key=lambda e: e.sort_key)])
    assert set(in_order.alerts) <= set(together(batches).alerts)


@DETERMINISTIC
@given(batches=batched())
def test_batches_of_one_event_are_one_by_one(batches: list[list[RiskEvent]]) -> None:
    singles = [[event] for batch in batches for event in batch]
    expected, actual = one_by_one(singles), together(singles)
    assert {k: a.to_dict() for k, a in actual.alerts.items()} == {k: a.to_dict() for k, a in expected.alerts.items()}
    assert actual.raised_at == expected.raised_at
