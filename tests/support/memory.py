"""The in-memory twins over one MemoryDatabase, as the contract suites and the processor tests use them."""

from __future__ import annotations

from collections.abc import Sequence

from services.adapters.memory.casework import MemoryReviews, record_backfill
from services.adapters.memory.outbox import MemoryOutbox
from services.adapters.memory.quarantine import MemoryQuarantine
from services.adapters.memory.risk import MemoryRiskStore
from services.adapters.memory.tables import MemoryDatabase
from tests.support.contracts import StoragePorts


def memory_ports(database: MemoryDatabase | None = None) -> StoragePorts:
    database = database or MemoryDatabase()

    async def mark_backfilled(event_ids: Sequence[str]) -> None:
        record_backfill(database, event_ids)

    risk = MemoryRiskStore(database)
    return StoragePorts(risk, MemoryOutbox(database), MemoryQuarantine(database), MemoryReviews(database),
                        mark_backfilled, archive=risk)
