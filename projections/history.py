"""A subject's events kept for assessment at any time: prefix sums and per-kind lists, so that
scoring costs a few bisections whatever the length of the history.

A `Ledger` is append-only and shared by the states folded from one another: a state is the
stretch of it between its first and last sort keys. Each list below is in sort-key order; a
range of events is found by bisection and its sums are differences of exact prefix sums
(`projections.decay`), so the result is bit for bit what `scoring.score` computes from scratch.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from projections.decay import Stamp, decay, decayed_value, exact_gravity, gravity_value, stamp
from projections.events import OVERRIDE, Marker, RiskEvent
from projections.policy import Policy
from projections.scoring import (
    CONTRIBUTION_EVENTS,
    ActiveMultiplier,
    Scoring,
    Weighing,
    Weighted,
    multiple_victims,
    ranking,
    scoring,
    weighing_of,
)

Key = tuple[int, str]
_LAST = "\U0010ffff"  # after every event id: (t, _LAST) closes the range of time t


def _from(t: int) -> Key:
    return (t, "")


def _to(t: int) -> Key:
    return (t, _LAST)


@dataclass(slots=True)
class _Run:
    """Events in sort-key order, with exact prefix sums where they are needed."""

    keys: list[Key] = field(default_factory=list)
    events: list[RiskEvent] = field(default_factory=list)

    def add(self, event: RiskEvent) -> None:
        self.keys.append(event.sort_key)
        self.events.append(event)

    def span(self, low: Key, high: Key) -> tuple[int, int]:
        """Positions [i, j) of the events with low <= key <= high (i == j when there are none).

        Most bounds are a state's first event and its latest (a new event is the last of every
        list it joins), so each end is tried before bisecting: one comparison, not log N.
        """
        keys = self.keys
        if not keys:
            return 0, 0
        i = 0 if low <= keys[0] else bisect.bisect_left(keys, low)
        j = len(keys) if keys[-1] <= high else bisect.bisect_right(keys, high, i)
        return i, max(i, j)

    def between(self, low: Key, high: Key) -> tuple[RiskEvent, ...]:
        i, j = self.span(low, high)
        return tuple(self.events[i:j])

    def latest(self, low: Key, high: Key, count: int = CONTRIBUTION_EVENTS) -> tuple[RiskEvent, ...]:
        """The last `count` events with low <= key <= high."""
        i, j = self.span(low, high)
        return tuple(self.events[max(i, j - count):j])

    def latest_before(self, low: Key, before: Key, count: int) -> tuple[RiskEvent, ...]:
        """The last `count` events with low <= key < before."""
        keys = self.keys
        i = 0 if not keys or low <= keys[0] else bisect.bisect_left(keys, low)
        j = max(i, bisect.bisect_left(keys, before))
        return tuple(self.events[max(i, j - count):j])


@dataclass(slots=True)
class _Harmful(_Run):
    """Harmful events: gravity sums and gravity x weight sums (exact integers), from position 0."""

    gravities: list[float] = field(default_factory=list)
    stamps: list[Stamp] = field(default_factory=list)
    gravity_sums: list[int] = field(default_factory=lambda: [0])
    weight_sums: list[int] = field(default_factory=lambda: [0])  # of exact gravity x w x 2^e
    stamp_sums: list[int] = field(default_factory=lambda: [0])  # of w x 2^e (escalation, per gravity)

    def add_harmful(self, event: RiskEvent, weighing: Weighing) -> None:
        self.add(event)
        self.gravities.append(weighing.gravity)
        self.stamps.append(weighing.when)
        self.gravity_sums.append(self.gravity_sums[-1] + weighing.exact)
        self.weight_sums.append(self.weight_sums[-1] + weighing.weighted)
        self.stamp_sums.append(self.stamp_sums[-1] + weighing.when_exact)


class _Scored:
    """What one policy makes of the ledger's events, list by list."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.separations = _Run()
        self.overrides = _Run()
        self.harmful = _Harmful()
        self.by_gravity: dict[float, _Harmful] = {}  # a policy has few distinct gravities
        self.victims: dict[str, list[Key]] = {}
        self.with_victims = _Run()
        # multiplier name -> its carrying (ending) events; made when the first one comes, since a
        # worker keeps thousands of small states and most multipliers never apply to one subject
        self.carrying: dict[str, _Run] = {}
        self.ending: dict[str, _Run] = {}
        self.ended_by = _ended_by(policy)
        self.multipliers = {multiplier.name: multiplier for multiplier in policy.multipliers}

    def add(self, event: RiskEvent) -> None:
        policy = self.policy
        if event.source_type == OVERRIDE:
            self.overrides.add(event)
            return
        if Marker.SEPARATION in event.markers:
            self.separations.add(event)
        weighing = weighing_of(event, policy)  # what scoring from scratch uses too
        if weighing.gravity > 0:
            self.harmful.add_harmful(event, weighing)
            self.by_gravity.setdefault(weighing.gravity, _Harmful()).add_harmful(event, weighing)
        if event.victims:
            self.with_victims.add(event)
            for victim in event.victims:
                self.victims.setdefault(victim.pseudonym, []).append(event.sort_key)
        for index in weighing.carries:
            self.carrying.setdefault(policy.multipliers[index].name, _Run()).add(event)
        for name in self.ended_by.get(event.source_type, ()):
            self.ending.setdefault(name, _Run()).add(event)

    def score(self, first: Key, last: Key, at: int, *, named: bool = True) -> tuple[Scoring, tuple[RiskEvent, ...]]:
        """`scoring.score` of the facts with first <= key <= last in the horizon at `at`, and the overrides.

        Unless `named`, the event lists are left empty: the level and the victims need none of them.
        """
        policy = self.policy
        low, high = max(first, _from(at - policy.horizon_ms)), min(last, _to(at))
        now = stamp(at, policy.half_life_ms)
        harmful = self.harmful
        i, j = harmful.span(low, high)
        frequent_low = max(low, _from(at - policy.frequency_window_ms))
        escalation, escalation_events = self._escalation(low, high, at, now, named)
        victims = frozenset(pseudonym for pseudonym, keys in self.victims.items() if _any_between(keys, low, high))
        with_victims = self.with_victims.latest(low, high) if named else ()
        multipliers = self._multipliers(low, high, at, named)
        if len(victims) >= 2:
            multipliers.append(multiple_victims(with_victims, policy))
        heaviest = self._heaviest(low, high, now) if named else []
        harmful_named = _in_order(heaviest)
        frequent_named: tuple[RiskEvent, ...] = ()
        if named:
            # the heaviest of all, when they are all in the frequency window, are its heaviest too
            in_window = all(item.event.sort_key >= frequent_low for item in heaviest)
            frequent_named = harmful_named if in_window else _in_order(self._heaviest(frequent_low, high, now))
        scored = scoring(
            separations=self.separations.between(low, high) if named else (),
            harmful=harmful_named,
            last_harmful=harmful.keys[j - 1] if i < j else None,
            gravest=heaviest[0] if heaviest else None,
            total_gravity=gravity_value(harmful.gravity_sums[j] - harmful.gravity_sums[i]),
            weighted_gravity=decayed_value(harmful.weight_sums[j] - harmful.weight_sums[i], now),
            frequent=frequent_named,
            frequent_count=j - bisect.bisect_left(harmful.keys, frequent_low, i, j),
            escalation=escalation,
            escalation_events=escalation_events,
            victims=victims,
            with_victims=with_victims,
            multipliers=multipliers,
            policy=policy,
        )
        return scored, self.overrides.between(low, high)

    def _heaviest(self, low: Key, high: Key, now: Stamp) -> list[Weighted]:
        """The CONTRIBUTION_EVENTS harmful events with low <= key <= high weighing most, heaviest first.

        Within one gravity the later event weighs more, so each gravity's events are read from its
        latest backwards and merged: a few more than CONTRIBUTION_EVENTS are weighed, not every
        gravity's latest CONTRIBUTION_EVENTS (ranking by weight, then sort key, as `weighing_most`).
        """
        runs = []
        for gravity, run in self.by_gravity.items():
            i, j = run.span(low, high)
            if i < j:
                runs.append(_backwards(run, gravity, max(i, j - CONTRIBUTION_EVENTS), j, now))
        if len(runs) == 1:
            return list(runs[0])
        return list(itertools.islice(heapq.merge(*runs, key=ranking, reverse=True), CONTRIBUTION_EVENTS))

    def _escalation(self, low: Key, high: Key, at: int, now: Stamp,
                    named: bool) -> tuple[float, tuple[RiskEvent, ...]]:
        policy = self.policy
        recent_from = max(low, _from(at - policy.escalation_recent_ms))
        top: tuple[float, RiskEvent] | None = None
        for gravity, run in self.by_gravity.items():
            i, j = run.span(recent_from, high)
            if i < j and (top is None or (gravity, run.keys[j - 1]) > (top[0], top[1].sort_key)):
                top = (gravity, run.events[j - 1])
        i, j = self.harmful.span(low, high)
        earlier_to = bisect.bisect_left(self.harmful.keys, recent_from, i, j)
        if top is None or earlier_to == i:
            return 0.0, ()
        top_gravity, top_event = top
        excess, lesser = 0, 0
        for gravity, run in self.by_gravity.items():
            if gravity < top_gravity:
                start, end = bisect.bisect_left(run.keys, low), bisect.bisect_left(run.keys, recent_from)
                lesser += end - start
                excess += (exact_gravity(top_gravity) * (run.stamp_sums[end] - run.stamp_sums[start])
                           - (run.weight_sums[end] - run.weight_sums[start]))
        if not lesser:
            return 0.0, ()
        if not named:
            return policy.escalation_weight * (decayed_value(excess, now) / (earlier_to - i)), ()
        lesser_named = sorted(
            (event for gravity, run in self.by_gravity.items() if gravity < top_gravity
             for event in run.latest_before(low, recent_from, CONTRIBUTION_EVENTS - 1)),
            key=_BY_SORT_KEY,
        )[-(CONTRIBUTION_EVENTS - 1):]
        return (
            policy.escalation_weight * (decayed_value(excess, now) / (earlier_to - i)),
            (*lesser_named, top_event),
        )

    def _multipliers(self, low: Key, high: Key, at: int, named: bool) -> list[ActiveMultiplier]:
        active = []
        for name, run in self.carrying.items():
            multiplier = self.multipliers[name]
            window = multiplier.window_ms
            i, j = run.span(low if window is None else max(low, _from(at - window)), high)
            if i == j:
                continue
            ending = self.ending.get(name)
            if ending is not None and (bisect.bisect_right(ending.keys, run.keys[j - 1])
                                       < bisect.bisect_right(ending.keys, high)):
                continue  # an ending event came after the last carrying one
            carrying = tuple(run.events[max(i, j - CONTRIBUTION_EVENTS):j]) if named else ()
            active.append(ActiveMultiplier(multiplier.name, multiplier.factor, multiplier.markers, carrying))
        return active


def _any_between(keys: list[Key], low: Key, high: Key) -> bool:
    """Whether some key of the (non-empty, sorted) list is within [low, high]: its first at or after low is."""
    i = 0 if low <= keys[0] else bisect.bisect_left(keys, low)
    return i < len(keys) and keys[i] <= high


def _backwards(run: _Harmful, gravity: float, start: int, end: int, now: Stamp) -> Iterator[Weighted]:
    events, stamps = run.events, run.stamps
    for k in range(end - 1, start - 1, -1):
        yield Weighted(events[k], gravity, decay(stamps[k], now))


def _in_order(weighted: list[Weighted]) -> tuple[RiskEvent, ...]:
    return tuple(sorted((item.event for item in weighted), key=_BY_SORT_KEY))


# (event_time, event_id), RiskEvent.sort_key made in C: a sort calls it for every event it orders
_BY_SORT_KEY = operator.attrgetter("event_time", "event_id")


_ENDED_BY: dict[str, dict[str, list[str]]] = {}


def _ended_by(policy: Policy) -> dict[str, list[str]]:
    """Event type -> the multipliers it ends; once per policy version."""
    ended_by = _ENDED_BY.get(policy.version)
    if ended_by is None:
        ended_by = {}
        for multiplier in policy.multipliers:
            for source_type in multiplier.ended_by:
                ended_by.setdefault(source_type, []).append(multiplier.name)
        _ENDED_BY[policy.version] = ended_by
    return ended_by


_COPIED = 64  # a stretch this short is iterated over a copy of its positions (cheaper per event)


class Stretch(Sequence[RiskEvent]):
    """Positions [lo, hi) of a ledger's list of events: a state's events, shared, never copied.

    The list only grows at its end, so a stretch of it never changes; folding an event onto the
    end of a state makes a stretch one longer instead of copying the state's N events (and
    touching each of them in memory) for every new one.
    """

    __slots__ = ("hi", "items", "lo")

    def __init__(self, items: list[RiskEvent], lo: int, hi: int) -> None:
        self.items, self.lo, self.hi = items, lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    @overload
    def __getitem__(self, index: int) -> RiskEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Stretch: ...

    def __getitem__(self, index: int | slice) -> RiskEvent | Stretch:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.hi - self.lo)
            if step != 1:
                raise ValueError("a stretch of events is sliced in order only")
            return Stretch(self.items, self.lo + start, self.lo + max(start, stop))
        position = index + self.hi if index < 0 else index + self.lo
        if not self.lo <= position < self.hi:
            raise IndexError("event index out of range")
        return self.items[position]

    def __iter__(self) -> Iterator[RiskEvent]:
        if self.hi - self.lo <= _COPIED:
            return iter(self.items[self.lo:self.hi])
        # lazily from lo: a look for the first of a kind reads a few events, not the whole stretch
        return map(self.items.__getitem__, range(self.lo, self.hi))

    def __reversed__(self) -> Iterator[RiskEvent]:
        # from the end without a pass over the front: callers look for the latest of a kind
        return map(self.items.__getitem__, range(self.hi - 1, self.lo - 1, -1))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(other) == len(self) and all(
            mine is theirs or mine == theirs for mine, theirs in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))  # as the tuple of the same events

    def __repr__(self) -> str:
        return repr(tuple(self))


class Ledger:
    """A subject's events in sort-key order, append-only, shared by the states folded from one another."""

    def __init__(self, events: Sequence[RiskEvent] = ()) -> None:
        self.keys: list[Key] = []
        self.events: list[RiskEvent] = []
        self.ids: dict[str, Key] = {}
        self.assessed = _Run()  # events carrying a structured assessment's level (any policy's floor)
        self._scored: dict[str, _Scored] = {}  # policy version -> lists
        for event in events:
            self.append(event)

    @property
    def last(self) -> Key | None:
        return self.keys[-1] if self.keys else None

    def append(self, event: RiskEvent) -> None:
        """Add an event after every event in the ledger."""
        self.keys.append(event.sort_key)
        self.events.append(event)
        self.ids[event.event_id] = event.sort_key
        if "assessed_level" in event.attributes:
            self.assessed.add(event)
        for scored in self._scored.values():
            scored.add(event)

    def latest_assessed(self, low: Key, high: Key) -> RiskEvent | None:
        """The latest event with a structured assessment's level and low <= key <= high, if any."""
        found = self.assessed.latest(low, high, 1)
        return found[0] if found else None

    def follows(self, key: Key, event: RiskEvent) -> bool:
        """Whether `event` is the ledger's next event after `key`."""
        position = bisect.bisect_right(self.keys, key)
        return position < len(self.keys) and self.events[position].event_id == event.event_id

    def scored(self, policy: Policy) -> _Scored:
        scored = self._scored.get(policy.version)
        if scored is None or scored.policy is not policy:
            scored = _Scored(policy)
            for event in self.events:
                scored.add(event)
            self._scored[policy.version] = scored
        return scored
