"""The PostgreSQL IngestRecords, on the real embedded PostgreSQL, passes the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.adapters.postgres.pool import create_pool
from services.adapters.postgres.ingest import PostgresIngestRecords
from services.ingest.ports import IngestRecords
from services.runtime.stack import Stack
from tests.support.api import ingest
from tests.support.contracts.ingest import IngestRecordsContract
from tests.support.scenario import at, event, new_person

pytestmark = pytest.mark.integration


class TestPostgresIngestRecords(IngestRecordsContract):
    @pytest.fixture
    async def port(self, stack: Stack) -> AsyncIterator[PostgresIngestRecords]:
        assert stack.settings.database_url
        pool = await create_pool(stack.settings.database_url, max_size=4)
        self.stack = stack
        try:
            yield PostgresIngestRecords(pool)
        finally:
            await pool.close()

    @staticmethod
    def _pool(port: IngestRecords) -> asyncpg.Pool:
        assert isinstance(port, PostgresIngestRecords)
        return port.pool

    async def identity(self, port: IngestRecords, alias: str) -> tuple[str, str] | None:
        row = await self._pool(port).fetchrow(
            "SELECT identity_number, kind FROM subject_identity WHERE pseudonym = $1", alias)
        return None if row is None else (row["identity_number"], row["kind"])

    async def dead_letters_of(self, port: IngestRecords, source: str) -> list[tuple[str, bytes]]:
        rows = await self._pool(port).fetch("SELECT reason, original FROM dead_letter WHERE source = $1 ORDER BY id",
                                            source)
        return [(row["reason"], bytes(row["original"])) for row in rows]

    async def backfilled(self, port: IngestRecords, event_ids: list[str]) -> set[str]:
        rows = await self._pool(port).fetch(
            "SELECT event_id::text AS event_id FROM backfill_event WHERE event_id = ANY($1::uuid[])", event_ids)
        return {row["event_id"] for row in rows}

    async def archived_event(self, port: IngestRecords) -> str:
        document = event("police.domestic_callout", new_person(), at(13), {"injuries": False})
        await ingest(self.stack, document)  # through the gateway and the risk stage into the archive
        return str(document["event_id"])

    async def make_unavailable(self, port: IngestRecords) -> None:
        await self._pool(port).close()
