"""Rebuild: every projection recomputed from the event archive, and its digest."""

from __future__ import annotations

import time
from dataclasses import dataclass

from projections.digest import document_digest, projection_digest
from projections.events import RiskEvent
from projections.model import Assessment, assess, empty_state, fold_all
from projections.policy import Policy
from projections.store import Store
from schemas.codec import decode_risk_event
from services.progress import advance


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
    """Fold the archive subject by subject (it streams in subject order: memory for one subject)."""
    started = time.perf_counter()
    projections: list[tuple[str, Assessment]] = []
    subject: list[RiskEvent] = []
    events = 0

    def finish() -> None:
        if subject:
            state = fold_all(empty_state(subject[0].subject), subject)
            projections.append((state.subject, assess(state, max(event.event_time for event in subject), policy)))

    async for body in store.archived_bodies():
        event = RiskEvent.from_record(decode_risk_event(body))
        events += 1
        if events % 1000 == 0:
            advance(1000)
        if subject and event.subject != subject[0].subject:
            finish()
            subject = []
        subject.append(event)
    finish()
    advance(events % 1000)
    return RebuildResult(len(projections), events, time.perf_counter() - started, projection_digest(projections))


async def live_digest(store: Store) -> str:
    """The digest of the projections the live pipeline wrote."""
    return document_digest(await store.projection_assessments())
