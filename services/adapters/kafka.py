"""The EventPublisher on aiokafka: acks=all, every wait bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.ingest.ports import Delivery, OutgoingRecord

BROKER_AWAY = (KafkaError, TimeoutError)


class KafkaEventPublisher:
    """Publishes on a started producer (acks=all, see streams.kafka.new_producer); does not own it."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, records: Sequence[OutgoingRecord], timeout: float) -> list[Delivery]:
        """Hand the records over, then wait for the acknowledgements, both within `timeout`.

        A record never handed to the producer is unsent; one handed over but not acknowledged in
        time (or failed after it was handed over) may still arrive, so it is unknown.
        """
        if not records:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sends: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout_at(deadline):
                for record in records:
                    sends.append(await self.producer.send(record.topic, record.value, key=record.key,
                                                          headers=record.headers))
        except BROKER_AWAY:
            pass
        if sends:
            await asyncio.wait(sends, timeout=max(0.0, deadline - loop.time()))
        deliveries = []
        for position, record in enumerate(records):
            if position >= len(sends):
                deliveries.append(Delivery("unsent", record.topic))
                continue
            send = sends[position]
            if send.done() and not send.cancelled() and send.exception() is None:
                sent = send.result()
                deliveries.append(Delivery("acknowledged", sent.topic, sent.partition, sent.offset))
            else:
                if send.done() and not send.cancelled():
                    send.exception()  # retrieved: a failure reported here, not as "never retrieved"
                deliveries.append(Delivery("unknown", record.topic))
        return deliveries

    async def ping(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self.producer.client.fetch_all_metadata()
