"""The in-memory IngestRecords passes the contract of the PostgreSQL one."""

from __future__ import annotations

import uuid

import pytest

from services.adapters.memory import ManualClock
from services.adapters.memory.ingest import MemoryIngestRecords
from services.ingest.ports import IngestRecords
from tests.support.contracts.ingest import IngestRecordsContract


class TestMemoryIngestRecords(IngestRecordsContract):
    @pytest.fixture
    def port(self) -> MemoryIngestRecords:
        return MemoryIngestRecords(clock=ManualClock(tick=0.001))  # time passes between statements, as in SQL

    async def identity(self, port: IngestRecords, alias: str) -> tuple[str, str] | None:
        assert isinstance(port, MemoryIngestRecords)
        return port.identities.get(alias)

    async def dead_letters_of(self, port: IngestRecords, source: str) -> list[tuple[str, bytes]]:
        assert isinstance(port, MemoryIngestRecords)
        return [(reason, original) for kept, reason, original in port.dead_letters if kept == source]

    async def backfilled(self, port: IngestRecords, event_ids: list[str]) -> set[str]:
        assert isinstance(port, MemoryIngestRecords)
        return port.backfill & set(event_ids)

    async def archived_event(self, port: IngestRecords) -> str:
        assert isinstance(port, MemoryIngestRecords)
        event_id = str(uuid.uuid4())
        assert await self.claim(port, event_id, "archived")
        await port.record_accepted("cluster-now", [(event_id, "agency.police.v1", 0, 0)])
        port.archived.add(event_id)
        return event_id

    async def make_unavailable(self, port: IngestRecords) -> None:
        assert isinstance(port, MemoryIngestRecords)
        port.available = False
