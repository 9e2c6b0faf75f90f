"""The risk model's full recompute: every assessment scored from scratch over the horizon's events.

`projections.model.assess` answers from a ledger of prefix sums; these functions are what it
must equal, bit for bit (tests/unit/test_model_incremental.py).
"""

from __future__ import annotations

import bisect

from projections.alerts import Alert, evaluate_arrival
from projections.events import OVERRIDE, RiskEvent
from projections.model import Assessment, SubjectState, _judged, assessment, current_assessment
from projections.policy import Policy
from projections.scoring import score


def assess_from_scratch(state: SubjectState, at: int, policy: Policy) -> Assessment:
    start = bisect.bisect_left(state.events, at - policy.horizon_ms, key=lambda event: event.event_time)
    end = bisect.bisect_right(state.events, at, key=lambda event: event.event_time)
    in_horizon = state.events[start:end]
    facts = [event for event in in_horizon if event.source_type != OVERRIDE]
    overrides = [event for event in in_horizon if event.source_type == OVERRIDE]
    latest = in_horizon[-1].event_time if in_horizon else None
    structured = current_assessment(facts, at, policy)
    return assessment(_judged(score(facts, at, policy), overrides, policy, latest, structured), at, policy)


def fresh(state: SubjectState) -> SubjectState:
    """The same events with a ledger of their own, never shared with another state."""
    return SubjectState(state.subject, state.events)


def arrival_from_scratch(before: SubjectState, after: SubjectState, event: RiskEvent,
                         policy: Policy) -> tuple[list[Alert], Assessment]:
    """`evaluate_arrival` on states that share nothing, with the assessment recomputed from scratch."""
    alerts, _ = evaluate_arrival(fresh(before), fresh(after), event, policy)
    return alerts, assess_from_scratch(after, event.event_time, policy)
