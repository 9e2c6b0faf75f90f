"""The outbox on PostgreSQL: written in the risk batch's transaction, relayed to the broker from here."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from projections.ports import OutboxBacklog, OutboxMessage
from services.adapters.postgres.pool import Connection, port_errors


class _Connection:
    """A pooled connection in a transaction: committed when the block succeeds, rolled back otherwise;
    acquiring, starting and ending it raise the ports' errors."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __aenter__(self) -> Connection:
        with port_errors():
            self.connection = await self.pool.acquire()
            try:
                self.transaction = self.connection.transaction()
                await self.transaction.start()
            except BaseException:
                await self.pool.release(self.connection)
                raise
        return self.connection

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        try:
            with port_errors():
                if kind is None:
                    await self.transaction.commit()
                else:
                    with contextlib.suppress(asyncpg.InterfaceError):  # the connection is gone: nothing committed
                        await self.transaction.rollback()
        finally:
            await self.pool.release(self.connection)


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
        async with _Connection(self.pool) as connection:
            with port_errors():
                rows = await connection.fetch(
                    """SELECT id, topic, message_key, message FROM outbox WHERE published_at IS NULL
                       ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                    limit,
                )
            if not rows:
                return 0
            # the publisher's own errors pass as they are: they are not the store's
            await publish([OutboxMessage(r["id"], r["topic"], r["message_key"], bytes(r["message"])) for r in rows])
            with port_errors():
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
