"""The contract of projections.ports.Outbox: relayed oldest first, marked once published."""

from __future__ import annotations

import pytest

from projections.ports import BatchEffects, OutboxMessage
from tests.support.contracts import StoragePorts
from tests.support.contracts.risk import TOPIC, new_id, new_subject


async def written(port: StoragePorts, messages: list[bytes]) -> None:
    """Risk changes into the outbox, one committed batch each, in this order."""
    cluster = new_id()
    for offset, message in enumerate(messages):
        async with port.risk.batch(cluster, {(TOPIC, 0): [offset]}) as unit:
            await unit.commit(BatchEffects(risk_changes=[("risk-changes.v1", new_subject(), message)],
                                           offsets={(TOPIC, 0): offset}))


class OutboxContract:
    async def test_messages_are_relayed_oldest_first_in_batches_of_the_limit(self, port: StoragePorts) -> None:
        await written(port, [b"1", b"2", b"3"])
        batches: list[list[bytes]] = []

        async def publish(messages: list[OutboxMessage]) -> None:
            batches.append([m.message for m in messages])

        assert await port.outbox.relay(publish, limit=2) == 2
        assert await port.outbox.relay(publish, limit=2) == 1
        assert await port.outbox.relay(publish, limit=2) == 0
        assert batches == [[b"1", b"2"], [b"3"]]
        assert (await port.outbox.backlog()).messages == 0

    async def test_a_failed_publication_leaves_the_messages_waiting(self, port: StoragePorts) -> None:
        await written(port, [b"1", b"2"])

        async def failing(messages: list[OutboxMessage]) -> None:
            raise ConnectionError("broker away")

        with pytest.raises(ConnectionError):
            await port.outbox.relay(failing, limit=10)
        backlog = await port.outbox.backlog()
        assert backlog.messages == 2 and backlog.oldest_seconds >= 0
        sent: list[bytes] = []

        async def publish(messages: list[OutboxMessage]) -> None:
            sent.extend(m.message for m in messages)

        assert await port.outbox.relay(publish, limit=10) == 2
        assert sent == [b"1", b"2"]

    async def test_an_empty_outbox_has_no_backlog(self, port: StoragePorts) -> None:
        backlog = await port.outbox.backlog()
        assert backlog == (0, 0.0)
