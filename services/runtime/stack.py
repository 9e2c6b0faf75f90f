"""A running Riskwatch stack: embedded (or configured) broker and database, workers, the API.

One place that knows how to start and stop the processes, used by `riskwatch up`, the batch
runner, the benchmark and the integration tests alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres, embedded_stack, free_port, wait_for_port
from services.runtime.state import child_environment, pseudonym_key, write_runtime
from services.runtime.settings import Settings
from streams.kafka import client_options
from streams.topology import AGENCY_TOPICS, SUBJECT_EVENTS, stage_group


class Progress(Protocol):
    """What waiting for an idle stack reads of the risk stage's storage (the composition root gives it)."""

    async def tracked_offsets(self, cluster_id: str, topic: str) -> dict[int, int]: ...

    async def accepted_unarchived(self, cluster_id: str) -> int: ...

    async def outbox_backlog(self) -> int: ...


ProgressSource = Callable[[Settings], AbstractAsyncContextManager[Progress]]


@dataclass
class Stack:
    settings: Settings
    broker: EmbeddedBroker | None
    database: EmbeddedPostgres | None
    api_port: int
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    api: subprocess.Popen[bytes] | None = None
    progress: ProgressSource | None = None  # how wait_until_idle reads the storage

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.api_port}"

    @property
    def logs(self) -> Path:
        path = self.settings.state_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_worker(self) -> subprocess.Popen[bytes]:
        process = self.start_worker_process(len(self.workers) + 1)
        self.workers.append(process)
        return process

    def start_worker_process(self, number: int) -> subprocess.Popen[bytes]:
        return self._spawn(f"worker-{number}", "worker")

    def start_api(self) -> subprocess.Popen[bytes]:
        self.api = self._spawn("api", "serve", "--port", str(self.api_port))
        wait_for_port(self.settings.http_host, self.api_port, timeout=60, process=self.api)
        return self.api

    def _spawn(self, name: str, *arguments: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "services.cli", *arguments],
                env=child_environment(self.settings), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [*self.workers, *([self.api] if self.api else [])]

    def stop_processes(self, grace: float = 15.0) -> None:
        for process in self.processes():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    async def wait_until_idle(self, timeout: float = 120.0, settle: float = 0.5) -> None:
        """Until every event on the agency topics reached PostgreSQL and the outbox is drained."""
        from streams.kafka import cluster_id

        assert self.progress is not None, "a stack started by services.bootstrap.started_stack knows its storage"
        deadline = time.monotonic() + timeout
        cluster = await cluster_id(self.settings)
        consumer = AIOKafkaConsumer(**client_options(self.settings),
                                    group_id=stage_group(self.settings.consumer_group, "normalize"),
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            async with self.progress(self.settings) as store:
                await self._until_idle(consumer, store, cluster, deadline, timeout, settle)
        finally:
            await consumer.stop()

    async def _until_idle(self, consumer: AIOKafkaConsumer, store: Progress, cluster: str, deadline: float,
                          timeout: float, settle: float) -> None:
        quiet_since: float | None = None
        while True:
            busy = await _backlog(consumer, store, cluster) + await store.outbox_backlog()
            now = time.monotonic()
            if busy == 0:
                quiet_since = quiet_since or now
                if now - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            for process in self.workers:
                if process.poll() is not None and process.returncode != -signal.SIGKILL:
                    raise RuntimeError(f"a worker exited with code {process.returncode}; see {self.logs}")
            if now > deadline:
                raise TimeoutError(f"{busy} events still in flight after {timeout:.0f} s; see {self.logs}")
            await asyncio.sleep(0.1)  # the poll's period


async def _backlog(consumer: AIOKafkaConsumer, store: Progress, cluster: str) -> int:
    """Records not yet applied: agency topics by committed offsets, subject events by tracking."""
    agency = [TopicPartition(topic, p) for topic in AGENCY_TOPICS.values()
              for p in sorted(consumer.partitions_for_topic(topic) or ())]
    subject = [TopicPartition(SUBJECT_EVENTS, p) for p in sorted(consumer.partitions_for_topic(SUBJECT_EVENTS) or ())]
    if not agency or not subject:
        await consumer._client.force_metadata_update()  # first call: learn the partitions
        return 1
    ends = await consumer.end_offsets(agency + subject)
    backlog = 0
    for tp in agency:
        committed = await consumer.committed(tp) or 0
        backlog += max(0, ends[tp] - committed)
    tracked = await store.tracked_offsets(cluster, SUBJECT_EVENTS)
    for tp in subject:
        backlog += max(0, ends[tp] - (tracked.get(tp.partition, -1) + 1))
    # The embedded broker can report an end offset below its last record: also count what the
    # gateway accepted on this cluster and the risk processor has not archived yet.
    return backlog + await store.accepted_unarchived(cluster)


@contextlib.contextmanager
def started_stack(settings: Settings, *, prepare: Callable[[Settings], Coroutine[Any, Any, object]],
                  progress: ProgressSource, workers: int = 1, api: bool = True) -> Iterator[Stack]:
    """Broker and database (embedded unless configured), then `prepare` (migrations and topics, given by
    the composition root, services.bootstrap.started_stack), workers and API."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with embedded_stack(settings.state_dir, broker=settings.embedded_broker,
                        database=settings.embedded_database) as (broker, database):
        if broker is not None:
            settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
        if database is not None:
            settings = settings.model_copy(update={"database_url": database.database_url})
        asyncio.run(prepare(settings))
        pseudonym_key(settings)
        stack = Stack(settings, broker, database, settings.http_port or free_port(settings.http_host),
                      progress=progress)
        runtime_file = write_runtime(settings, stack.api_url if api else None)
        try:
            for _ in range(workers):
                stack.start_worker()
            if api:
                stack.start_api()
            yield stack
        finally:
            stack.stop_processes()
            runtime_file.unlink(missing_ok=True)
