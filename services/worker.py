"""The stream worker (faust): stages normalize and risk, the outbox relay and the scheduler.

Read top to bottom, this is the topology's processing half (topic names: streams/topology.py).
Each stage is a consumer group of its own that handles whole fetches and commits only after
a batch's effects are durable (streams/consume.py), so Kafka's committed offsets never pass
PostgreSQL's tracked ones. PostgreSQL, not Kafka, is authoritative about what was applied:
the risk stage resumes after its tracked offsets and skips what it already applied.

The storage comes in through ports (projections/ports.py): `build_worker` takes a function that
connects them (services/bootstrap.py gives the PostgreSQL adapters), so nothing here knows a driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import faust
from faust.app.base import BootStrategy
from aiokafka import AIOKafkaProducer

from projections.policy import Policy
from projections.ports import Outbox, OutboxMessage, Quarantine, Reviews, RiskStore
from services.runtime import metrics
from services.runtime.logs import log_context, with_log_context
from services.runtime.settings import Settings
from streams.kafka import cluster_id, new_producer, published_headers
from streams.consume import TRANSIENT, Record, Stage, run_stage
from streams.normalize import normalize_batch
from streams.risk import RiskProcessor
from streams.topology import STAGE_TOPICS, stage_group

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class WorkerPorts:
    """The storage the worker's stages and tasks use, and how to let go of it."""

    risk: RiskStore
    outbox: Outbox
    quarantine: Quarantine
    reviews: Reviews
    close: Callable[[], Awaitable[None]]


# opens the worker's ports for these settings (services.bootstrap.worker_ports)
ConnectPorts = Callable[[Settings], Awaitable[WorkerPorts]]


class WorkerRuntime:
    """Connections the stages and tasks share, opened once when the worker starts."""

    def __init__(self, settings: Settings, policy: Policy, connect: ConnectPorts, *,
                 started: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.policy = policy
        self.connect = connect
        self._on_started = started
        self._ready = asyncio.Lock()
        self._started = False
        self.ports: WorkerPorts
        self.store: RiskStore  # the risk stage's store (ports.risk)
        self.outbox: Outbox
        self.producer: AIOKafkaProducer
        self.processor: RiskProcessor
        self.cluster_id = ""
        self.outbox_written = asyncio.Event()  # set by the risk stage, cleared by the relay
        self.stages: list[Stage] = []

    async def ready(self) -> WorkerRuntime:
        async with self._ready:
            if not self._started:
                self.ports = await self.connect(self.settings)
                self.store, self.outbox = self.ports.risk, self.ports.outbox
                self.producer = new_producer(self.settings)
                try:
                    await self.producer.start()
                except BaseException:
                    await self.ports.close()
                    raise
                self.cluster_id = await cluster_id(self.settings)
                clock = time.time if self.settings.paging_clock == "wall" else None
                self.processor = RiskProcessor(self.store, self.policy, self.cluster_id, clock=clock)
                self._started = True
                if self._on_started is not None:
                    self._on_started()
        return self

    async def applied_positions(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Where the risk stage resumes: after the offsets PostgreSQL tracked on this cluster."""
        return await self.store.applied_positions(self.cluster_id, partitions)

    async def close(self) -> None:
        if self._started:
            await self.producer.stop()
            await self.ports.close()


async def normalize(runtime: WorkerRuntime, records: list[Record]) -> None:
    started = time.perf_counter()
    outcome = await normalize_batch(records, runtime.producer)
    # kept before the offsets are committed: a quarantined record is never lost in between
    await runtime.ports.quarantine.write(outcome.quarantined)
    for entry in outcome.quarantined:
        log.error("quarantined %s[%d]@%d (%s): %s", entry.topic, entry.partition, entry.offset,
                  entry.reason_class, entry.reason)
    metrics.record_normalized(records, outcome, time.perf_counter() - started)
    for reason in outcome.refused:
        log.warning("normalize refused a record: %s", reason)


async def assess_risk(runtime: WorkerRuntime, records: list[Record]) -> None:
    started = time.perf_counter()
    applied = await runtime.processor.process(records)
    if applied.applied:
        runtime.outbox_written.set()  # risk changes, maybe alerts: the relay need not wait for its next look
    metrics.record_risk_batch(records, applied, time.perf_counter() - started)


def _stage_task(app: faust.App, runtime: WorkerRuntime, stage: Stage) -> Callable[[], Awaitable[None]]:
    async def consume() -> None:
        with log_context(stage=stage.name):  # every record this stage logs names it
            await runtime.ready()
            await run_stage(stage, runtime.settings, lambda: app.should_stop, until_done)
    consume.__qualname__ = f"stage_{stage.name}"
    return consume


def build_stages(runtime: WorkerRuntime) -> list[Stage]:
    """The two stages, normalize then risk, each its own consumer group."""
    group = runtime.settings.consumer_group
    return [
        Stage("normalize", stage_group(group, "normalize"), STAGE_TOPICS["normalize"],
              handle=lambda records: normalize(runtime, records)),
        Stage("risk", stage_group(group, "risk"), STAGE_TOPICS["risk"],
              handle=lambda records: assess_risk(runtime, records),
              positions=lambda partitions: runtime.applied_positions(partitions)),
    ]


def build_worker(settings: Settings, policy: Policy, connect: ConnectPorts, *,
                 started: Callable[[], None] | None = None) -> tuple[faust.App, WorkerRuntime]:
    """The faust app hosting the stages, the relay, the scheduler and the metrics, on the ports `connect` opens;
    `started` is called once the runtime is ready (its connections open)."""
    assert settings.kafka_bootstrap_servers, "no Kafka bootstrap servers configured"
    runtime = WorkerRuntime(settings, policy, connect, started=started)
    # faust keeps its tables' data in a directory: in the state dir, never the working directory
    app = faust.App(settings.consumer_group, store="memory://", web_enabled=False,
                    datadir=settings.state_dir / "faust")
    # faust hosts the worker (lifecycle, signals, tasks); the stages consume through
    # streams/consume.py, so faust's own Kafka consumer and producer are not started.
    app.boot_strategy = BootStrategy(app, enable_kafka=False)
    runtime.stages = build_stages(runtime)
    for stage in runtime.stages:
        app.task(_stage_task(app, runtime, stage))

    @app.task  # type: ignore[untyped-decorator]  # (faust's decorators are untyped)
    @with_log_context(stage="outbox relay")
    async def outbox_relay() -> None:
        await runtime.ready()

        async def publish(messages: list[OutboxMessage]) -> None:
            sends = [await runtime.producer.send(m.topic, m.message, key=m.key.encode(),
                                                headers=published_headers(m.topic, m.message)) for m in messages]
            await asyncio.gather(*sends)
            metrics.record_relayed(messages)

        while not app.should_stop:
            try:
                relayed = await runtime.outbox.relay(publish, limit=1000)
            except Exception:  # keep relaying: a broker or database hiccup must not end the relay
                log.exception("outbox relay failed; retrying")
                relayed = 0
            if not relayed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(runtime.outbox_written.wait(), settings.outbox_poll_seconds)
                runtime.outbox_written.clear()

    @app.task  # type: ignore[untyped-decorator]
    @with_log_context(stage="scheduler")
    async def scheduler() -> None:
        if not settings.scheduler_enabled:
            return
        await runtime.ready()
        while not app.should_stop:
            try:
                opened = await emit_due_reviews(runtime, now=dt.datetime.now(dt.UTC))
                if opened:
                    log.info("opened %d review items", opened)
            except Exception:
                log.exception("scheduler failed; retrying")
            await asyncio.sleep(settings.scheduler_interval_seconds)

    @app.task  # type: ignore[untyped-decorator]
    async def operator_metrics() -> None:
        await metrics.watch_worker(app, runtime, settings)

    @app.on_before_shutdown.connect
    async def close_runtime(app: faust.App, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await runtime.close()

    return app, runtime


async def until_done(stage: str, work: Callable[[], Awaitable[T]]) -> T:
    """Run one batch until it succeeds, or end the process before its offsets are committed.

    A stage commits a batch's offsets once its handler returns, and a later batch would move
    the tracked offsets past a failed one: either would lose events. So
    transient failures (broker or database away) are retried with backoff, and anything else
    ends the process at once: it restarts from the last committed offsets and replays. (A
    record's own content is no reason to get here: the stages quarantine such records.)
    """
    delay = 0.1
    while True:
        try:
            return await work()
        except TRANSIENT as error:
            log.warning("%s batch failed (%s: %s); retrying in %.1f s", stage, type(error).__name__, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        except asyncio.CancelledError:
            log.warning("%s batch interrupted by shutdown; it will be replayed", stage)
            _exit(0)
        except BaseException:
            log.critical("%s batch failed; stopping this worker so that nothing is skipped", stage, exc_info=True)
            _exit(70)


def _exit(code: int) -> NoReturn:
    logging.shutdown()
    os._exit(code)


async def emit_due_reviews(runtime: WorkerRuntime, now: dt.datetime) -> int:
    """Open a review item for every subject whose review has come (projections.casework.review_terms).

    Reviews are a work queue, not alerts: no event enters the log until someone completes one
    (services/api/reviews.py), and however long the scheduler was away a subject has at most
    one open item.
    """
    return await runtime.ports.reviews.open_due(runtime.policy, now)
