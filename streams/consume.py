"""A processing stage's consumer: whole fetches in, one handler call per fetch, commit after.

faust's per-event stream (agents with take_events) cost about 0.45 ms of CPU per event on
this kind of machine, more than the risk model itself (docs/benchmarks.md). A stage here is
one member of a Kafka consumer group that takes what one `getmany` returns, up to
`batch_size` records, hands it to its handler in partition order, and commits the next
offsets only after the handler finished. The faust app still runs the worker: it starts and
stops the stages as tasks, beside the outbox relay and the scheduler.

The guarantees are the same as with faust's acks: an offset is committed only after its
record's effects are durable, and a failed batch is retried (broker or database away) or ends
the process before any commit. A record that fails because of its content is the exception:
the stage quarantines it (projections/quarantine.py) with the rest of its batch applied, so
one poison record never halts a partition.

The client reads ahead, but it asks the broker for a partition again only once what it holds
of it is consumed, and asks a broker nothing while it holds records of any of that broker's
partitions. So the records it holds when a batch ends were fetched when the batch began, and
those that came while it ran are fetched only when the next one begins and handled in the one
after. When a batch took longer than `fetch_catch_up_ms`, the stage asks once more, for at most
that long, and handles what came meanwhile in the same batch: under load the alert latency
loses about a batch per stage (docs/benchmarks.md).

A commit refused because the group rebalanced meanwhile is harmless: the next owner replays
from the last commit and the risk stage's tracking rows in PostgreSQL skip what was already
applied (normalize forwards again; the risk stage dedupes by event id).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import Protocol
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, NotLeaderForPartitionError

from projections.ports import StoreUnavailable
from streams.kafka import KafkaSettings, client_options

log = logging.getLogger(__name__)

STAGE_FETCH_BYTES = 2**18  # per fetch response, over all of a stage's partitions (about a batch of 500)

# Failures of the broker or the database, not of a batch: retried with backoff, never quarantined.
# (The storage adapters raise StoreUnavailable for theirs, e.g. PostgreSQL shutting down.)
TRANSIENT = (OSError, asyncio.TimeoutError, StoreUnavailable, KafkaConnectionError, KafkaTimeoutError,
             NotLeaderForPartitionError)



class StageSettings(KafkaSettings, Protocol):
    """What a stage's consumer reads of the settings."""

    @property
    def batch_size(self) -> int: ...
    @property
    def batch_within_seconds(self) -> float: ...
    @property
    def fetch_wait_ms(self) -> int: ...
    @property
    def fetch_catch_up_ms(self) -> int: ...


class StageDefect(RuntimeError):
    """A batch failure that no record's content explains: the worker stops before committing."""


# where to start a partition newly assigned to this member: (topic, partition) -> next offset
Positions = Callable[[Sequence[tuple[str, int]]], Awaitable[dict[tuple[str, int], int]]]


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record, as a stage sees it."""

    topic: str
    partition: int
    offset: int
    value: bytes
    timestamp_ms: int | None  # broker timestamp: when the record was accepted
    key: bytes | None = None


@dataclass
class Stage:
    """One consumer-group member feeding one handler."""

    name: str
    group_id: str
    topics: Sequence[str]
    handle: Callable[[list[Record]], Awaitable[object]]
    positions: Positions | None = None  # an authority on what was applied that outranks Kafka's commits
    consumer: AIOKafkaConsumer | None = field(default=None, init=False)

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()


def stage_consumer(settings: StageSettings, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **client_options(settings),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.batch_size,
        fetch_max_wait_ms=settings.fetch_wait_ms,
        # What the consumer reads ahead is held in memory, and the client keeps each
        # partition's fetched records until they are consumed while it fetches the others
        # (the embedded broker returns whole producer batches, past the partition limit):
        # small responses keep that near a batch, not the default 1 MiB a partition (40 for normalize).
        fetch_max_bytes=STAGE_FETCH_BYTES,
        max_partition_fetch_bytes=STAGE_FETCH_BYTES // 8,
        # the embedded broker makes joins wait for the rebalance timeout: keep it short
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        rebalance_timeout_ms=10_000,
    )


async def run_stage(stage: Stage, settings: StageSettings, should_stop: Callable[[], bool],
                    until_done: Callable[[str, Callable[[], Awaitable[object]]], Awaitable[object]]) -> None:
    """Consume, handle and commit until `should_stop()`; leave the group on the way out."""
    consumer = stage_consumer(settings, stage.group_id)
    stage.consumer = consumer
    if stage.positions is not None:
        consumer.subscribe(list(stage.topics), listener=_StartFromAuthority(consumer, stage))
    else:
        consumer.subscribe(list(stage.topics))
    await consumer.start()
    wait_ms = max(1, int(settings.batch_within_seconds * 1000))
    catch_up = settings.fetch_catch_up_ms / 1000
    loop = asyncio.get_running_loop()
    last_batch = 0.0  # seconds the last batch took, from its records in hand to its commit
    try:
        while not should_stop():
            fetched = await consumer.getmany(timeout_ms=wait_ms, max_records=settings.batch_size)
            if not fetched:
                continue
            if catch_up and last_batch > catch_up:
                await _catch_up(consumer, fetched, settings.batch_size, catch_up)
            started = loop.time()
            records = [Record(m.topic, m.partition, m.offset, m.value,
                              m.timestamp if m.timestamp >= 0 else None, m.key)
                       for messages in fetched.values() for m in messages]
            await until_done(stage.name, functools.partial(stage.handle, records))
            await _commit(consumer, stage.name, {tp: messages[-1].offset + 1 for tp, messages in fetched.items()})
            last_batch = loop.time() - started
    finally:
        stage.consumer = None
        await consumer.stop()


async def _catch_up(consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[ConsumerRecord]],
                    limit: int, seconds: float) -> None:
    """Add to `fetched` what the broker got since, up to `limit` records in all (see the module docstring)."""
    room = limit - sum(len(messages) for messages in fetched.values())
    if room <= 0:
        return
    more = await consumer.getmany(timeout_ms=max(1, int(seconds * 1000)), max_records=room)
    for tp, messages in more.items():
        held = fetched.setdefault(tp, [])
        # after the partition's records in hand; a rebalance meanwhile may have moved it back
        after = held[-1].offset if held else -1
        held.extend(message for message in messages if message.offset > after)


async def _commit(consumer: AIOKafkaConsumer, name: str, offsets: dict[TopicPartition, int]) -> None:
    try:
        await consumer.commit(offsets)
    except KafkaError as error:
        # The group moved a partition while the batch ran: its new owner replays from the last
        # commit, and what this batch applied is skipped there (see the module docstring).
        log.info("%s: commit refused (%s: %s); the partition's next owner replays", name, type(error).__name__, error)


class _StartFromAuthority(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka has no type information
    """On assignment, start each partition after what the stage's own records say was applied.

    (Asking the group for its committed offsets here would wait for the rebalance in progress.)
    """

    def __init__(self, consumer: AIOKafkaConsumer, stage: Stage) -> None:
        self.consumer = consumer
        self.stage = stage

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        partitions = sorted((tp.topic, tp.partition) for tp in assigned)
        if not partitions or self.stage.positions is None:
            return
        try:
            applied = await self.stage.positions(partitions)
        except Exception as error:  # still correct from Kafka's commits: applied records are skipped
            log.warning("%s: applied positions unavailable (%s); starting from Kafka's commits", self.stage.name, error)
            return
        # A batch's offsets are committed to Kafka only after its PostgreSQL transaction, so
        # the tracked position is never behind the group's commit: it is the place to resume.
        for (topic, partition), position in applied.items():
            self.consumer.seek(TopicPartition(topic, partition), position)
