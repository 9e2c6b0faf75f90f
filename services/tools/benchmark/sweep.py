"""The history-length sweep: what one new event costs the risk stage when the subject already
has N events in his state.

It runs the risk stage's pure work for one event, as a batch of one, on the state as the
worker holds it between batches: fold the event, check its alerts and assess
(`evaluate_arrival`), and make what the store is sent (the event's state row and the
assessment, as JSON). No broker, no database: the figure is CPU time (or, under callgrind,
instructions) per event, by component, for N = 10, 100 and 1,000, and beside it the cost of
reading a state the worker does not hold. A cost flat in N means a long-known subject costs
what a new one does.

CPU time is measured as the worker spends it: a chain of CHAIN new events on one state, each
folded into the state the one before it left, so the state is the worker's own and in cache as
it is for a subject's next event. (A state made afresh for every measured event put the cost of
a cold cache over all its N events into the figure.) The lengths are measured in turn, ROUNDS
times over, and each keeps its fastest round: other work only ever adds to a measured CPU time
(a slower clock, caches another process emptied), so the least of a few measurements is the
nearest to the work's own cost, as `timeit` advises. On a shared machine the ratio still moves
between runs (docs/benchmarks.md): how much of the processor's caches a 1,000-event state gets
is the machine's, not the code's. Under callgrind (`--quiet`) each new event
goes into a fresh N-event state: instructions do not depend on the cache, and N stays exact.

    python -m services.tools.benchmark.sweep --history 1000 --new 50     # CPU microseconds per event
    valgrind --tool=callgrind python -m services.tools.benchmark.sweep --quiet --history 1000 --new 10 [--prepare-only]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from projections.alerts import evaluate_arrival
from projections.events import DAY_MS, HOUR_MS, RiskEvent, Victim
from projections.model import LEDGER_FROM, Assessment, SubjectState, compact, empty_state, fold, fold_all
from projections.policy import Policy, default_policy
from projections.store import stored_json

HISTORY_LENGTHS = (10, 100, 1000)
NEW_EVENTS = 200  # events measured at each length
ROUNDS = 5  # measurements of each length, in turn; the fastest counts
CHAIN = 5  # new events folded one after another into each prepared state (so it holds N to N + 4)
COMPONENTS = ("model", "save")
COLD_LOADS = 5
SUBJECT = "sweep-subject"
END = 1_767_225_600_000  # 2026-01-01: the history ends here, the measured events come after
SPAN_MS = 4 * 365 * DAY_MS  # within the shipped horizon, so every event counts in every assessment

# A mix of what a long-known subject accumulates: harmful acts with markers, bans, custody, care.
_KINDS: tuple[tuple[str, str, str | None, tuple[str, ...]], ...] = (
    ("police.crime_report", "police", "assault", ("victim_fear",)),
    ("police.crime_report", "police", "gross_violation_of_integrity", ("strangulation", "child_present")),
    ("police.domestic_callout", "police", None, ("injuries",)),
    ("prosecution.contact_ban_breach_reported", "prosecution", "contact_ban_breach", ("breach_of_conditions",)),
    ("prison_probation.custody_started", "prison_probation", None, ("custody",)),
    ("prison_probation.released", "prison_probation", None, ("release",)),
    ("social_services.concern_shared", "social_services", None, ("controlling_behaviour",)),
    ("healthcare.substance_abuse_treatment", "healthcare", None, ("substance_abuse",)),
)


@dataclass(frozen=True, slots=True)
class SweepPoint:
    history: int  # events already in the subject's state
    events: int  # new events measured
    cpu_us: dict[str, float]  # component -> CPU microseconds per new event
    cold_load_us: float  # reading the state's rows when the worker does not hold it (once per subject)

    @property
    def total_us(self) -> float:
        return sum(self.cpu_us.values())


@dataclass(frozen=True, slots=True)
class Sweep:
    points: tuple[SweepPoint, ...]
    rounds: int = 1  # each point is the fastest of this many measurements

    @property
    def ratio(self) -> float:
        """Cost per event at the longest history over the shortest."""
        first, last = self.points[0], self.points[-1]
        return last.total_us / first.total_us if first.total_us else 0.0


def event(index: int, at: int, rng: random.Random) -> RiskEvent:
    source_type, agency, offence, markers = rng.choice(_KINDS)
    victims = (Victim(f"victim-{rng.randrange(2)}", False),) if offence is not None else ()
    return RiskEvent(
        event_id=str(uuid.UUID(int=rng.getrandbits(128))), subject=SUBJECT, source_type=source_type,
        event_time=at, recorded_time=at + HOUR_MS, agency=agency, region="stockholm", unit=f"unit-{index % 3}",
        offence=offence, markers=frozenset(markers), victims=victims, attributes={},
    )


def history(length: int, seed: int = 1) -> SubjectState:
    """A subject with `length` events spread evenly over the SPAN_MS before END."""
    rng = random.Random(seed)
    step = SPAN_MS // max(length, 1)
    return fold_all(empty_state(SUBJECT), [event(i, END - SPAN_MS + i * step, rng) for i in range(length)])


def new_events(count: int, seed: int = 2) -> list[RiskEvent]:
    """Events after the history, an hour apart: the usual case, each arriving in order."""
    rng = random.Random(seed)
    return [event(i, END + (i + 1) * HOUR_MS, rng) for i in range(count)]


def stored_rows(length: int) -> list[str]:
    """The state's rows as the store holds them: one compact event each, as JSON."""
    return [stored_json(compact(event)) for event in history(length).events]


def cold_state(rows: Sequence[str]) -> SubjectState:
    """What a worker does when it does not hold the subject's state: read every row."""
    return SubjectState.from_compact(SUBJECT, [json.loads(row) for row in rows])


def prepared(length: int, count: int, policy: Policy) -> Iterator[tuple[SubjectState, RiskEvent]]:
    """Each new event with a state of `length` events as the worker holds it between batches.

    A state kept between batches is old by the time its next event comes: the garbage collector's
    young generations no longer hold it. A state made just before the measured event would be in
    them, and every collection the event's own allocations set off would walk all N events of it
    (a cost of the sweep, not of the worker); so each made state leaves them (gc.freeze) first.
    """
    rows = stored_rows(length)
    try:
        for new in new_events(count):
            state = cold_state(rows)
            if len(state.events) >= LEDGER_FROM:  # a shorter state is scored from scratch, in the worker too
                state.ledger.scored(policy)
            gc.freeze()
            yield state, new
    finally:
        gc.unfreeze()


def fold_and_check(state: SubjectState, new: RiskEvent, policy: Policy) -> tuple[SubjectState, Assessment]:
    after = fold(state, new)
    _, assessment = evaluate_arrival(state, after, new, policy)
    return after, assessment


def save(new: RiskEvent, assessment: Assessment) -> tuple[str, str]:
    """What the store is sent for the event: its state row and the assessment."""
    return stored_json(compact(new)), stored_json(assessment.to_dict())


def chains(length: int, count: int, policy: Policy) -> Iterator[tuple[SubjectState, list[RiskEvent]]]:
    """`count` new events in chains of CHAIN, each chain with a `length`-event state prepared for it."""
    news = new_events(count)
    starts = range(0, count, CHAIN)
    for start, (state, _) in zip(starts, prepared(length, len(starts), policy), strict=True):
        yield state, news[start:start + CHAIN]


def measure(length: int, count: int = NEW_EVENTS, policy: Policy | None = None,
            clock: Callable[[], int] = time.process_time_ns) -> SweepPoint:
    """CPU time per new event of the risk stage's pure work, in chains of CHAIN events from a
    `length`-event state, each event into the state the one before it left (as the worker does)."""
    policy = policy or default_policy()
    spent = dict.fromkeys(COMPONENTS, 0)
    for state, chain in chains(length, count, policy):
        for new in chain:
            started = clock()
            state, assessment = fold_and_check(state, new, policy)
            assessed = clock()
            save(new, assessment)
            spent["model"] += assessed - started
            spent["save"] += clock() - assessed
    rows = stored_rows(length)
    started = clock()
    for _ in range(COLD_LOADS):
        cold_state(rows).ledger.scored(policy)
    cold_us = (clock() - started) / COLD_LOADS / 1000
    return SweepPoint(length, count, {name: spent[name] / count / 1000 for name in COMPONENTS}, cold_us)


def sweep(lengths: Sequence[int] = HISTORY_LENGTHS, count: int = NEW_EVENTS, rounds: int = ROUNDS) -> Sweep:
    """Each length measured `rounds` times, the lengths in turn (so a slow spell of the machine
    falls on all of them alike); each keeps its fastest measurement."""
    measured = [[measure(length, count) for length in lengths] for _ in range(rounds)]
    fastest = (min(points, key=lambda point: point.total_us) for points in zip(*measured, strict=True))
    return Sweep(tuple(fastest), rounds)


def _run(lengths: Sequence[int], count: int, prepare_only: bool) -> None:
    """For callgrind: instructions of a run minus those of a --prepare-only run, over the events."""
    policy = default_policy()
    for length in lengths:
        for state, new in prepared(length, count, policy):
            if not prepare_only:
                save(new, fold_and_check(state, new, policy)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, action="append", help="events already in the state (repeatable)")
    parser.add_argument("--new", type=int, default=NEW_EVENTS, help="new events measured at each length")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measurements of each length; the fastest counts")
    parser.add_argument("--quiet", action="store_true", help="no timing, only the work (for callgrind)")
    parser.add_argument("--prepare-only", action="store_true", help="with --quiet: only make the states")
    arguments = parser.parse_args()
    lengths = arguments.history or list(HISTORY_LENGTHS)
    if arguments.quiet:
        _run(lengths, arguments.new, arguments.prepare_only)
        return
    for point in sweep(lengths, arguments.new, arguments.rounds).points:
        parts = "  ".join(f"{name} {point.cpu_us[name]:,.1f}" for name in COMPONENTS)
        print(f"N={point.history:>5}: {point.total_us:,.1f} us per event  ({parts}); "
              f"reading a state not held {point.cold_load_us:,.1f}")


if __name__ == "__main__":
    main()
