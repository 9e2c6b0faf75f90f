"""The Kafka EventPublisher, on the real embedded broker, passes the contract of the in-memory one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.adapters.kafka import KafkaEventPublisher
from services.bootstrap import producer
from services.ingest.ports import EventPublisher
from services.runtime.stack import Stack
from streams.kafka import client_options
from tests.support.api import read_topic
from tests.support.contracts.publisher import EventPublisherContract

pytestmark = pytest.mark.integration


class TestKafkaEventPublisher(EventPublisherContract):
    @pytest.fixture
    async def port(self, stack: Stack) -> AsyncIterator[KafkaEventPublisher]:
        self.stack = stack
        async with producer(stack.settings) as started:
            yield KafkaEventPublisher(started)

    async def new_topic(self, port: EventPublisher) -> str:
        topic = f"test.publisher.{uuid.uuid4().hex[:8]}"
        settings = self.stack.settings
        admin = AIOKafkaAdminClient(**client_options(settings))
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, settings.partitions, settings.kafka_replication_factor)])
        finally:
            await admin.close()
        return topic

    async def records_on(self, port: EventPublisher, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
        return sorted((r.partition, r.offset, r.key, r.value) for r in await read_topic(self.stack, topic))
