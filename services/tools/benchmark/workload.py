"""The benchmark's load: synthetic agency events as JSON ingest lines, sent through the real gateway."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from services.ingest.gateway import IngestGateway, Submission
from services.tools.synthetic import AgencyEvent, add_months, subject_histories

PRELOAD_CHUNK = 4000  # submissions per gateway call: a few thousand per broker round trip
INJECT_BATCH_SECONDS = 0.02  # the paced injection sends this much of a second's events at a time
WINDOW_MONTHS = 6
_SYNTHETIC_LOGGER = "services.tools.synthetic"


@dataclass(frozen=True, slots=True)
class Throughput:
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Ingested:
    """Events accepted by the gateway and the time spent inside it (generating them not counted)."""

    throughput: Throughput
    rejected: int
    first_rejection: str | None


def synthetic_events(count: int, seed: int, today: dt.date) -> Iterator[bytes]:
    """`count` JSON ingest lines of the synthetic population, subject by subject, in the recent past.

    The generator has fictitious numbers for some 22,000 subjects; past them, numbers repeat.
    A subject whose number an earlier one already holds is sent under a pseudonym of his own,
    so that every simulated subject is tracked as a subject of his own.
    """
    end = today.replace(day=1)
    start = add_months(end, -WINDOW_MONTHS)
    holders: set[str] = set()
    produced = 0
    # More subjects than needed (about 5.5 events each); the histories are made lazily.
    histories = subject_histories(count // 2 + 10, seed, start, WINDOW_MONTHS)
    with _numbers_repeat_quietly():
        for history in histories:
            number = history.subject_personal_identity_number
            own_pseudonym = _pseudonym(seed, history.index) if number in holders else None
            holders.add(number)
            for event in history.events:
                if produced == count:
                    return
                yield _ingest_line(event, own_pseudonym)
                produced += 1


@contextlib.contextmanager
def _numbers_repeat_quietly() -> Iterator[None]:
    """The repeating numbers are expected here: the generator's warnings about them are noise."""
    logger = logging.getLogger(_SYNTHETIC_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _pseudonym(seed: int, subject_index: int) -> str:
    return "ps_" + hashlib.sha256(f"riskwatch-bench/{seed}/{subject_index}".encode()).hexdigest()[:32]


def _ingest_line(event: AgencyEvent, own_pseudonym: str | None) -> bytes:
    if own_pseudonym is None:
        return event.to_json_line().rstrip("\n").encode()
    document = event.document
    document["subject"] = {"pseudonym": own_pseudonym}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def chunks(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    iterator = iter(lines)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


async def preload(gateway: IngestGateway, lines: Iterable[bytes], chunk: int = PRELOAD_CHUNK) -> Ingested:
    """Submit every line, a chunk per gateway call; the time counted is the gateway's alone."""
    accepted = rejected = 0
    first_rejection: str | None = None
    seconds = 0.0
    for number, part in enumerate(chunks(lines, chunk)):
        submissions = [Submission(line, "json", f"bench:{number * chunk + index + 1}")
                       for index, line in enumerate(part)]
        started = time.perf_counter()
        outcomes = await gateway.submit(submissions)
        seconds += time.perf_counter() - started
        for outcome in outcomes:
            if outcome.status == "accepted":
                accepted += 1
                continue
            rejected += 1
            if first_rejection is None:
                reasons = "; ".join(f"{error.field}: {error.reason}" for error in outcome.errors) or outcome.status
                first_rejection = f"{outcome.source}: {reasons}"
    return Ingested(Throughput(accepted, seconds), rejected, first_rejection)


async def inject_paced(gateway: IngestGateway, lines: list[bytes], rate: float,
                       acknowledged: dict[str, float]) -> Throughput:
    """Submit `lines` at `rate` events a second in small batches; note each accepted event's ack time.

    One sender, as one agency system: a batch that falls behind schedule is sent as soon as the
    previous one is answered, so the achieved rate shows whether the gateway kept up. Times
    are time.perf_counter() seconds.
    """
    per_batch = max(1, round(rate * INJECT_BATCH_SECONDS))
    started = time.perf_counter()
    sent = 0
    for part in chunks(lines, per_batch):
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
        outcomes = await gateway.submit(
            [Submission(line, "json", f"bench-latency:{sent + index + 1}") for index, line in enumerate(part)]
        )
        acked = time.perf_counter()
        for outcome in outcomes:
            if outcome.status == "accepted" and outcome.event_id is not None:
                acknowledged[outcome.event_id] = acked
        sent += len(part)
    return Throughput(sent, time.perf_counter() - started)
