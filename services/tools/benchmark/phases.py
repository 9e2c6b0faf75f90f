"""The measurements: a raw consumer as baseline, the pipeline end to end, worker memory, rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.policy import default_policy
from services import bootstrap
from services.adapters.postgres.store import Store
from schemas.codec import decode_event
from services.tools.benchmark.workload import Throughput
from services.runtime.metrics import port_file
from services.runtime.rebuild import live_digest, rebuild
from services.runtime.settings import Settings
from services.runtime.stack import Stack
from streams.kafka import client_options, cluster_id
from streams.topology import AGENCY_TOPICS, SUBJECT_EVENTS

POLL_SECONDS = 0.02
BASELINE_MAX_RECORDS = 50_000
BASELINE_STALL_SECONDS = 10.0
# The archive is counted when the tracked offsets say it should be complete, and otherwise only
# this often: counting a few hundred thousand rows every poll would slow the pipeline down.
COUNT_AT_MOST_EVERY_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class RebuildFigure:
    events: int
    subjects: int
    seconds: float
    digest: str
    live_digest: str

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def identical(self) -> bool:
        return self.digest == self.live_digest


@dataclass(frozen=True, slots=True)
class MemoryFigure:
    """Peak resident memory of the workers after the pipeline run, net of an idle worker's."""

    workers: int
    idle_rss_bytes: int
    peak_bytes: int  # VmHWM summed over the workers
    subjects: int  # tracked subjects: rows of risk_projection

    @property
    def bytes_per_subject(self) -> float:
        net = self.peak_bytes - self.workers * self.idle_rss_bytes
        return net / self.subjects if self.subjects else 0.0


async def baseline(settings: Settings, expected: int) -> Throughput:
    """A plain aiokafka consumer (no group) reading and decoding every agency record from the start.

    Records are counted up to `expected` rather than read up to the end offsets: the embedded
    broker reports end offsets that can stay behind its last record batch.
    """
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, partition) for topic in AGENCY_TOPICS.values()
                      for partition in range(settings.partitions)]
        consumer.assign(partitions)
        read = 0
        started = last_record = time.perf_counter()
        await consumer.seek_to_beginning(*partitions)
        while read < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=BASELINE_MAX_RECORDS)
            for records in batches.values():
                for record in records:
                    decode_event(record.value)
                read += len(records)
            if batches:
                last_record = time.perf_counter()
            elif time.perf_counter() - last_record > BASELINE_STALL_SECONDS:
                raise RuntimeError(f"the baseline read {read} of the {expected} records loaded, then nothing more")
        return Throughput(read, last_record - started)
    finally:
        await consumer.stop()


async def pipeline(stack: Stack, expected: int, timeout: float) -> Throughput:
    """From the first archived event until all `expected` are archived and the outbox is drained.

    The workers must be started just before: the clock starts with the first archive row, so
    their start-up and the consumer-group join are not counted.
    """
    async with _database(stack) as store:
        deadline = time.monotonic() + timeout
        while not await store.has_archived():
            await _still_running(stack, deadline, store, expected)
        first = time.perf_counter()
        await _until_applied(stack, store, expected, deadline)
        return Throughput(expected, time.perf_counter() - first)


async def wait_until_applied(stack: Stack, expected: int, timeout: float) -> None:
    """Until `expected` events are archived in all and the outbox is drained (every alert published)."""
    async with _database(stack) as store:
        await _until_applied(stack, store, expected, time.monotonic() + timeout)


@contextlib.asynccontextmanager
async def _database(stack: Stack) -> AsyncIterator[Store]:
    async with bootstrap.store(stack.settings, max_size=1) as store:
        yield store


async def _until_applied(stack: Stack, store: Store, expected: int, deadline: float) -> None:
    cluster = await cluster_id(stack.settings)
    counted_at = time.monotonic()
    while True:
        # Tracking rows are written in the same transaction as the archive rows they cover.
        tracked = await store.tracked_total(cluster, SUBJECT_EVENTS)
        if tracked >= expected or time.monotonic() - counted_at >= COUNT_AT_MOST_EVERY_SECONDS:
            counted_at = time.monotonic()
            if await store.archived_count() >= expected:
                break
        await _still_running(stack, deadline, store, expected)
    while await store.outbox_backlog():
        await _still_running(stack, deadline, store, expected)


async def _still_running(stack: Stack, deadline: float, store: Store, expected: int) -> None:
    for process in stack.workers:
        if process.poll() is not None:
            raise RuntimeError(f"a worker exited with code {process.returncode}; see {stack.logs}")
    if time.monotonic() > deadline:
        raise TimeoutError(f"{await store.archived_count()} of {expected} events archived when the time ran out; "
                           f"see {stack.logs}")
    await asyncio.sleep(POLL_SECONDS)


async def idle_worker_rss(stack: Stack, timeout: float) -> int:
    """VmRSS of a freshly started worker once it is ready with nothing to do; it is stopped after."""
    process = stack.start_worker()
    try:
        await _until_ready(stack, process, timeout)
        return proc_status_bytes(process.pid, "VmRSS")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stack.workers.remove(process)


async def _until_ready(stack: Stack, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the worker's /readyz says database, broker and partitions are all fine."""
    deadline = time.monotonic() + timeout
    written = port_file(stack.settings.state_dir, process.pid)
    while not await asyncio.to_thread(_answers_ready, stack.settings.http_host, written):
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with code {process.returncode}; see {stack.logs}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker was not ready after {timeout:.0f} s; see {stack.logs}")
        await asyncio.sleep(0.2)


def _answers_ready(host: str, written: Path) -> bool:
    try:
        port = int(written.read_text())
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=2) as answer:
            return bool(json.loads(answer.read()).get("ready"))
    except (OSError, ValueError):  # URLError and HTTPError (503) are OSErrors
        return False  # not listening yet, or not ready


def proc_status_bytes(pid: int, field: str) -> int:
    """A memory figure (VmRSS, VmHWM, ...) of a running process, from Linux's /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) * 1024  # reported in kB
    raise ValueError(f"/proc/{pid}/status has no {field}")


async def tracked_subjects(settings: Settings) -> int:
    async with bootstrap.store(settings, max_size=1) as store:
        return await store.projection_count()


async def rebuild_speed(settings: Settings) -> RebuildFigure:
    """Every projection recomputed from the archive in this process, and compared with the live ones."""
    async with bootstrap.store(settings) as store:
        result = await rebuild(store, default_policy())
        return RebuildFigure(result.events, result.subjects, result.seconds, result.digest, await live_digest(store))
