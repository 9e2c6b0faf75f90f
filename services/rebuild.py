"""Rebuild: every projection recomputed from the event archive, and its digest."""

from __future__ import annotations

import time
from dataclasses import dataclass

from projections.digest import document_digest, projection_digest
from projections.events import TICKS, RiskEvent
from projections.model import Assessment, SubjectState, assess, empty_state, fold
from projections.policy import Policy
from projections.store import Store
from schemas.codec import decode_risk_event


@dataclass(frozen=True)
class RebuildResult:
    subjects: int
    events: int
    seconds: float
    digest: str

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


async def rebuild(store: Store, policy: Policy) -> RebuildResult:
    """Fold the archive subject by subject (it streams in subject order: constant memory)."""
    started = time.perf_counter()
    projections: list[tuple[str, Assessment]] = []
    state: SubjectState | None = None
    as_of = 0
    events = 0

    def finish() -> None:
        if state is not None:
            projections.append((state.subject, assess(state, as_of, policy)))

    async for body in store.archived_bodies():
        event = RiskEvent.from_record(decode_risk_event(body))
        events += 1
        if state is None or event.subject != state.subject:
            finish()
            state, as_of = empty_state(event.subject), event.event_time
        if event.source_type not in TICKS:
            state = fold(state, event)
        as_of = max(as_of, event.event_time)
    finish()
    return RebuildResult(len(projections), events, time.perf_counter() - started, projection_digest(projections))


async def live_digest(store: Store) -> str:
    """The digest of the projections the live pipeline wrote."""
    return document_digest(await store.projection_assessments())
