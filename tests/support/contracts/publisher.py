"""The contract of EventPublisher (services.ingest.ports), for Kafka and the in-memory twin.

A subclass provides the `port` fixture and the hooks: a topic of the test's own, and what is on it.
"""

from __future__ import annotations

import uuid

from services.ingest.ports import EventPublisher, OutgoingRecord

TIMEOUT = 30.0  # acknowledged well within this on a broker that is up


class EventPublisherContract:
    async def new_topic(self, port: EventPublisher) -> str:
        """A topic no other test uses, with four partitions."""
        raise NotImplementedError

    async def records_on(self, port: EventPublisher, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
        """(partition, offset, key, value) of every record on the topic, by partition and offset."""
        raise NotImplementedError

    async def test_nothing_to_publish_is_nothing_published(self, port: EventPublisher) -> None:
        assert await port.publish([], TIMEOUT) == []

    async def test_keyed_records_are_acknowledged_in_order_one_partition_per_key(self, port: EventPublisher) -> None:
        topic = await self.new_topic(port)
        keys = [f"ps_{uuid.uuid4().hex}".encode() for _ in range(3)]
        records = [OutgoingRecord(topic, keys[n % 3], f"value {n}".encode(), [("ce_id", str(n).encode())])
                   for n in range(9)]
        deliveries = await port.publish(records, TIMEOUT)
        assert [d.status for d in deliveries] == ["acknowledged"] * 9
        assert {d.topic for d in deliveries} == {topic}
        for key in keys:
            mine = [d for d, r in zip(deliveries, records, strict=True) if r.key == key]
            assert len({d.partition for d in mine}) == 1, "one key, one partition"
            offsets = [d.offset for d in mine if d.offset is not None]
            assert offsets == sorted(offsets) and len(set(offsets)) == 3, "in the order given"
        on_topic = {(p, o): (k, v) for p, o, k, v in await self.records_on(port, topic)}
        assert {(d.partition, d.offset): (r.key, r.value) for d, r in zip(deliveries, records, strict=True)} == on_topic

    async def test_a_record_without_a_key_is_published(self, port: EventPublisher) -> None:
        topic = await self.new_topic(port)
        [delivery] = await port.publish([OutgoingRecord(topic, None, b"keyless", [])], TIMEOUT)
        assert delivery.acknowledged
        assert [(k, v) for _, _, k, v in await self.records_on(port, topic)] == [(None, b"keyless")]

    async def test_a_broker_that_is_up_answers_a_ping(self, port: EventPublisher) -> None:
        await port.ping(TIMEOUT)
