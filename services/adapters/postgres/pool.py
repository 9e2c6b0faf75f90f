"""Connection pools and the numbered migrations (migrations/*.sql, applied once each, in order)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from projections.ports import StoreRefused, StoreUnavailable
from services.adapters.postgres import DATABASE_AWAY

MIGRATIONS_LOCK = 0x5249534B  # advisory lock id: "RISK"
# a connection of its own or one acquired from a pool
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
T = TypeVar("T")

# Failures of the connection or the server, not of what was asked: StoreUnavailable to the ports.
# (OperatorInterventionError: PostgreSQL shutting down or starting up.)
UNAVAILABLE = DATABASE_AWAY


async def create_pool(database_url: str, **options: Any) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=options.pop("max_size", 4),
                                     init=_init_connection, **options)
    assert pool is not None
    return pool


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the numbered SQL files not applied yet, each in its own transaction."""
    applied_now: list[str] = []
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", MIGRATIONS_LOCK)
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration"
                " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["name"] for row in await connection.fetch("SELECT name FROM schema_migration")}
            folder = resources.files("services.adapters.postgres").joinpath("migrations")
            files = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
                           key=lambda entry: entry.name)
            for entry in files:
                if entry.name in done:
                    continue
                async with connection.transaction():
                    await connection.execute(entry.read_text(encoding="utf-8"))
                    await connection.execute("INSERT INTO schema_migration (name) VALUES ($1)", entry.name)
                applied_now.append(entry.name)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATIONS_LOCK)
    return applied_now


@contextmanager
def port_errors() -> Iterator[None]:
    """asyncpg's errors as the ports' own: transient ones StoreUnavailable, refused values StoreRefused."""
    try:
        yield
    except UNAVAILABLE as error:
        raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
    except (asyncpg.UntranslatableCharacterError, asyncpg.CharacterNotInRepertoireError) as error:
        raise _refused(error, "text_encoding") from error
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
        raise _refused(error, "database_refused") from error


def _refused(error: asyncpg.PostgresError, reason_class: str) -> StoreRefused:
    detail = getattr(error, "detail", None)  # PostgreSQL says which value it refused here
    return StoreRefused(str(error), reason_class=reason_class, kind=type(error).__name__,
                        detail=detail if isinstance(detail, str) else None)


async def mapped(call: Callable[[], Awaitable[T]]) -> T:
    with port_errors():
        return await call()


def stored_json(value: Any) -> str:
    # arrays of jsonb go over the wire as text and are cast in SQL
    return json.dumps(value, separators=(",", ":"))
