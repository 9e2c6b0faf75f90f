"""The pure risk model: fold canonical events into a subject's state, assess it at a time.

A state is the set of the subject's events within the retention window, kept sorted by
(event_time, event_id). Everything else is computed from that set by `assess`, so any arrival
order of the same events, with any duplicates, gives the same state and the same assessment.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.events import DAY_MS, OVERRIDE, TICKS, RiskEvent, Victim
from projections.explain import explain
from projections.history import Ledger, Stretch
from projections.levels import Level
from projections.policy import STATE_RETENTION_DAYS, Policy
from projections.scoring import Scoring, score

STATE_FORMAT = 1
RETENTION_MS = STATE_RETENTION_DAYS * DAY_MS
# Below this many events, scoring from scratch is cheaper than keeping a ledger (and gives the
# same bits): most subjects have a handful of events, and a rebuild assesses each state once.
LEDGER_FROM = 32


@dataclass(frozen=True, slots=True)
class SubjectState:
    """A subject's events, sorted by (event_time, event_id), unique by event_id; nothing else is stored.

    The ledger (lists and prefix sums for assessment) is derived from the events, made when first
    needed and shared with the states folded from this one, so that a fold costs O(1) amortised.
    A state on a ledger holds its events as a `Stretch` of the ledger's list, not as a copy.
    """

    subject: str
    events: Sequence[RiskEvent] = ()
    ledger_: Ledger | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.ledger_ is None and type(self.events) is Stretch:
            # a stretch is read through the ledger whose list it is; a state without that ledger has its own copy
            object.__setattr__(self, "events", tuple(self.events))

    @property
    def ledger(self) -> Ledger:
        if self.ledger_ is None:
            object.__setattr__(self, "ledger_", Ledger(self.events))
        assert self.ledger_ is not None
        return self.ledger_

    @property
    def event_ids(self) -> _EventIds:
        return _EventIds(self)

    def around(self, t: int, window: int) -> Sequence[RiskEvent]:
        """The events within `window` ms of time `t`, either side, found by bisection."""
        items, lo, hi = _bounds(self.events)
        start = bisect.bisect_left(items, t - window, lo, hi, key=_event_time)
        return items[start:bisect.bisect_right(items, t + window, start, hi, key=_event_time)]

    def prefix(self, count: int) -> SubjectState:
        """The state of its first `count` events, sharing the ledger (if one is worth having)."""
        return SubjectState(self.subject, self.events[:count], self.ledger if _ledgered(self) else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable and compact: the subject once, empty fields left out."""
        return {"format": STATE_FORMAT, "subject": self.subject, "events": [compact(event) for event in self.events]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubjectState:
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format: unsupported subject state format {data.get('format')!r}")
        return cls.from_compact(data["subject"], data["events"])

    @classmethod
    def from_compact(cls, subject: str, events: Iterable[Mapping[str, Any]]) -> SubjectState:
        """The state of these events in `to_dict`'s compact form, in any order."""
        return cls(subject, tuple(sorted((_expand(subject, compact) for compact in events), key=_sort_key)))


class _EventIds:
    """Membership of an event id in a state, looked up in its ledger."""

    __slots__ = ("state",)

    def __init__(self, state: SubjectState) -> None:
        self.state = state

    def __contains__(self, event_id: object) -> bool:
        events = self.state.events
        if not events or not isinstance(event_id, str):
            return False
        if not _ledgered(self.state):
            return any(event.event_id == event_id for event in events)
        key = self.state.ledger.ids.get(event_id)
        items, lo, hi = _bounds(events)
        return key is not None and items[lo].sort_key <= key <= items[hi - 1].sort_key


def _ledgered(state: SubjectState, more: int = 0) -> bool:
    """Whether the state has a ledger, or is long enough (with `more` events) to be worth one."""
    return state.ledger_ is not None or len(state.events) + more >= LEDGER_FROM


def _bounds(events: Sequence[RiskEvent]) -> tuple[Sequence[RiskEvent], int, int]:
    """What to bisect for `events`, and their positions [lo, hi) in it: a stretch is bisected in its
    ledger's list (in C, without a call per probe), a tuple as it is."""
    if type(events) is Stretch:
        return events.items, events.lo, events.hi
    return events, 0, len(events)


def _sort_key(event: RiskEvent) -> tuple[int, str]:
    return event.sort_key


def _event_time(event: RiskEvent) -> int:
    return event.event_time


def compact(event: RiskEvent) -> dict[str, Any]:
    """One event as the state stores it: the subject is the state's."""
    compact: dict[str, Any] = {
        "id": event.event_id,
        "type": event.source_type,
        "t": event.event_time,
        "rt": event.recorded_time,
        "agency": event.agency,
        "region": event.region,
        "unit": event.unit,
    }
    if event.offence is not None:
        compact["offence"] = event.offence
    if event.markers:
        compact["markers"] = sorted(event.markers)
    if event.victims:
        compact["victims"] = [[victim.pseudonym, victim.protected_identity] for victim in event.victims]
    if event.attributes:
        compact["attributes"] = dict(event.attributes)
    return compact


def _expand(subject: str, compact: Mapping[str, Any]) -> RiskEvent:
    return RiskEvent(
        event_id=compact["id"],
        subject=subject,
        source_type=compact["type"],
        event_time=compact["t"],
        recorded_time=compact["rt"],
        agency=compact["agency"],
        region=compact["region"],
        unit=compact["unit"],
        offence=compact.get("offence"),
        markers=frozenset(compact.get("markers", ())),
        victims=tuple(Victim(pseudonym, bool(protected)) for pseudonym, protected in compact.get("victims", ())),
        attributes=compact.get("attributes", {}),
    )


def empty_state(subject: str) -> SubjectState:
    return SubjectState(subject)


def fold(state: SubjectState, event: RiskEvent) -> SubjectState:
    """The state with the event in it; the same state when the event adds nothing.

    Events older than RETENTION_MS before the subject's latest event are dropped. Which events
    survive depends only on the set received, never on the order: the cut-off only moves forward.
    """
    if event.subject != state.subject:
        raise ValueError(f"subject: event {event.event_id} is about another subject than this state")
    if event.event_id in state.event_ids or event.source_type in TICKS:
        return state
    latest = max(event.event_time, state.events[-1].event_time) if state.events else event.event_time
    cutoff = latest - RETENTION_MS
    if event.event_time < cutoff:
        return state
    ledger: Ledger | None = None
    events: Sequence[RiskEvent]
    if not state.events or event.sort_key > state.events[-1].sort_key:
        ledger = _extended(state, event)
        events = (*state.events, event) if ledger is None else _stretched(state, ledger)
    else:  # a late event: the lists are made again when first needed
        items, lo, hi = _bounds(state.events)
        position = bisect.bisect_left(items, event.sort_key, lo, hi, key=_sort_key) - lo
        events = (*state.events[:position], event, *state.events[position:])
    if events[0].event_time < cutoff:
        items, lo, hi = _bounds(events)
        events = events[bisect.bisect_left(items, cutoff, lo, hi, key=_event_time) - lo:]
    return SubjectState(state.subject, events, ledger)


def _stretched(state: SubjectState, ledger: Ledger) -> Stretch:
    """The state's events and the one `_extended` put next to them in the ledger, as a stretch of it."""
    events = state.events
    if type(events) is Stretch and events.items is ledger.events:
        return Stretch(ledger.events, events.lo, events.hi + 1)
    lo = bisect.bisect_left(ledger.keys, events[0].sort_key)  # once, when a state first goes on its ledger
    return Stretch(ledger.events, lo, lo + len(events) + 1)


def _extended(state: SubjectState, event: RiskEvent) -> Ledger | None:
    """The state's ledger with `event` after its last event, if it can be shared (else None)."""
    if not state.events or not _ledgered(state, 1):
        return None
    ledger, last = state.ledger, state.events[-1].sort_key
    if ledger.last == last:
        ledger.append(event)
        return ledger
    return ledger if ledger.follows(last, event) else None


def fold_all(state: SubjectState, events: Iterable[RiskEvent]) -> SubjectState:
    """`fold` of every event in turn, in one pass: for event ids that name one event each,
    the state is the subject's unique events within RETENTION_MS of the latest one."""
    added = [event for event in events if event.source_type not in TICKS]
    for event in added:
        if event.subject != state.subject:
            raise ValueError(f"subject: event {event.event_id} is about another subject than this state")
    if not added:
        return state
    latest = max(event.event_time for event in (*state.events[-1:], *added))
    cutoff = latest - RETENTION_MS
    kept: dict[str, RiskEvent] = {}
    for event in (*state.events, *added):
        if event.event_time >= cutoff and event.event_id not in kept:
            kept[event.event_id] = event
    return SubjectState(state.subject, tuple(sorted(kept.values(), key=_sort_key)))


@dataclass(frozen=True, slots=True)
class Contribution:
    """One factor of the score, with the events (and their agencies) it rests on."""

    factor: str
    value: float
    events: tuple[RiskEvent, ...]  # ids and agencies are read from them when asked: most are never shown

    @property
    def event_ids(self) -> tuple[str, ...]:
        return tuple(event.event_id for event in self.events)

    @property
    def agencies(self) -> tuple[str, ...]:
        return tuple(sorted({event.agency for event in self.events}))

    def to_dict(self) -> dict[str, Any]:
        # made for every contribution of every assessment (up to ten events each): lists at once, no tuples between
        events = self.events
        return {
            "factor": self.factor,
            "value": self.value,
            "event_ids": [event.event_id for event in events],
            "agencies": sorted({event.agency for event in events}),
        }


@dataclass(frozen=True, slots=True)
class Components:
    """score = (gravity x recency + escalation) x frequency x markers."""

    gravity: float
    recency: float
    frequency: float
    victims: int
    escalation: float
    markers: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "gravity": self.gravity,
            "recency": self.recency,
            "frequency": self.frequency,
            "victims": self.victims,
            "escalation": self.escalation,
            "markers": self.markers,
        }


@dataclass(frozen=True, slots=True)
class Override:
    level: Level
    reason: str
    analyst: str
    event_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level.label, "reason": self.reason, "analyst": self.analyst, "event_id": self.event_id}


@dataclass(frozen=True, slots=True)
class Assessment:
    level: Level
    computed_level: Level
    score: float
    components: Components
    contributions: tuple[Contribution, ...]
    override: Override | None
    policy_version: str
    at: int
    next_review_at: int | None
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.label,
            "computed_level": self.computed_level.label,
            "score": self.score,
            "components": self.components.to_dict(),
            "contributions": [contribution.to_dict() for contribution in self.contributions],
            "override": None if self.override is None else self.override.to_dict(),
            "policy_version": self.policy_version,
            "at": self.at,
            "next_review_at": self.next_review_at,
            "explanation": self.explanation,
        }


@dataclass(frozen=True, slots=True)
class Brief:
    """What alert rules need of the assessment before an event: no contributions, no explanation."""

    level: Level
    victims: int


def assess_brief(state: SubjectState, at: int, policy: Policy) -> Brief:
    """The level and victim count of `assess(state, at, policy)`, at a fraction of its cost."""
    level, _, scoring, *_ = _level(state, at, policy, named=False)
    return Brief(level, len(scoring.victims))


def scored(state: SubjectState, at: int, policy: Policy, *,
           named: bool = True) -> tuple[Scoring, Sequence[RiskEvent]]:
    """The score of the state's facts in the horizon at `at`, and the overrides there: from the ledger
    when the state has one (or is long enough for one), else from scratch; the same bits either way."""
    if not state.events or not _ledgered(state):
        start = bisect.bisect_left(state.events, at - policy.horizon_ms, key=_event_time)
        in_horizon = state.events[start:bisect.bisect_right(state.events, at, lo=start, key=_event_time)]
        facts = [event for event in in_horizon if event.source_type != OVERRIDE]
        return score(facts, at, policy, named=named), [event for event in in_horizon if event.source_type == OVERRIDE]
    items, lo, hi = _bounds(state.events)
    return state.ledger.scored(policy).score(items[lo].sort_key, items[hi - 1].sort_key, at, named=named)


Judged = tuple[Level, Level, Scoring, "Override | None", "int | None", "RiskEvent | None"]


def _level(state: SubjectState, at: int, policy: Policy, *, named: bool = True) -> Judged:
    scoring, overrides = scored(state, at, policy, named=named)
    items, lo, hi = _bounds(state.events)  # read in the list itself: a stretch's own indexing is a call each
    end = bisect.bisect_right(items, at, lo, hi, key=_event_time) - lo
    latest = None
    if end and items[lo + end - 1].event_time >= at - policy.horizon_ms:
        latest = items[lo + end - 1].event_time  # of the latest event (fact or override) in the horizon
    if end and _ledgered(state) and policy.assessment_valid_ms is not None:
        # current_assessment's look back, by bisection: a long history has many events in the window
        structured = state.ledger.latest_assessed(
            max(items[lo].sort_key, (at - min(policy.assessment_valid_ms, policy.horizon_ms), "")),
            items[lo + end - 1].sort_key,
        )
    else:
        structured = current_assessment(state.events, at, policy, end=end)
    return _judged(scoring, overrides, policy, latest, structured)


def _judged(scoring: Scoring, overrides: Sequence[RiskEvent], policy: Policy, latest: int | None,
            structured: RiskEvent | None) -> Judged:
    """`structured`: the current structured assessment (current_assessment), a floor under the computed level."""
    computed_level = policy.level_for(scoring.score)
    held = held_by_assessment(computed_level, structured)
    override = _override(overrides)
    level = held if override is None else _overridden_level(override, overrides[-1], scoring, held)
    return level, computed_level, scoring, override, latest, structured


def current_assessment(events: Sequence[RiskEvent], at: int, policy: Policy, *,
                       end: int | None = None) -> RiskEvent | None:
    """The latest structured risk assessment of `events[:end]` (in time order, none after `at`), while
    the policy's validity window, and the horizon, still cover it.

    A newer assessment replaces an older one, whatever either concluded. The look goes back over
    the window only, never over the whole history.
    """
    if policy.assessment_valid_ms is None:
        return None
    oldest = at - min(policy.assessment_valid_ms, policy.horizon_ms)
    for index in range((len(events) if end is None else end) - 1, -1, -1):
        event = events[index]
        if event.event_time < oldest:
            return None
        if "assessed_level" in event.attributes:
            return event
    return None


def held_by_assessment(level: Level, assessment: RiskEvent | None) -> Level:
    """A trained assessor's conclusion is a floor: the computed level never contradicts it downwards."""
    if assessment is None:
        return level
    return max(level, Level.parse(assessment.attributes["assessed_level"]))


def assess(state: SubjectState, at: int, policy: Policy) -> Assessment:
    """The subject's risk at `at` (epoch ms), from the events up to then, under the policy."""
    return assessment(_level(state, at, policy), at, policy)


def assessment(judged: Judged, at: int, policy: Policy) -> Assessment:
    """The assessment from the judged score (`assess` and the tests' from-scratch reference share it)."""
    level, computed_level, scoring, override, latest, structured = judged

    components = Components(
        gravity=round(scoring.total_gravity, 4),
        recency=round(scoring.recency, 4),
        frequency=round(scoring.frequency, 4),
        victims=len(scoring.victims),
        escalation=round(scoring.escalation, 4),
        markers=round(scoring.markers, 4),
    )
    contributions = [
        _contribution("gravity", components.gravity, scoring.harmful),
        _contribution("recency", components.recency, scoring.harmful),
        _contribution("frequency", components.frequency, scoring.frequent),
        _contribution("victims", components.victims, scoring.with_victims),
    ]
    if scoring.escalation > 0:
        contributions.append(_contribution("escalation", components.escalation, scoring.escalation_events))
    contributions.extend(
        _contribution(multiplier.name, multiplier.factor, multiplier.events) for multiplier in scoring.multipliers
    )
    return Assessment(
        level=level,
        computed_level=computed_level,
        score=scoring.score,
        components=components,
        contributions=tuple(contributions),
        override=override,
        policy_version=policy.version,
        at=at,
        next_review_at=_next_review(latest, at, policy.review_ms[level]),
        explanation=explain(
            level=level,
            computed_level=computed_level,
            override=None if override is None else (override.level, override.analyst),
            scoring=scoring,
            at=at,
            policy=policy,
            assessment=structured,
        ),
    )


def _override(overrides: Sequence[RiskEvent]) -> Override | None:
    if not overrides:
        return None
    latest = overrides[-1]
    return Override(
        level=Level.parse(latest.attributes["override_level"]),
        reason=latest.attributes.get("reason", ""),
        analyst=latest.attributes.get("analyst", ""),
        event_id=latest.event_id,
    )


def _overridden_level(override: Override, override_event: RiskEvent, scoring: Scoring, computed: Level) -> Level:
    """The analyst's level, until a harmful event comes after it: then it can no longer hold the level down.

    An override judged the facts known then; lowering the level must not hide a later strangulation.
    """
    if scoring.last_harmful is not None and scoring.last_harmful > override_event.sort_key:
        return max(override.level, computed)
    return override.level


def _next_review(last: int | None, at: int, interval: int) -> int | None:
    """The next point after `at` on the review cycle that starts at the subject's latest event."""
    if last is None:
        return None
    return last + ((at - last) // interval + 1) * interval


def _contribution(factor: str, value: float, events: Iterable[RiskEvent]) -> Contribution:
    return Contribution(factor, value, tuple(events))
