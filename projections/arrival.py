"""A subject's events of one batch arriving together: folded in arrival order, re-checked once.

Event by event (`projections.alerts.evaluate_arrival`), each late event re-checks every later
event of the state, so k late events ahead of m later ones cost k x m re-checks, and the states
in between, which the batch never stores, raise alerts of a past that was incomplete only
within the batch. Arriving together, a subject's events are checked as they come until the
first late one; after it they are folded and assessed, and the state the batch ends with is
re-checked once from the earliest place a late event took: k + m.

What event by event guarantees still holds, and the property tests say so
(tests/unit/test_arrival.py):

- every alert of the in-order run is raised, whatever the arrival order and the batches (of
  events within the state's retention, as event by event): an event re-checked at the end of
  the batch is checked with all of its past that has arrived;
- every event's assessment (its history row) and the final state are those event by event gives;
- no alert is raised that event by event would not raise: each event is re-checked on a past
  event by event checks it on too, once the last of that past has arrived. (An event newer than
  all that moves the retention cut-off first has what is pending re-checked on the past it had.)
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from projections.alerts import Alert, evaluate_event, recheck_from
from projections.events import TICKS, RiskEvent
from projections.model import Assessment, SubjectState, assess, fold
from projections.policy import Policy


@dataclass(frozen=True, slots=True)
class Arrived:
    """An event of the batch and the subject's assessment once it is folded, at his latest time."""

    event: RiskEvent
    assessment: Assessment


@dataclass(slots=True)
class SubjectBatch:
    state: SubjectState  # after the batch
    arrived: list[Arrived] = field(default_factory=list)  # in arrival order
    folded: list[RiskEvent] = field(default_factory=list)  # events the batch added to the state
    # each alert once, with the recorded time of the arrival that raised it (its processing time
    # when a batch replays a log)
    alerts: list[tuple[Alert, int]] = field(default_factory=list)


def arrive_together(state: SubjectState, as_of: int | None, events: Sequence[RiskEvent],
                    policy: Policy) -> SubjectBatch:
    """Fold `events` (one subject's, in arrival order) into `state`, last assessed at `as_of`."""
    batch = SubjectBatch(state)
    raised: set[str] = set()
    late_key: tuple[int, str] | None = None  # the earliest place a late event of the batch took
    for event in events:
        before = batch.state
        after = before if event.source_type in TICKS else fold(before, event)
        if late_key is not None and _drops(before, after):
            # the retention cut-off moves: what is pending is checked on the past it had, as one
            # by one would, not on a past the cut-off has shortened
            _recheck(batch, raised, late_key, policy)
            late_key = None
        if after is not before:
            batch.folded.append(event)
        at = event.event_time if as_of is None else max(as_of, event.event_time)
        as_of = at
        batch.state = after
        new = after is not before and event.event_id in after.event_ids and event.event_id not in before.event_ids
        if new and (late_key is not None or _is_late(after, event)):
            # checked once the batch is folded: a late event and everything after it
            late_key = event.sort_key if late_key is None else min(late_key, event.sort_key)
            assessment = assess(after, at, policy)
        else:
            fired, assessment = evaluate_event(before, after, event, policy)
            _keep(batch, raised, fired, event.recorded_time)
            if at != event.event_time:  # the projection stays at the subject's latest time
                assessment = assess(after, at, policy)
        batch.arrived.append(Arrived(event, assessment))
    if late_key is not None:
        _recheck(batch, raised, late_key, policy)
    return batch


def _is_late(after: SubjectState, event: RiskEvent) -> bool:
    return after.events[-1].event_id != event.event_id


def _drops(before: SubjectState, after: SubjectState) -> bool:
    """Whether folding left behind events of `before` (only an event newer than all can)."""
    return bool(before.events) and (not after.events or after.events[0].event_id != before.events[0].event_id)


def _recheck(batch: SubjectBatch, raised: set[str], late_key: tuple[int, str], policy: Policy) -> None:
    """The state's alerts from the earliest late place on, each raised by the arrival that
    completed its past: the latest-recorded event of the batch at or before it in time."""
    state = batch.state
    position = bisect.bisect_left(state.events, late_key, key=_sort_key)
    arrivals = sorted((event.sort_key, event.recorded_time) for event in batch.folded)
    completed: list[int] = []  # completed[i]: the latest recorded time among arrivals[: i + 1]
    for _, recorded in arrivals:
        completed.append(max(recorded, completed[-1]) if completed else recorded)
    keys = [key for key, _ in arrivals]
    for alert in recheck_from(state, position, policy):
        place = bisect.bisect_right(keys, (alert.event_time, alert.causing_event_id)) - 1
        _keep(batch, raised, [alert], completed[max(place, 0)])


def _keep(batch: SubjectBatch, raised: set[str], alerts: Sequence[Alert], recorded: int) -> None:
    for alert in alerts:
        if alert.alert_id not in raised:
            raised.add(alert.alert_id)
            batch.alerts.append((alert, recorded))


def _sort_key(event: RiskEvent) -> tuple[int, str]:
    return event.sort_key
