"""The composition root: builds the worker, the API, the gateway and the CLI commands from Settings.

The one place that constructs pools (and migrates), producers, the ingest gateway and its
adapters, the directories of users and agency clients, and loads the risk policy. Everything
below it is handed its ports; the command line and the tools ask this module for what they run.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import math
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from projections.policy import Policy, default_policy, load_policy
from projections.ports import Quarantine
from services.adapters.kafka import KafkaEventPublisher
from services.adapters.postgres.casework import PostgresReviews
from services.adapters.postgres.outbox import PostgresOutbox
from services.adapters.postgres.pool import create_pool, migrate
from services.adapters.postgres.quarantine import PostgresQuarantine
from services.adapters.postgres.directory import PostgresClientDirectory, PostgresUserDirectory
from services.adapters.postgres.ingest import PostgresIngestRecords
from services.adapters.postgres.reads import query_ports
from services.adapters.postgres.store import Store
from services.api.app import ApiState, create_api
from services.api.auth import (
    ClientAuthenticator,
    ClientDirectory,
    UserDirectory,
    authenticator_for,
    client_authenticator_for,
)
from services.api.query import query_services
from services.ingest.clients import AgencyClient
from services.ingest.gateway import BULK_TIMEOUT_SECONDS, IngestGateway
from services.ingest.ports import EventPublisher
from services.runtime import stack as runtime_stack
from services.runtime.settings import Settings
from services.runtime.state import NoStackError as NoStackError
from services.runtime.state import pseudonym_key
from streams.kafka import cluster_id, ensure_topics, new_producer

if TYPE_CHECKING:  # the worker (faust) is imported only by the process that runs one
    import faust

    from services.worker import WorkerPorts, WorkerRuntime

log = logging.getLogger(__name__)


def policy(settings: Settings) -> Policy:
    """The risk policy of this process: the configured file, else the shipped one."""
    return policy_from(settings.policy_file)


def policy_from(policy_file: Path | None) -> Policy:
    """The policy of a TOML file (None: the shipped one); a malformed file raises PolicyError."""
    return load_policy(policy_file) if policy_file else default_policy()


# ---- PostgreSQL and the broker ----------------------------------------------------------------


def _database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise NoStackError("no database: start `riskwatch up`, or set RISKWATCH_DATABASE_URL")
    return settings.database_url


@contextlib.asynccontextmanager
async def database(settings: Settings, *, migrated: bool = False, **options: Any) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the configured database (migrated first if asked), closed on exit."""
    pool = await create_pool(_database_url(settings), **options)
    try:
        if migrated:
            await migrate(pool)
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A started acks=all producer on the configured broker, stopped on exit."""
    started = new_producer(settings)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


@contextlib.asynccontextmanager
async def publisher(settings: Settings) -> AsyncIterator[EventPublisher]:
    """An EventPublisher on a producer of its own, stopped on exit."""
    async with producer(settings) as started:
        yield KafkaEventPublisher(started)


async def prepare(settings: Settings) -> list[str]:
    """Apply migrations and create the topics: everything a process needs before it starts."""
    async with database(settings) as pool:
        applied = await migrate(pool)
    await ensure_topics(settings)
    return applied


@contextlib.contextmanager
def started_stack(settings: Settings, *, workers: int = 1, api: bool = True) -> Iterator[runtime_stack.Stack]:
    """Broker and database (embedded unless configured), migrations, topics, workers and API."""
    with runtime_stack.started_stack(settings, prepare=prepare, progress=store, workers=workers, api=api) as stack:
        yield stack


@contextlib.asynccontextmanager
async def store(settings: Settings, **options: Any) -> AsyncIterator[Store]:
    """The risk stage's store on its own pool (rebuild, the live digest, the tools' counts)."""
    async with database(settings, **options) as pool:
        yield Store(pool)


@contextlib.asynccontextmanager
async def quarantine(settings: Settings) -> AsyncIterator[Quarantine]:
    """The records the stages set aside (`riskwatch quarantine`), on a pool of its own."""
    async with database(settings, max_size=1) as pool:
        yield PostgresQuarantine(pool)


# ---- the ingest gateway -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_gateway(settings: Settings, client: AgencyClient,
                       timeout: float = BULK_TIMEOUT_SECONDS) -> AsyncIterator[IngestGateway]:
    """A gateway on the configured (or running embedded) stack submitting as `client`, closed on exit."""
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        raise NoStackError("no stack to ingest into: start `riskwatch up`, or set RISKWATCH_KAFKA_BOOTSTRAP_SERVERS "
                           "and RISKWATCH_DATABASE_URL")
    if client.agency is None:
        log.warning("submitting as %s: every agency and unit allowed, recorded under that name", client.name)
    async with database(settings) as pool, producer(settings) as started:
        yield IngestGateway(PostgresIngestRecords(pool), KafkaEventPublisher(started), pseudonym_key(settings),
                            await cluster_id(settings), timeout=timeout, client=client)


# ---- users and agency clients -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def user_directory(settings: Settings) -> AsyncIterator[UserDirectory]:
    async with database(settings, migrated=True) as pool:
        yield PostgresUserDirectory(pool)


@contextlib.asynccontextmanager
async def client_directory(settings: Settings) -> AsyncIterator[ClientDirectory]:
    async with database(settings, migrated=True) as pool:
        yield PostgresClientDirectory(pool)


@contextlib.asynccontextmanager
async def client_authenticator(settings: Settings) -> AsyncIterator[ClientAuthenticator]:
    """Who holds an agency client's token (`riskwatch ingest --token`)."""
    async with client_directory(settings) as clients:
        yield client_authenticator_for(settings, clients)


# ---- the HTTP API -----------------------------------------------------------------------------


def api(settings: Settings) -> FastAPI:
    """The API app; its lifespan opens what the endpoints need."""

    @contextlib.asynccontextmanager
    async def services(app: FastAPI) -> AsyncIterator[None]:
        timeout = settings.ingest_timeout_seconds
        async with (database(settings) as pool,
                    # the gateway's own connections: a database that does not answer is given up on in time
                    database(settings, max_size=8, timeout=timeout, command_timeout=timeout) as ingest_pool,
                    producer(settings) as started):
            records = PostgresIngestRecords(ingest_pool)
            publisher = KafkaEventPublisher(started)
            gateway = IngestGateway(records, publisher, pseudonym_key(settings), await cluster_id(settings),
                                    timeout=timeout)
            clients = client_authenticator_for(settings, PostgresClientDirectory(ingest_pool))
            app.state.riskwatch = ApiState(records, publisher, gateway, clients, str(math.ceil(timeout)))
            users = authenticator_for(settings, PostgresUserDirectory(pool))
            async with query_services(app, settings, query_ports(pool), users, started):
                yield

    return create_api(settings, services)


# ---- the stream worker ------------------------------------------------------------------------


async def worker_ports(settings: Settings) -> WorkerPorts:
    """The worker's ports on PostgreSQL: one pool for the risk store, the outbox, the quarantine, the reviews."""
    from services.worker import WorkerPorts

    pool = await create_pool(_database_url(settings))
    return WorkerPorts(risk=Store(pool), outbox=PostgresOutbox(pool), quarantine=PostgresQuarantine(pool),
                       reviews=PostgresReviews(pool), close=pool.close)


def worker(settings: Settings, chosen: Policy | None = None) -> tuple[faust.App, WorkerRuntime]:
    """The stream worker (services/worker.py) on the PostgreSQL adapters; the settings' policy unless given."""
    from services.worker import build_worker

    lean_allocator()
    return build_worker(settings, chosen or policy(settings), worker_ports, started=settle_heap)


def settle_heap() -> None:
    """Put what a started worker holds (modules, schemas, the policy, the app, its clients) out of
    the collector's reach.

    A full collection walks every tracked object, and the churn of every batch sets one off
    again and again: on the whole heap each took 70 to 90 ms, during which both stages stood
    still (about 6% of a loaded worker's time, and the tail of the alert latency). Frozen, the
    start's objects are never walked; kept states and batches come and go as before and are
    collected as before (docs/benchmarks.md).

    What is left of the heap is small beside what each batch leaves behind, so CPython's rule
    for a full collection (the long-lived objects grew by a quarter) held every time its count
    allowed one: every tenth collection of the middle generation, 30 in a 30,000-event run,
    each walking the kept states. FULL_COLLECTION_EVERY makes that every hundredth.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


# middle-generation collections between two full ones (CPython's default: 10)
FULL_COLLECTION_EVERY = 100


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD_BYTES = 64 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024


def lean_allocator() -> bool:
    """Make the C allocator give a batch's large buffers back to the system (glibc only).

    A worker's memory peaks with its batches: fetch responses, rows, JSON documents. glibc
    raises its mmap threshold each time such a buffer is freed, so later ones come from the
    heap, whose freed middle is never returned: the heap keeps the largest batch's high-water
    mark. With a fixed threshold, a large buffer the heap has no room for is mapped on its own
    and unmapped when freed, instead of growing the heap; two arenas are enough for a process
    with one busy thread. True when glibc took the settings (it refuses none it knows).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): its own defaults stay
        return False
    settings = ((_M_ARENA_MAX, 2), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return all([mallopt(option, value) == 1 for option, value in settings])  # mallopt answers 1 on success
