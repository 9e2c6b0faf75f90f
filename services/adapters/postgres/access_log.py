"""The access log in PostgreSQL (table access_log, append-only)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TypeAlias
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.adapters.postgres import DATABASE_AWAY
from services.api.ports import AccessEntry, AccessQuery, Row, StoreUnavailable

# Failures of the connection, not of the statement: the caller may retry.
TRANSIENT = DATABASE_AWAY


@contextlib.contextmanager
def transient_as_unavailable() -> Iterator[None]:
    """Driver errors of a lost or overloaded connection become the ports' StoreUnavailable."""
    try:
        yield
    except TRANSIENT as error:
        raise StoreUnavailable(f"database: {type(error).__name__}") from error


Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool | PoolConnectionProxy[asyncpg.Record]"


async def insert_access(connection: Executor, entry: AccessEntry) -> None:
    await connection.execute(
        """INSERT INTO access_log (actor, role, action, endpoint, subjects, purpose, query)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        entry.actor, entry.role, entry.action, entry.endpoint, list(entry.subjects), entry.purpose,
        dict(entry.query),
    )


class PostgresAccessLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, entry: AccessEntry) -> None:
        with transient_as_unavailable():
            await insert_access(self._pool, entry)

    @contextlib.asynccontextmanager
    async def recorded(self, entry: AccessEntry) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            with transient_as_unavailable():
                connection = await stack.enter_async_context(self._pool.acquire())
                await stack.enter_async_context(connection.transaction())
                await insert_access(connection, entry)
            yield

    async def read(self, query: AccessQuery, limit: int, offset: int) -> tuple[list[Row], int]:
        clauses: list[str] = ["TRUE"]
        parameters: list[object] = []
        for template, value in (("actor = ${}", query.actor), ("${} = ANY(subjects)", query.subject),
                                ("at >= ${}", query.since), ("at < ${}", query.until)):
            if value is not None:
                parameters.append(value)
                clauses.append(template.format(len(parameters)))
        where = " AND ".join(clauses)
        with transient_as_unavailable():
            total = await self._pool.fetchval(f"SELECT count(*) FROM access_log WHERE {where}", *parameters)
            rows = await self._pool.fetch(
                f"""SELECT id, at, actor, role, action, endpoint, subjects, purpose, query FROM access_log
                    WHERE {where} ORDER BY id DESC LIMIT ${len(parameters) + 1} OFFSET ${len(parameters) + 2}""",
                *parameters, limit, offset,
            )
        return [dict(row) for row in rows], int(total)
