"""Users and agency clients in PostgreSQL: app_user and agency_client (tokens by their SHA-256 only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from services.adapters.postgres import DATABASE_AWAY
from services.api.auth import ClientEntry, DuplicateName, Principal, Role, UserEntry
from services.ingest.clients import AgencyClient
from services.ingest.ports import StoreUnavailable


@asynccontextmanager
async def _available() -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        raise DuplicateName(str(error)) from None
    except DATABASE_AWAY as error:
        raise StoreUnavailable(f"the database did not answer ({type(error).__name__})") from error


class PostgresUserDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add_user(self, name: str, role: Role, scope: frozenset[str], supervisor: bool,
                       token_hash: bytes) -> None:
        async with _available():
            await self.pool.execute(
                "INSERT INTO app_user (name, role, scope, supervisor, token_hash) VALUES ($1, $2, $3, $4, $5)",
                name, role.value, sorted(scope), supervisor, token_hash,
            )

    async def revoke_user(self, name: str) -> bool:
        async with _available():
            status = await self.pool.execute(
                "UPDATE app_user SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
        return bool(status.endswith(" 1"))

    async def user_by_token(self, token_hash: bytes) -> Principal | None:
        async with _available():
            row = await self.pool.fetchrow(
                "SELECT name, role, scope, supervisor FROM app_user WHERE token_hash = $1 AND revoked_at IS NULL",
                token_hash,
            )
        if row is None:
            return None
        return Principal(row["name"], Role(row["role"]), frozenset(row["scope"]), row["supervisor"])

    async def users(self) -> list[UserEntry]:
        async with _available():
            rows = await self.pool.fetch(
                "SELECT name, role, scope, supervisor, revoked_at IS NOT NULL AS revoked FROM app_user ORDER BY name")
        return [UserEntry(row["name"], Role(row["role"]), frozenset(row["scope"]), row["supervisor"], row["revoked"])
                for row in rows]


class PostgresClientDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add_client(self, name: str, agency: str, units: frozenset[str], token_hash: bytes) -> None:
        async with _available():
            await self.pool.execute(
                "INSERT INTO agency_client (name, agency, units, token_hash) VALUES ($1, $2, $3, $4)",
                name, agency, sorted(units), token_hash,
            )

    async def revoke_client(self, name: str) -> bool:
        async with _available():
            status = await self.pool.execute(
                "UPDATE agency_client SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
        return bool(status.endswith(" 1"))

    async def client_by_token(self, token_hash: bytes) -> AgencyClient | None:
        async with _available():
            row = await self.pool.fetchrow(
                "SELECT name, agency, units FROM agency_client WHERE token_hash = $1 AND revoked_at IS NULL",
                token_hash,
            )
        return None if row is None else AgencyClient(row["name"], row["agency"], frozenset(row["units"]))

    async def clients(self) -> list[ClientEntry]:
        async with _available():
            rows = await self.pool.fetch(
                "SELECT name, agency, units, revoked_at IS NOT NULL AS revoked FROM agency_client ORDER BY name")
        return [ClientEntry(row["name"], row["agency"], frozenset(row["units"]), row["revoked"]) for row in rows]
