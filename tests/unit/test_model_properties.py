"""Properties of fold and assess over generated event logs: order, duplicates, bounds, monotony."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.digest import projection_digest
from projections.events import RiskEvent
from projections.model import SubjectState, assess, empty_state, fold, fold_all
from projections.policy import default_policy
from tests.support.scenario import SUBJECT
from tests.support.strategies import assessment_times, event_logs

POLICY = default_policy()
def state_of(events: Sequence[RiskEvent]) -> SubjectState:
    return fold_all(empty_state(SUBJECT), events)


def folded_one_by_one(events: Sequence[RiskEvent], state: SubjectState | None = None) -> SubjectState:
    state = state or empty_state(SUBJECT)
    for event in events:
        state = fold(state, event)
    return state


@settings(max_examples=60, deadline=None)
@given(events=event_logs, at=assessment_times, data=st.data())
def test_any_order_with_any_duplicates_gives_the_same_state_and_assessment(
    events: list[RiskEvent], at: int, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    repeated = data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    interleaved = data.draw(st.permutations([*shuffled, *repeated]))
    in_order, scrambled = folded_one_by_one(events), folded_one_by_one(interleaved)
    assert scrambled == in_order
    assert assess(scrambled, at, POLICY).to_dict() == assess(in_order, at, POLICY).to_dict()


@settings(max_examples=80, deadline=None)
@given(events=event_logs, data=st.data())
def test_folding_a_batch_at_once_equals_folding_its_events_in_turn(events: list[RiskEvent],
                                                                    data: st.DataObject) -> None:
    arrival = data.draw(st.permutations([*events, *data.draw(st.lists(st.sampled_from(events), max_size=5))]
                                        if events else []))
    split = data.draw(st.integers(0, len(arrival)))
    earlier = folded_one_by_one(arrival[:split])
    assert fold_all(earlier, arrival[split:]) == folded_one_by_one(arrival[split:], earlier)


@settings(max_examples=40, deadline=None)
@given(events=event_logs, at=assessment_times)
def test_state_survives_storage_and_assessment_is_deterministic(events: list[RiskEvent], at: int) -> None:
    state = state_of(events)
    stored = SubjectState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert stored == state
    first, again = assess(state, at, POLICY), assess(stored, at, POLICY)
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(again.to_dict(), sort_keys=True)
    assert projection_digest([(SUBJECT, first), ("subject-2", again)]) == projection_digest(
        [("subject-2", again), (SUBJECT, first)]
    )


@settings(max_examples=60, deadline=None)
@given(events=event_logs, at=assessment_times)
def test_score_is_never_negative_and_matches_the_computed_level(events: list[RiskEvent], at: int) -> None:
    assessment = assess(state_of(events), at, POLICY)
    assert assessment.score >= 0
    assert assessment.computed_level == POLICY.level_for(assessment.score)
    assert 1 <= assessment.components.markers <= POLICY.multiplier_cap
    assert assessment.explanation.startswith(assessment.level.label)
    if assessment.override is None:
        assert assessment.level == assessment.computed_level
    else:
        assert assessment.level in (
            assessment.override.level,
            max(assessment.override.level, assessment.computed_level),
        )


@settings(max_examples=80, deadline=None)
@given(
    events=event_logs.filter(lambda events: any(event.offence for event in events)), at=assessment_times, data=st.data()
)
def test_a_graver_offence_never_lowers_the_level(events: list[RiskEvent], at: int, data: st.DataObject) -> None:
    with_offence = [index for index, event in enumerate(events) if event.offence is not None]
    index = data.draw(st.sampled_from(with_offence))
    current = POLICY.offence_gravity[events[index].offence or "other"]
    graver = [offence for offence, gravity in POLICY.offence_gravity.items() if gravity > current]
    if not graver:
        return
    replaced = list(events)
    replaced[index] = dataclasses.replace(events[index], offence=data.draw(st.sampled_from(sorted(graver))))
    before, after = assess(state_of(events), at, POLICY), assess(state_of(replaced), at, POLICY)
    assert after.score >= before.score
    assert after.computed_level >= before.computed_level
    assert after.level >= before.level
