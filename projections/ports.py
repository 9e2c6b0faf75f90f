"""The risk stage's ports: what it, the outbox relay, the scheduler and the rebuild need of storage.

Protocols and the plain records they carry, no driver type: the PostgreSQL adapters
(services/adapters/postgres) and the in-memory twins (services/adapters/memory) implement them
with the same semantics, checked by one contract suite per port (tests/support/contracts).

A risk batch is one unit of work: `async with store.batch(cluster_id, offsets) as unit:` locks
the batch's tracked offsets, `unit.fresh` says which offsets are not applied yet, the processor
reads through the unit what it needs (archived ids, backfilled ids, stored states) and computes
the effects from that, and `await unit.commit(effects)` writes them with the offsets, atomically.
Leaving the block without a commit (or a commit that fails) leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:  # (projections.quarantine itself uses StoreRefused)
    from projections.alerts import StoredAlert
    from projections.policy import Policy
    from projections.quarantine import Quarantined, QuarantineEntry

Partition = tuple[str, int]  # (topic, partition)


class StoreUnavailable(Exception):
    """Storage is away for now (connection lost, server shutting down, too many clients): retry later.

    Never about the data: a batch that fails so is retried whole, never quarantined.
    """


class StoreRefused(Exception):
    """The store refused a value it was given: a fact about the data written, not the store.

    `reason_class` is the quarantine's ("text_encoding", "database_refused"), `kind` the name of
    the store's own error and `detail` what the store said about the value, if anything.
    """

    def __init__(self, message: str, *, reason_class: str, kind: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.reason_class = reason_class
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    event_id: str
    subject: str
    source_type: str
    agency: str
    region: str
    event_time: int
    recorded_time: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ProjectionRow:
    """A subject's state row as the batch leaves it: the projection and the events new in its state."""

    subject: str
    state_added: list[tuple[int, str, dict[str, Any]]]  # (event time, event id, compact event) new in the state
    state_from: int | None  # when stored events fell behind retention: the first kept event's time
    assessment: dict[str, Any]
    level: str
    score: float
    region: str | None  # None: every region known could point at a protected victim
    caseload: str | None
    policy_version: str
    assessed_at: int
    next_review_at: int | None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    subject: str
    event_id: str
    event_time: int
    level: str
    score: float
    explanation: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    topic: str
    key: str
    message: bytes


@dataclass
class BatchEffects:
    """Everything a risk batch (or one record of it) changes, written at once."""

    archive: list[ArchivedEvent] = field(default_factory=list)
    projections: list[ProjectionRow] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    alerts: list[StoredAlert] = field(default_factory=list)  # new ones go to the outbox and onto cases (paged)
    risk_changes: list[tuple[str, str, bytes]] = field(default_factory=list)  # (topic, subject, message)
    quarantined: list[Quarantined] = field(default_factory=list)
    offsets: dict[Partition, int] = field(default_factory=dict)  # (topic, partition) -> last offset


class StateHead(NamedTuple):
    """A stored subject's state row: its version (+1 per write) and the event time it was assessed at (ms)."""

    version: int
    assessed_at: int


class RiskUnit(Protocol):
    """One risk batch's unit of work, open between `RiskStore.batch` and its commit."""

    @property
    def fresh(self) -> dict[Partition, list[int]]:
        """The batch's offsets not applied yet on this cluster, per partition (the tracked ones locked)."""
        ...

    async def archived(self, event_ids: Sequence[str]) -> set[str]:
        """The ids among these already in the event archive."""
        ...

    async def backfilled(self, event_ids: Sequence[str]) -> set[str]:
        """The ids among these ingested as a backfill (their alerts are history, never paged)."""
        ...

    async def lock_states(self, subjects: Sequence[str]) -> dict[str, StateHead]:
        """The stored state rows of these subjects (those that have one), locked until the unit ends."""
        ...

    async def state_events(self, subjects: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """subject -> the compact events of its stored state (lock the state rows first)."""
        ...

    def part(self) -> AbstractAsyncContextManager[None]:
        """A part of the unit (one record's reads and writes): if the block fails, nothing it wrote
        remains and the unit goes on; if it succeeds, its writes are the unit's, committed with it."""
        ...

    async def write(self, effects: BatchEffects) -> set[str]:
        """Some of the batch's effects, written now and visible to the unit's reads; committed with the
        unit. The offsets are not advanced here (only `commit` does).
        Returns the ids of the alerts stored now (not stored before). A write that fails outside a
        `part` leaves the unit unusable: leave the block."""
        ...

    async def commit(self, effects: BatchEffects) -> set[str]:
        """Write `effects`, advance the tracked offsets to `effects.offsets` and end the unit: everything
        the unit wrote becomes visible at once, or on failure nothing does. Returns the new alert ids."""
        ...


class RiskStore(Protocol):
    def batch(self, cluster_id: str,
              offsets: Mapping[Partition, Sequence[int]]) -> AbstractAsyncContextManager[RiskUnit]:
        """A unit of work over these offsets. The tracked offsets of their partitions are locked: two
        workers that briefly both hold a partition (a rebalance) serialise here, and the second sees
        what the first committed as not fresh."""
        ...

    async def applied_positions(self, cluster_id: str, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """(topic, partition) -> the offset after the last one applied on this cluster, where one was."""
        ...


class OutboxBacklog(NamedTuple):
    messages: int
    oldest_seconds: float  # age of the oldest unpublished message, 0 when there is none


class Outbox(Protocol):
    async def relay(self, publish: Callable[[list[OutboxMessage]], Awaitable[None]], limit: int) -> int:
        """Up to `limit` unpublished messages, oldest first, handed to `publish`, then marked published.

        Two relays never hand out the same message at once; a message whose `publish` failed stays
        unpublished. Returns how many were published."""
        ...

    async def backlog(self) -> OutboxBacklog: ...


class Quarantine(Protocol):
    async def write(self, rows: Sequence[Quarantined]) -> None: ...

    async def entries(self, *, include_retried: bool = False,
                      ids: Sequence[int] | None = None) -> list[QuarantineEntry]:
        """Quarantined records, oldest first: those not retried yet unless asked, or the ones named."""
        ...

    async def mark_retried(self, ids: Sequence[int]) -> None: ...


class Reviews(Protocol):
    async def open_due(self, policy: Policy, now: dt.datetime) -> int:
        """Open one review item per subject whose review has come (projections/casework.py); how many."""
        ...


class ArchiveReader(Protocol):
    """What a rebuild reads: the archive in (subject, event time) order and the live projections."""

    def archived_bodies(self, prefetch: int = 20_000) -> AsyncIterator[tuple[str, bytes]]: ...

    async def projection_assessments(self) -> list[tuple[str, dict[str, Any]]]: ...
