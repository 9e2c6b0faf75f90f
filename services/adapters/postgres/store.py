"""The risk stage's store with what the tools read beside it: the outbox's backlog and how far the
pipeline has come (services/runtime/stack.py waits on it for an idle stack)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from projections.ports import OutboxMessage
from services.adapters.postgres.outbox import PostgresOutbox
from services.adapters.postgres.pool import port_errors
from services.adapters.postgres.risk import PostgresRiskStore


class Store(PostgresRiskStore):
    async def relay_outbox(self, publish: Callable[[list[OutboxMessage]], Awaitable[None]], limit: int) -> int:
        return await PostgresOutbox(self.pool).relay(publish, limit)

    async def outbox_backlog(self) -> int:
        return (await PostgresOutbox(self.pool).backlog()).messages

    async def tracked_offsets(self, cluster_id: str, topic: str) -> dict[int, int]:
        """partition -> the last offset of `topic` the risk stage applied on this cluster."""
        with port_errors():
            rows = await self.pool.fetch(
                "SELECT kafka_partition, kafka_offset FROM tracking WHERE cluster_id = $1 AND topic = $2",
                cluster_id, topic,
            )
        return {row["kafka_partition"]: row["kafka_offset"] for row in rows}

    async def accepted_unarchived(self, cluster_id: str) -> int:
        """Events the gateway accepted on this cluster that the risk stage has not archived yet (a
        record in quarantine waits for an operator, not for the workers, and is not counted)."""
        with port_errors():
            count = await self.pool.fetchval(
                """SELECT count(*) FROM ingested_event i WHERE cluster_id = $1 AND topic IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM event_archive a WHERE a.event_id = i.event_id)
                   AND NOT EXISTS (SELECT 1 FROM quarantine q
                                   WHERE q.event_id = i.event_id AND q.retried_at IS NULL)""",
                cluster_id,
            )
        return int(count)
