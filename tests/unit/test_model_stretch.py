"""A state on a ledger holds its events as a stretch of the ledger's list: it must read exactly
as the tuple of the same events would, whatever is asked of it, and the states folded in order
must stretch one shared list instead of copying it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import model
from projections.events import RiskEvent
from projections.history import Stretch
from projections.model import SubjectState, empty_state, fold, fold_all
from tests.support.scenario import SUBJECT
from tests.support.strategies import event_logs

DETERMINISTIC = settings(max_examples=60, deadline=None, derandomize=True)


@pytest.fixture(autouse=True)
def every_state_on_a_ledger() -> Iterator[None]:
    shipped = model.LEDGER_FROM
    model.LEDGER_FROM = 0
    yield
    model.LEDGER_FROM = shipped


@st.composite
def stretches(draw: st.DrawFn) -> tuple[Stretch, tuple[RiskEvent, ...]]:
    """A stretch of a list of events, and the tuple of the same events."""
    items = draw(event_logs)
    lo = draw(st.integers(0, len(items)))
    hi = draw(st.integers(lo, len(items)))
    return Stretch(items, lo, hi), tuple(items[lo:hi])


@DETERMINISTIC
@given(case=stretches(), index=st.integers(-12, 12), start=st.none() | st.integers(-12, 12),
       stop=st.none() | st.integers(-12, 12))
def test_a_stretch_reads_as_the_tuple_of_its_events(case: tuple[Stretch, tuple[RiskEvent, ...]], index: int,
                                                    start: int | None, stop: int | None) -> None:
    stretch, events = case
    assert len(stretch) == len(events) and bool(stretch) == bool(events)
    assert list(stretch) == list(events) and list(reversed(stretch)) == list(reversed(events))
    assert stretch == events and events == stretch and stretch != (*events[:-1], None)
    if -len(events) <= index < len(events):
        assert stretch[index] is events[index]
    else:
        with pytest.raises(IndexError):
            stretch[index]
    part = stretch[start:stop]
    assert isinstance(part, Stretch) and part.items is stretch.items
    assert tuple(part) == events[start:stop]


@DETERMINISTIC
@given(events=event_logs)
def test_states_folded_in_order_stretch_one_list_and_equal_the_replay(events: list[RiskEvent]) -> None:
    state = empty_state(SUBJECT)
    states: list[SubjectState] = []
    for event in sorted(events, key=lambda event: event.sort_key):
        state = fold(state, event)
        states.append(state)
    lists = {id(state.events.items) for state in states if type(state.events) is Stretch}
    assert len(lists) <= 1  # one ledger's list, never a copy per event
    for count, earlier in enumerate(states, start=1):
        ordered = sorted(events, key=lambda event: event.sort_key)[:count]
        assert earlier == fold_all(empty_state(SUBJECT), ordered)


@DETERMINISTIC
@given(events=event_logs)
def test_a_state_made_from_a_stretch_without_its_ledger_has_a_copy_of_its_own(events: list[RiskEvent]) -> None:
    state = fold_all(empty_state(SUBJECT), events)
    for event in state.events[-3:]:
        state = fold(SubjectState(SUBJECT, state.events[:-1], state.ledger), event)
    copied = SubjectState(SUBJECT, state.events)
    assert type(copied.events) is tuple and copied.events == state.events
