"""PostgreSQL adapters (asyncpg): every SQL statement of Riskwatch ends up in this package."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

# The database away, not a defect of the statement: the port's StoreUnavailable. asyncpg raises
# InternalClientError when it returns a connection that died mid-query to its pool.
# Every adapter maps these, and only these, to StoreUnavailable (pool.port_errors, access_log, ingest).
DATABASE_AWAY: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError, asyncpg.OperatorInterventionError, asyncpg.QueryCanceledError,
)


def columns(rows: Iterable[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    """Rows as `width` column lists, for unnest($1::type[], ...)."""
    result: tuple[list[Any], ...] = tuple([] for _ in range(width))
    for row in rows:
        for column, value in zip(result, row, strict=True):
            column.append(value)
    return result
