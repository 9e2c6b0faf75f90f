"""A stage whose batch ran long takes what came meanwhile into its next batch (the embedded broker)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.runtime.stack import Stack
from streams.consume import Record, Stage, run_stage
from streams.kafka import client_options, new_producer

pytestmark = pytest.mark.integration

FETCH_WAIT_MS = 100
LATER = 30  # records sent in the second half of the first batch


async def batches_after_a_long_batch(stack: Stack, catch_up_ms: int) -> list[list[bytes]]:
    """The values of the first three batches of a stage whose first batch takes 0.8 s.

    While it runs, one record is sent at once and LATER records after 0.4 s (by then the client's
    read-ahead, asked for when the batch began, has come back with the first one).
    """
    topic = f"catch-up-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client_options(stack.settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    settings = stack.settings.model_copy(update={"fetch_wait_ms": FETCH_WAIT_MS, "fetch_catch_up_ms": catch_up_ms,
                                                 "batch_within_seconds": 0.05})
    producer = new_producer(settings)
    await producer.start()
    batches: list[list[bytes]] = []

    async def handle(records: list[Record]) -> None:
        batches.append([record.value for record in records])
        if len(batches) == 1:
            await producer.send_and_wait(topic, b"first")
            await asyncio.sleep(0.4)
            for number in range(LATER):
                await producer.send_and_wait(topic, b"later-%d" % number)
            await asyncio.sleep(0.4)

    async def until_done(_: str, work: object) -> object:
        return await work()  # type: ignore[operator]

    try:
        await producer.send_and_wait(topic, b"start")
        stage = Stage("catch-up", f"catch-up-{uuid.uuid4().hex[:8]}", [topic], handle)
        await asyncio.wait_for(run_stage(stage, settings, lambda: sum(map(len, batches)) >= 2 + LATER, until_done),
                               timeout=60)
    finally:
        await producer.stop()
    return batches


async def test_what_came_during_a_long_batch_is_handled_in_the_next_one(stack: Stack) -> None:
    later = [b"later-%d" % number for number in range(LATER)]
    caught_up = await batches_after_a_long_batch(stack, catch_up_ms=300)
    assert caught_up == [[b"start"], [b"first", *later]]
    # without it, the client's read-ahead holds only what came first, and the rest waits a batch more
    behind = await batches_after_a_long_batch(stack, catch_up_ms=0)
    assert behind == [[b"start"], [b"first"], later]
