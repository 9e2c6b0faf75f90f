"""Contract suites: one abstract test class per port, subclassed for the in-memory twin (tests/unit)
and for the PostgreSQL adapter (tests/integration); both must pass the same tests.

Each subclass provides the `port` fixture: a `StoragePorts` over empty storage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from projections.ports import ArchiveReader, Outbox, Quarantine, Reviews, RiskStore


@dataclass(frozen=True)
class StoragePorts:
    """The ports of one storage, and how a test marks events as backfilled (the gateway's part)."""

    risk: RiskStore
    outbox: Outbox
    quarantine: Quarantine
    reviews: Reviews
    mark_backfilled: Callable[[Sequence[str]], Awaitable[None]]
    archive: ArchiveReader
