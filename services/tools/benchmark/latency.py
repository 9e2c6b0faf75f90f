"""Alert latency: from the gateway's acknowledgement of an event to its alert on alerts.v1."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codec import decode_published
from services.api.auth import local_operator
from services.tools.benchmark.phases import wait_until_applied
from services.tools.benchmark.workload import Throughput, inject_paced
from services.bootstrap import open_gateway
from services.runtime.stack import Stack
from streams.kafka import client_options
from streams.topology import ALERTS

# After the pipeline is idle the last alerts are on the broker; give the reader time to fetch them.
LAST_ALERTS_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class LatencyFigure:
    rate_asked: float
    injected: Throughput
    alerts: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    # the same p99 up to the relay's send (the alert record's timestamp): what is left of p99
    # is the hop from the broker to a reader
    published_p99_ms: float = 0.0


async def alert_latency(stack: Stack, lines: list[bytes], rate: float, archived_before: int,
                        timeout: float) -> LatencyFigure:
    """Inject `lines` at `rate` into an idle pipeline and time every alert they cause.

    `archived_before`: events in the archive already; the phase ends when the injected ones
    are archived too and every alert is published.
    """
    consumer = AIOKafkaConsumer(**client_options(stack.settings), group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=stack.settings.fetch_wait_ms)
    await consumer.start()
    acknowledged: dict[str, float] = {}  # event id -> ack time
    arrived: dict[str, tuple[str, float, float]] = {}  # alert id -> (causing event id, arrival, sent)
    try:
        partitions = [TopicPartition(ALERTS, partition) for partition in range(stack.settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolve the end now, not after the first alert
        reading = asyncio.create_task(_read_alerts(consumer, arrived))
        try:
            async with open_gateway(stack.settings, local_operator()) as gateway:
                injected = await inject_paced(gateway, lines, rate, acknowledged)
            await wait_until_applied(stack, archived_before + len(acknowledged), timeout)
            await asyncio.sleep(LAST_ALERTS_SECONDS)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
    finally:
        await consumer.stop()
    # An alert is matched to its event only now: the reader may stamp an alert before the
    # injecting coroutine got round to stamping the acknowledgement of its cause. Alerts of
    # earlier events (the broker's end offset can lag behind its last batch) match nothing.
    latencies = sorted((arrival - acknowledged[cause]) * 1000 for cause, arrival, _ in arrived.values()
                       if cause in acknowledged)
    published = sorted((sent - acknowledged[cause]) * 1000 for cause, _, sent in arrived.values()
                       if cause in acknowledged)
    return LatencyFigure(rate, injected, len(latencies), percentile(latencies, 50), percentile(latencies, 95),
                         percentile(latencies, 99), percentile(published, 99))


async def _read_alerts(consumer: AIOKafkaConsumer, arrived: dict[str, tuple[str, float, float]]) -> None:
    # the relay stamps each record with the wall clock when it sends it; on this clock here
    to_counter = time.perf_counter() - time.time()
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        now = time.perf_counter()
        for records in batches.values():
            for record in records:
                alert = decode_published(ALERTS, record.value)
                # the outbox relay may publish an alert twice: its first arrival counts
                arrived.setdefault(alert["alert_id"], (str(alert["causing_event_id"]).lower(), now,
                                                       record.timestamp / 1000 + to_counter))


def percentile(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of sorted values; 0.0 when there are none."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]
