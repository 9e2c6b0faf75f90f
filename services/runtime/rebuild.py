"""Rebuild: every projection recomputed from the event archive, and its digest.

The archive streams in subject order; whole subjects go in chunks to one process per core,
which decode, fold and assess them and write each result as the digest reads it. The digest is
taken over the sorted (subject, assessment) documents, so it does not depend on which process
assessed whom.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

from projections.digest import digest_entry, document_digest, entries_digest
from projections.events import RiskEvent
from projections.model import assess, empty_state, fold_all
from projections.policy import Policy
from projections.ports import ArchiveReader
from schemas.codec import default_codec
from services.runtime.progress import advance

CHUNK_EVENTS = 5_000  # events sent to a process at a time (whole subjects): large enough to amortise the hand-over
_policy: Policy | None = None  # the policy of the rebuild in a rebuild process, set before it forks


@dataclass(frozen=True)
class RebuildResult:
    subjects: int
    events: int
    seconds: float
    digest: str

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


def assess_subjects(subjects: Sequence[Sequence[bytes]]) -> list[str]:
    """Each subject's archived bodies folded into one state, assessed at its latest event: the
    digest's entry of each (`projections.digest.digest_entry`)."""
    assert _policy is not None, "the rebuild's policy is set before its processes start"
    decode, from_record = default_codec().decode_risk_event, RiskEvent.from_record  # looked up once a chunk
    assessed = []
    for bodies in subjects:
        events = [from_record(decode(body)) for body in bodies]
        state = fold_all(empty_state(events[0].subject), events)
        at = max(event.event_time for event in events)
        assessed.append(digest_entry(state.subject, assess(state, at, _policy).to_dict()))
    return assessed


async def rebuild(store: ArchiveReader, policy: Policy, processes: int | None = None) -> RebuildResult:
    """Fold the archive subject by subject over `processes` processes (default: one per core)."""
    global _policy
    started = time.perf_counter()
    _policy = policy
    count = processes or len(os.sched_getaffinity(0))
    # fork: the processes inherit the policy and run only the pure core, never this event loop
    pool: Executor | None = (
        ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork")) if count > 1 else None
    )
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Future[list[str]]] = []
    documents: list[str] = []
    chunk: list[list[bytes]] = []
    chunk_events = events = 0

    def send() -> None:
        nonlocal chunk, chunk_events
        if chunk:
            if pool is None:
                documents.extend(assess_subjects(chunk))
            else:
                pending.append(loop.run_in_executor(pool, assess_subjects, chunk))
            chunk, chunk_events = [], 0

    try:
        current: str | None = None
        async for subject, body in store.archived_bodies():
            events += 1
            if events % 1000 == 0:
                advance(1000)
            if subject != current:
                if chunk_events >= CHUNK_EVENTS:
                    send()
                chunk.append([])
                current = subject
            chunk[-1].append(body)
            chunk_events += 1
        send()
        for assessed in await asyncio.gather(*pending):
            documents.extend(assessed)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    advance(events % 1000)
    return RebuildResult(len(documents), events, time.perf_counter() - started, entries_digest(documents))


async def live_digest(store: ArchiveReader) -> str:
    """The digest of the projections the live pipeline wrote."""
    return document_digest(await store.projection_assessments())
