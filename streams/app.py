"""The stream worker (faust): stages normalize and risk, the outbox relay and the scheduler.

Read top to bottom, this is the topology's processing half (topic names: streams/topology.py).
Each stage is a consumer group of its own that handles whole fetches and commits only after
a batch's effects are durable (streams/consume.py), so Kafka's committed offsets never pass
PostgreSQL's tracked ones. PostgreSQL, not Kafka, is authoritative about what was applied:
the risk stage resumes after its tracked offsets and skips what it already applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from typing import Any, Awaitable, Callable, NoReturn, Sequence, TypeVar

import asyncpg
import faust
from faust.app.base import BootStrategy
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError

from projections.normalize import review_due_event
from projections.policy import Policy
from projections.store import OutboxMessage, Store, create_pool
from schemas.codec import encode_risk_event
from services import metrics
from services.logs import log_context, with_log_context
from services.settings import Settings
from streams.kafka import cluster_id, new_producer, risk_event_headers
from streams.consume import Record, Stage, run_stage
from streams.normalize import normalize_batch
from streams.risk import RiskProcessor
from streams.topology import STAGE_TOPICS, SUBJECT_EVENTS, stage_group

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerRuntime:
    """Connections the stages and tasks share, opened once when the worker starts."""

    def __init__(self, settings: Settings, policy: Policy) -> None:
        self.settings = settings
        self.policy = policy
        self._ready = asyncio.Lock()
        self._started = False
        self.store: Store
        self.producer: AIOKafkaProducer
        self.processor: RiskProcessor
        self.cluster_id = ""
        self.outbox_written = asyncio.Event()  # set by the risk stage, cleared by the relay
        self.stages: list[Stage] = []

    async def ready(self) -> "WorkerRuntime":
        async with self._ready:
            if not self._started:
                assert self.settings.database_url, "no database configured"
                self.store = Store(await create_pool(self.settings.database_url))
                self.producer = new_producer(self.settings)
                await self.producer.start()
                self.cluster_id = await cluster_id(self.settings)
                self.processor = RiskProcessor(self.store, self.policy, self.cluster_id)
                self._started = True
        return self

    async def applied_positions(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Where the risk stage resumes: after the offsets PostgreSQL tracked on this cluster."""
        return await self.store.applied_positions(self.cluster_id, partitions)

    async def close(self) -> None:
        if self._started:
            await self.producer.stop()
            await self.store.pool.close()


async def normalize(runtime: WorkerRuntime, records: list[Record]) -> None:
    started = time.perf_counter()
    outcome = await normalize_batch(records, runtime.producer)
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


def build_worker(settings: Settings, policy: Policy) -> tuple[faust.App, WorkerRuntime]:
    assert settings.kafka_bootstrap_servers, "no Kafka bootstrap servers configured"
    runtime = WorkerRuntime(settings, policy)
    # faust keeps its tables' data in a directory: in the state dir, never the working directory
    app = faust.App(settings.consumer_group, store="memory://", web_enabled=False,
                    datadir=settings.state_dir / "faust")
    # faust hosts the worker (lifecycle, signals, tasks); the stages consume through
    # streams/consume.py, so faust's own Kafka consumer and producer are not started.
    app.boot_strategy = BootStrategy(app, enable_kafka=False)
    normalize_stage = Stage("normalize", stage_group(settings.consumer_group, "normalize"), STAGE_TOPICS["normalize"],
                            handle=lambda records: normalize(runtime, records))
    risk_stage = Stage("risk", stage_group(settings.consumer_group, "risk"), STAGE_TOPICS["risk"],
                       handle=lambda records: assess_risk(runtime, records),
                       positions=lambda partitions: runtime.applied_positions(partitions))
    runtime.stages = [normalize_stage, risk_stage]

    for stage in runtime.stages:
        app.task(_stage_task(app, runtime, stage))

    @app.task
    @with_log_context(stage="outbox relay")
    async def outbox_relay() -> None:
        await runtime.ready()

        async def publish(messages: list[OutboxMessage]) -> None:
            sends = [await runtime.producer.send(m.topic, m.message, key=m.key.encode()) for m in messages]
            await asyncio.gather(*sends)
            metrics.record_relayed(messages)

        while not app.should_stop:
            try:
                relayed = await runtime.store.relay_outbox(publish, limit=1000)
            except Exception:  # keep relaying: a broker or database hiccup must not end the relay
                log.exception("outbox relay failed; retrying")
                relayed = 0
            if not relayed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(runtime.outbox_written.wait(), settings.outbox_poll_seconds)
                runtime.outbox_written.clear()

    @app.task
    @with_log_context(stage="scheduler")
    async def scheduler() -> None:
        if not settings.scheduler_enabled:
            return
        await runtime.ready()
        while not app.should_stop:
            try:
                metrics.record_scheduled(await emit_due_reviews(runtime, now=dt.datetime.now(dt.timezone.utc)))
            except Exception:
                log.exception("scheduler failed; retrying")
            await asyncio.sleep(settings.scheduler_interval_seconds)

    @app.task
    async def operator_metrics() -> None:
        await metrics.watch_worker(app, runtime, settings)

    @app.on_before_shutdown.connect
    async def close_runtime(app: faust.App, **kwargs: Any) -> None:  # noqa: ARG001
        await runtime.close()

    return app, runtime


TRANSIENT = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
             asyncpg.TooManyConnectionsError, KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError)


async def until_done(stage: str, work: Callable[[], Awaitable[T]]) -> T:
    """Run one batch until it succeeds, or end the process before its offsets are committed.

    A stage commits a batch's offsets once its handler returns, and a later batch would move
    the tracked offsets past a failed one: either would lose events. So
    transient failures (broker or database away) are retried with backoff, and anything else
    ends the process at once: it restarts from the last committed offsets and replays.
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
    """Write a review_due event into the log for every projection whose review time has come.

    The event's time is the due time and its id is derived from (subject, due time), so
    concurrent schedulers and retries produce the same event, folded once.
    """
    rows = await runtime.store.pool.fetch(
        """SELECT subject, region, (extract(epoch FROM next_review_at) * 1000)::bigint AS due
           FROM risk_projection WHERE next_review_at <= $1 ORDER BY next_review_at LIMIT 10000""",
        now,
    )
    sends = []
    for row in rows:
        event = review_due_event(row["subject"], int(row["due"]), region=row["region"])
        sends.append(await runtime.producer.send(SUBJECT_EVENTS, value := encode_risk_event(event.to_record()),
                                                 key=event.subject.encode(),
                                                 headers=risk_event_headers(event, value, "scheduler")))
    await asyncio.gather(*sends)
    return len(rows)
