"""The score of a subject's facts at one time: gravity x recency, escalation, frequency, markers.

score = (sum of gravity x decay + escalation) x frequency x min(cap, product of active multipliers)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from projections.decay import Stamp, decay, decayed_value, exact_gravity, gravity_value, stamp
from projections.events import Marker, RiskEvent, set_weighing
from projections.policy import Policy

MULTIPLE_VICTIMS = "multiple_victims"


class Weighted(NamedTuple):  # a tuple: made for every harmful event of every assessment
    """A harmful event as one assessment sees it: its gravity and its recency decay then."""

    event: RiskEvent
    gravity: float
    decay: float

    @property
    def weight(self) -> float:
        return self.gravity * self.decay


@dataclass(frozen=True, slots=True)
class ActiveMultiplier:
    name: str
    factor: float
    markers: frozenset[str]
    events: tuple[RiskEvent, ...]


@dataclass(frozen=True, slots=True)
class Scoring:
    """The score and its parts. Event lists are bounded (CONTRIBUTION_EVENTS, in sort-key order):
    an assessment names the events that weigh most, never the whole history."""

    separations: tuple[RiskEvent, ...]  # facts with the separation marker, for the explanation
    harmful: tuple[RiskEvent, ...]  # the harmful events weighing most now
    last_harmful: tuple[int, str] | None  # sort key of the latest harmful event
    gravest: Weighted | None  # the harmful event weighing most now (the latest of equals)
    total_gravity: float
    weighted_gravity: float
    recency: float
    frequent: tuple[RiskEvent, ...]  # the frequency window's harmful events weighing most now
    frequent_count: int
    frequency: float
    escalation: float
    escalation_events: tuple[RiskEvent, ...]  # the latest lesser earlier acts, then the gravest recent one
    victims: frozenset[str]
    with_victims: tuple[RiskEvent, ...]  # the latest facts naming a victim
    multipliers: tuple[ActiveMultiplier, ...]  # each with its latest carrying events
    markers: float
    score: float


CONTRIBUTION_EVENTS = 10  # events named per factor


# (policy version, event facts) -> gravity: a function of both, computed once per kind of event
_GRAVITY: dict[tuple[str, str, str | None, str | None, frozenset[str]], float] = {}


def event_gravity(event: RiskEvent, policy: Policy) -> float:
    """The gravest reading of the event under the policy; never lower for a graver offence."""
    key = (policy.version, event.source_type, event.offence, event.attributes.get("assessed_level"), event.markers)
    gravity = _GRAVITY.get(key)
    if gravity is None:
        gravity = _GRAVITY[key] = _event_gravity(event, policy)
    return gravity


class Weighing(NamedTuple):
    """What a policy makes of one event, whenever it is scored: kept on the event (`weighing_`)."""

    policy: Policy  # the policy it was made under (compared by identity)
    gravity: float
    exact: int  # the gravity as an exact integer (projections.decay)
    when: Stamp  # the event time's stamp under the policy's half-life
    when_exact: int  # when.exact
    weighted: int  # exact x when.exact: the event's term of the exact gravity x weight sum
    carries: tuple[int, ...]  # the policy's multipliers (indices) one of whose markers the event carries


def weighing_of(event: RiskEvent, policy: Policy) -> Weighing:
    """The event's weighing under `policy`: the one kept on it, or made now and kept."""
    weighing: Weighing | None = event.weighing_
    if weighing is None or weighing.policy is not policy:
        weighing = weigh(event, policy)
    return weighing


def weigh(event: RiskEvent, policy: Policy) -> Weighing:
    """The event's weighing under `policy`, made once and kept on the event (derived, like a cache)."""
    gravity = event_gravity(event, policy)
    when = stamp(event.event_time, policy.half_life_ms)
    exact, when_exact = exact_gravity(gravity), when.exact
    weighing = Weighing(policy, gravity, exact, when, when_exact, exact * when_exact, _carries(event.markers, policy))
    set_weighing(event, weighing)
    return weighing


def _carries(markers: frozenset[str], policy: Policy) -> tuple[int, ...]:
    if not markers:
        return ()
    # events share their marker sets: a few per policy. Keyed by the policy object itself (held
    # in the entry, so its id is not reused while kept): two policies may share a version string.
    key = (id(policy), markers)
    kept = _CARRIES.get(key)
    if kept is not None and kept[0] is policy:
        return kept[1]
    carries = tuple(index for index, multiplier in enumerate(policy.multipliers) if multiplier.markers & markers)
    if len(_CARRIES) < _CARRIES_KEPT:
        _CARRIES[key] = (policy, carries)
    return carries


_CARRIES: dict[tuple[int, frozenset[str]], tuple[Policy, tuple[int, ...]]] = {}
_CARRIES_KEPT = 4096


def _event_gravity(event: RiskEvent, policy: Policy) -> float:
    gravity = policy.event_gravity.get(event.source_type, 0.0)
    if event.offence is not None:
        share = policy.offence_share.get(event.source_type, 1.0)
        gravity = max(gravity, policy.offence_gravity.get(event.offence, 0.0) * share)
    assessed_level = event.attributes.get("assessed_level")
    if assessed_level is not None:
        gravity = max(gravity, policy.assessed_level_gravity.get(assessed_level, 0.0))
    for floor in policy.floors:
        if floor.markers <= event.markers:
            gravity = max(gravity, floor.gravity)
    return gravity


def score(facts: Sequence[RiskEvent], at: int, policy: Policy, *, named: bool = True) -> Scoring:
    """Score the facts (sorted, all at or before `at`, within the horizon) at time `at`, from scratch.

    The reference: `projections.history` keeps the same sums per event and must give the same bits.
    Unless `named`, the event lists are left empty (as the ledger's are): the level and the victims
    need none of them.
    """
    now = stamp(at, policy.half_life_ms)
    harmful: list[tuple[RiskEvent, float]] = []
    weighings: list[Weighing] = []
    carried: dict[int, list[RiskEvent]] = {}
    gravity_total = weighted_total = frequent_count = 0
    frequent_from = at - policy.frequency_window_ms  # at - t <= window, in whole milliseconds
    for event in facts:
        weighing = event.weighing_  # weighing_of, inlined: this loop runs for every fact of every score
        if weighing is None or weighing.policy is not policy:
            weighing = weigh(event, policy)
        if weighing.gravity > 0:
            harmful.append((event, weighing.gravity))
            weighings.append(weighing)
            gravity_total += weighing.exact
            weighted_total += weighing.weighted
            if event.event_time >= frequent_from:
                frequent_count += 1
        for index in weighing.carries:
            carried.setdefault(index, []).append(event)
    total_gravity = gravity_value(gravity_total)
    weighted_gravity = decayed_value(weighted_total, now)
    escalation, escalation_events = _escalation(harmful, weighings, now, at, policy, named=named)
    victims = frozenset(victim.pseudonym for event in facts for victim in event.victims)
    with_victims = tuple(event for event in facts if event.victims)[-CONTRIBUTION_EVENTS:] if named else ()
    multipliers = _active_multipliers(facts, carried, at, policy, named=named)
    if len(victims) >= 2:
        multipliers.append(multiple_victims(with_victims, policy))
    if named:
        weighted = [Weighted(event, gravity, decay(weighing.when, now))
                    for (event, gravity), weighing in zip(harmful, weighings, strict=True)]
        frequent = [item for item in weighted if item.event.event_time >= frequent_from]
        harmful_named, frequent_named = weighing_most(weighted, ordered=True), weighing_most(frequent, ordered=True)
        gravest = max(weighted, key=ranking) if weighted else None
    else:
        harmful_named = frequent_named = ()
        gravest = None
    return scoring(
        separations=tuple(event for event in facts if Marker.SEPARATION in event.markers) if named else (),
        harmful=harmful_named, last_harmful=harmful[-1][0].sort_key if harmful else None,
        gravest=gravest, total_gravity=total_gravity,
        weighted_gravity=weighted_gravity, frequent=frequent_named, frequent_count=frequent_count,
        escalation=escalation, escalation_events=escalation_events, victims=victims, with_victims=with_victims,
        multipliers=multipliers, policy=policy,
    )


def weighing_most(weighted: Iterable[Weighted], *, ordered: bool = False) -> tuple[RiskEvent, ...]:
    """The CONTRIBUTION_EVENTS events weighing most (the latest of equals), in sort-key order.

    `ordered`: a list already in sort-key order, whose few items then need no ranking at all.
    """
    if ordered and isinstance(weighted, list) and len(weighted) <= CONTRIBUTION_EVENTS:
        return tuple(item.event for item in weighted)
    top = sorted(weighted, key=ranking)[-CONTRIBUTION_EVENTS:]
    return tuple(sorted((item.event for item in top), key=_sort_key))


def _sort_key(event: RiskEvent) -> tuple[int, str]:
    return event.sort_key


def scoring(*, separations: tuple[RiskEvent, ...], harmful: tuple[RiskEvent, ...],
            last_harmful: tuple[int, str] | None, gravest: Weighted | None, total_gravity: float,
            weighted_gravity: float, frequent: tuple[RiskEvent, ...], frequent_count: int, escalation: float,
            escalation_events: tuple[RiskEvent, ...], victims: frozenset[str], with_victims: tuple[RiskEvent, ...],
            multipliers: list[ActiveMultiplier], policy: Policy) -> Scoring:
    """The score from its parts, however they were summed."""
    frequency = min(policy.frequency_cap, 1.0 + policy.frequency_step * max(0, frequent_count - 1))
    if len(multipliers) > 1:
        multipliers.sort(key=_multiplier_order)
    markers = min(policy.multiplier_cap, math.prod([multiplier.factor for multiplier in multipliers]))
    return Scoring(
        separations=separations,
        harmful=harmful,
        last_harmful=last_harmful,
        gravest=gravest,
        total_gravity=total_gravity,
        weighted_gravity=weighted_gravity,
        recency=weighted_gravity / total_gravity if total_gravity else 0.0,
        frequent=frequent,
        frequent_count=frequent_count,
        frequency=frequency,
        escalation=escalation,
        escalation_events=escalation_events,
        victims=victims,
        with_victims=with_victims,
        multipliers=tuple(multipliers),
        markers=markers,
        score=round((weighted_gravity + escalation) * frequency * markers, 2),
    )


def _multiplier_order(multiplier: ActiveMultiplier) -> tuple[float, str]:
    return (-multiplier.factor, multiplier.name)


def multiple_victims(with_victims: tuple[RiskEvent, ...], policy: Policy) -> ActiveMultiplier:
    return ActiveMultiplier(MULTIPLE_VICTIMS, policy.multiple_victims_factor, frozenset(), with_victims)


def ranking(item: Weighted) -> tuple[float, tuple[int, str]]:
    return (item.weight, item.event.sort_key)


def _escalation(harmful: Sequence[tuple[RiskEvent, float]], weighings: Sequence[Weighing], now: Stamp, at: int,
                policy: Policy, *, named: bool) -> tuple[float, tuple[RiskEvent, ...]]:
    """How much graver the gravest recent act is than the earlier acts, times the policy's weight.

    It is the mean, over earlier harmful events, of (recent gravity - earlier gravity, if positive)
    x the earlier event's decay. Raising an earlier event's gravity by g lowers it by at most
    weight x decay x g, while the weighted gravity rises by decay x g; the weight is at most 1
    (the policy checks), so a graver earlier act never lowers the score.
    """
    recent = [(event, gravity) for event, gravity in harmful if at - event.event_time <= policy.escalation_recent_ms]
    earlier = [
        (event, gravity, weighing)
        for (event, gravity), weighing in zip(harmful, weighings, strict=True)
        if at - event.event_time > policy.escalation_recent_ms
    ]
    if not recent or not earlier:
        return 0.0, ()
    top_event, top = max(recent, key=lambda item: (item[1], item[0].sort_key))
    lesser = [(event, weighing) for event, gravity, weighing in earlier if gravity < top]
    if not lesser:
        return 0.0, ()
    # sum of (top - gravity) x weight, exactly: top x the weights' sum less the gravity x weight terms
    excess = (exact_gravity(top) * sum(weighing.when_exact for _, weighing in lesser)
              - sum(weighing.weighted for _, weighing in lesser))
    value = policy.escalation_weight * (decayed_value(excess, now) / len(earlier))
    if not named:
        return value, ()
    return value, (*(event for event, _ in lesser[-(CONTRIBUTION_EVENTS - 1):]), top_event)


def _active_multipliers(facts: Sequence[RiskEvent], carried: dict[int, list[RiskEvent]], at: int,
                        policy: Policy, *, named: bool = True) -> list[ActiveMultiplier]:
    """`carried`: policy.multipliers' index -> the facts carrying one of its markers, in order;
    unless `named`, the multipliers name none of them."""
    active: list[ActiveMultiplier] = []
    for index, carrying in carried.items():
        multiplier = policy.multipliers[index]
        window = multiplier.window_ms
        if window is not None and at - carrying[0].event_time > window:
            carrying = [event for event in carrying if at - event.event_time <= window]
            if not carrying:
                continue
        if _ended(facts, carrying[-1], multiplier.ended_by):
            continue
        active.append(ActiveMultiplier(multiplier.name, multiplier.factor, multiplier.markers,
                                       tuple(carrying[-CONTRIBUTION_EVENTS:]) if named else ()))
    return active


def _ended(facts: Sequence[RiskEvent], last: RiskEvent, ended_by: frozenset[str]) -> bool:
    """Whether an event of an ending kind comes after `last`, one of `facts` (in sort-key order)."""
    for event in reversed(facts):
        if event is last:
            return False
        if event.source_type in ended_by:
            return True
    return False
