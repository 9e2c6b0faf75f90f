"""The PostgreSQL user and client directories, on the real embedded PostgreSQL, pass the contracts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.adapters.postgres.pool import create_pool
from services.adapters.postgres.directory import PostgresClientDirectory, PostgresUserDirectory
from services.runtime.stack import Stack
from tests.support.contracts.directory import ClientDirectoryContract, UserDirectoryContract

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    assert stack.settings.database_url
    pool = await create_pool(stack.settings.database_url, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


class TestPostgresUserDirectory(UserDirectoryContract):
    @pytest.fixture
    def users(self, pool: asyncpg.Pool) -> PostgresUserDirectory:
        return PostgresUserDirectory(pool)


class TestPostgresClientDirectory(ClientDirectoryContract):
    @pytest.fixture
    def clients(self, pool: asyncpg.Pool) -> PostgresClientDirectory:
        return PostgresClientDirectory(pool)
