"""The stream worker (faust): agents normalize and risk, the outbox relay and the scheduler.

Read top to bottom, this is the topology's processing half (topic names: streams/topology.py).
Agents run with concurrency=1 and batch with take_events(): faust acks a batch only after
the agent body finished with it, so Kafka's committed offsets never pass PostgreSQL's
tracked ones. PostgreSQL, not Kafka, is authoritative about what was applied.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from typing import Any, Awaitable, Callable, NoReturn, TypeVar

import asyncpg
import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError

from projections.normalize import review_due_event
from projections.policy import Policy
from projections.store import OutboxMessage, Store, create_pool
from schemas.codec import encode_risk_event
from services import metrics
from services.settings import Settings
from streams.kafka import cluster_id, new_producer
from streams.normalize import AgencyRecord, normalize_batch
from streams.risk import Consumed, RiskProcessor
from streams.topology import AGENCY_TOPICS, SUBJECT_EVENTS

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerRuntime:
    """Connections the agents share, opened once when the worker starts."""

    def __init__(self, settings: Settings, policy: Policy) -> None:
        self.settings = settings
        self.policy = policy
        self._ready = asyncio.Lock()
        self._started = False
        self.store: Store
        self.producer: AIOKafkaProducer
        self.processor: RiskProcessor

    async def ready(self) -> "WorkerRuntime":
        async with self._ready:
            if not self._started:
                assert self.settings.database_url, "no database configured"
                self.store = Store(await create_pool(self.settings.database_url))
                self.producer = new_producer(self.settings)
                await self.producer.start()
                self.processor = RiskProcessor(self.store, self.policy, await cluster_id(self.settings))
                self._started = True
        return self

    async def close(self) -> None:
        if self._started:
            await self.producer.stop()
            await self.store.pool.close()


def build_worker(settings: Settings, policy: Policy) -> tuple[faust.App, WorkerRuntime]:
    assert settings.kafka_bootstrap_servers, "no Kafka bootstrap servers configured"
    runtime = WorkerRuntime(settings, policy)
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=_faust_credentials(settings),
        store="memory://",
        web_enabled=False,
        topic_allow_declare=False,  # topics are created explicitly, partitions matching
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=settings.batch_size,
        stream_buffer_maxsize=settings.batch_size * 4,
        # the embedded broker makes joins wait for the rebalance timeout: keep it short
        broker_rebalance_timeout=10,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_commit_every=settings.batch_size,
        broker_commit_interval=0.5,
    )
    agency_topic = app.topic(*AGENCY_TOPICS.values(), key_serializer="raw", value_serializer="raw")
    subject_events = app.topic(SUBJECT_EVENTS, key_serializer="raw", value_serializer="raw")
    size, within = settings.batch_size, settings.batch_within_seconds

    @app.agent(agency_topic, name="normalize", concurrency=1)
    async def normalize_agent(stream: faust.StreamT[Any]) -> None:
        await runtime.ready()
        async for events in stream.take_events(size, within=within):
            records = [AgencyRecord(e.message.topic, e.message.partition, e.message.offset, e.value,
                                    metrics.broker_time_ms(e.message)) for e in events]
            started = time.perf_counter()
            outcome = await until_done("normalize", lambda: normalize_batch(records, runtime.producer))
            metrics.record_normalized(records, outcome, time.perf_counter() - started)
            for reason in outcome.refused:
                log.warning("normalize refused a record: %s", reason)

    @app.agent(subject_events, name="risk", concurrency=1)
    async def risk_agent(stream: faust.StreamT[Any]) -> None:
        await runtime.ready()
        async for events in stream.take_events(size, within=within):
            batch = [Consumed(e.message.topic, e.message.partition, e.message.offset, e.value,
                              metrics.broker_time_ms(e.message)) for e in events]
            started = time.perf_counter()
            applied = await until_done("risk", lambda: runtime.processor.process(batch))
            metrics.record_risk_batch(batch, applied, time.perf_counter() - started)

    @app.task
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
                await asyncio.sleep(settings.outbox_poll_seconds)

    @app.task
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
    """Run one batch until it succeeds, or end the process before faust can ack it.

    faust's take_events() acks a batch when the agent body leaves it, even by an exception,
    and a later batch would move the tracked offsets past it: either would lose events. So
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
        sends.append(await runtime.producer.send(SUBJECT_EVENTS, encode_risk_event(event.to_record()),
                                                 key=event.subject.encode()))
    await asyncio.gather(*sends)
    return len(rows)


def _faust_credentials(settings: Settings) -> Any:
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username, password=password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=_ssl_context(settings) if settings.kafka_security_protocol == "SASL_SSL" else None,
        )
    if settings.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    return None


def _ssl_context(settings: Settings) -> Any:
    from streams.kafka import client_options

    return client_options(settings).get("ssl_context")
