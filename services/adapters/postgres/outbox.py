"""The outbox on PostgreSQL: written in the risk batch's transaction, relayed to the broker from here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from projections.ports import OutboxBacklog, OutboxMessage
from services.adapters.postgres.pool import port_errors


class PostgresOutbox:
    """projections.ports.Outbox on a pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def relay(self, publish: Callable[[list[OutboxMessage]], Awaitable[None]], limit: int) -> int:
        """Claim up to `limit` unpublished messages, publish them, mark them published.

        The rows stay locked (SKIP LOCKED) while `publish` runs, so two relays never send the
        same message at once. A crash after publishing and before the commit republishes it:
        consumers recognise alerts by their deterministic alert_id.
        """
        with port_errors():
            async with self.pool.acquire() as connection, connection.transaction():
                rows = await connection.fetch(
                    """SELECT id, topic, message_key, message FROM outbox WHERE published_at IS NULL
                       ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                    limit,
                )
                if not rows:
                    return 0
                await publish([OutboxMessage(r["id"], r["topic"], r["message_key"], bytes(r["message"]))
                               for r in rows])
                await connection.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
                )
                return len(rows)

    async def backlog(self) -> OutboxBacklog:
        with port_errors():
            row = await self.pool.fetchrow(
                """SELECT count(*) AS backlog, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest
                   FROM outbox WHERE published_at IS NULL"""
            )
        assert row is not None  # an aggregate always has its row
        return OutboxBacklog(int(row["backlog"]), float(row["oldest"]))
