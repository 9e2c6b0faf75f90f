"""The in-memory IngestRecords and EventPublisher pass the contracts of the PostgreSQL and Kafka ones."""

from __future__ import annotations

import uuid

import pytest

from services.adapters.memory import ManualClock
from services.adapters.memory.ingest import MemoryEventPublisher, MemoryIngestRecords
from services.ingest.ports import EventPublisher, IngestRecords, OutgoingRecord
from tests.support.contracts.ingest import IngestRecordsContract
from tests.support.contracts.publisher import EventPublisherContract


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


class TestMemoryEventPublisher(EventPublisherContract):
    @pytest.fixture
    def port(self) -> MemoryEventPublisher:
        return MemoryEventPublisher(partitions=4)

    async def new_topic(self, port: EventPublisher) -> str:
        return f"test.publisher.{uuid.uuid4().hex[:8]}"

    async def records_on(self, port: EventPublisher, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
        assert isinstance(port, MemoryEventPublisher)
        counts: dict[int, int] = {}
        kept = []
        for record in port.published(topic):
            partition = port.partition_of(record.key)
            kept.append((partition, counts.get(partition, 0), record.key, record.value))
            counts[partition] = counts.get(partition, 0) + 1
        return sorted(kept, key=lambda row: (row[0], row[1]))

    async def test_a_broker_away_leaves_records_unsent_and_a_silent_one_unknown(self) -> None:
        waited: list[float] = []
        port = MemoryEventPublisher(mode="down", wait=waited.append)
        record = OutgoingRecord("t", b"k", b"v", [])
        assert [d.status for d in await port.publish([record, record], 2.0)] == ["unsent", "unsent"]
        port.mode = "silent"
        assert [d.status for d in await port.publish([record], 2.0)] == ["unknown"]
        assert waited == [2.0] and port.published("t") == []
        with pytest.raises(TimeoutError):
            await port.ping(1.0)
