"""The outbox's in-memory twin (services/adapters/postgres/outbox.py): oldest first, one relay at a time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from projections.ports import OutboxBacklog, OutboxMessage
from services.adapters.memory.stage_tables import MemoryDatabase


class MemoryOutbox:
    """projections.ports.Outbox on a MemoryDatabase."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database
        self._claimed: set[int] = set()  # ids a relay is publishing now (PostgreSQL: locked, skipped)

    async def relay(self, publish: Callable[[list[OutboxMessage]], Awaitable[None]], limit: int) -> int:
        rows = [row for row in self.database.tables.outbox if not row.published and row.id not in self._claimed][:limit]
        if not rows:
            return 0
        ids = {row.id for row in rows}
        self._claimed |= ids
        try:
            await publish([OutboxMessage(row.id, row.topic, row.key, row.message) for row in rows])
            for row in self.database.tables.outbox:
                if row.id in ids:
                    row.published = True
        finally:
            self._claimed -= ids
        return len(rows)

    async def backlog(self) -> OutboxBacklog:
        waiting = [row for row in self.database.tables.outbox if not row.published]
        oldest = min((row.created_at for row in waiting), default=None)
        return OutboxBacklog(len(waiting), 0.0 if oldest is None else max(0.0, self.database.clock() - oldest))
