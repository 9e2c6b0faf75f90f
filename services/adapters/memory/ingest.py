"""In-memory IngestRecords and EventPublisher, with the semantics of the PostgreSQL and Kafka adapters."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.ingest.ports import Delivery, OutgoingRecord, StoreUnavailable


@dataclass
class _Claim:
    event_type: str
    cluster_id: str
    content_hash: bytes
    client: str
    claimed_at: float
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class MemoryIngestRecords:
    """IngestRecords in dicts. Every method runs without awaiting, so each is atomic on the loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.identities: dict[str, tuple[str, str]] = {}  # pseudonym -> (identity number, kind)
        self.claims: dict[str, _Claim] = {}
        self.dead_letters: list[tuple[str, str, bytes]] = []
        self.backfill: set[str] = set()
        self.archived: set[str] = set()  # what the risk stage archived: such an id is never claimed again
        self.available = True  # False: every call raises StoreUnavailable, as a database that is away

    def _check(self) -> None:
        if not self.available:
            raise StoreUnavailable("the in-memory store is set unavailable")

    async def remember_identities(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self._check()
        known = {number for number, _ in self.identities.values()}
        for alias, number, kind in rows:
            if alias not in self.identities and number not in known:  # both unique, as in PostgreSQL
                self.identities[alias] = (number, kind)
                known.add(number)

    async def claim_event_ids(self, cluster_id: str, client: str, claims: Sequence[tuple[str, str, bytes]],
                              in_flight_seconds: float) -> set[str]:
        self._check()
        now = self.clock()
        claimed: set[str] = set()
        for event_id, event_type, content_hash in sorted(claims):
            held = self.claims.get(event_id)
            if event_id in claimed:
                continue  # one statement claims an id once, whatever it repeats
            if held is not None:
                stale = ((held.cluster_id != cluster_id and event_id not in self.archived)
                         or (held.topic is None and held.cluster_id == cluster_id
                             and held.content_hash == content_hash and held.claimed_at < now - in_flight_seconds))
                if not stale:
                    continue
            self.claims[event_id] = _Claim(event_type, cluster_id, content_hash, client, now)
            claimed.add(event_id)
        return claimed

    async def claimed_hashes(self, event_ids: Sequence[str]) -> dict[str, tuple[bytes, bool]]:
        self._check()
        return {event_id: (self.claims[event_id].content_hash, self.claims[event_id].topic is not None)
                for event_id in event_ids if event_id in self.claims}

    async def release_claims(self, cluster_id: str, event_ids: Sequence[str]) -> None:
        self._check()
        for event_id in event_ids:
            held = self.claims.get(event_id)
            if held is not None and held.cluster_id == cluster_id and held.topic is None:
                del self.claims[event_id]

    async def abandon_claims(self, cluster_id: str, event_ids: Sequence[str]) -> None:
        self._check()
        for event_id in event_ids:
            held = self.claims.get(event_id)
            if held is not None and held.cluster_id == cluster_id and held.topic is None:
                held.claimed_at = -math.inf

    async def record_accepted(self, cluster_id: str, rows: Iterable[tuple[str, str, int, int]]) -> None:
        self._check()
        for event_id, topic, partition, offset in rows:
            held = self.claims.get(event_id)
            if held is not None and held.cluster_id == cluster_id:
                held.topic, held.partition, held.offset = topic, partition, offset

    async def record_dead_letters(self, rows: Iterable[tuple[str, str, bytes]]) -> None:
        self._check()
        self.dead_letters.extend(rows)

    async def record_backfill(self, event_ids: Iterable[str]) -> None:
        self._check()
        self.backfill.update(event_ids)

    async def ping(self) -> None:
        self._check()


PublisherMode = Literal["up", "down", "silent"]


@dataclass
class MemoryEventPublisher:
    """A broker in lists. `mode`: up acknowledges; down hands nothing over (unsent); silent takes the
    records but never acknowledges (unknown), after waiting out the bound through `wait`, if given."""

    partitions: int = 4
    mode: PublisherMode = "up"
    wait: Callable[[float], None] | None = None  # how a silent broker's bound passes (a ManualClock's advance)
    topics: dict[str, list[OutgoingRecord]] = field(default_factory=dict)  # per topic, in order
    ends: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) -> the next offset
    waited: list[float] = field(default_factory=list)  # the bound of each publish that ran into it

    async def publish(self, records: Sequence[OutgoingRecord], timeout: float) -> list[Delivery]:
        if not records:
            return []
        if self.mode == "down":
            return [Delivery("unsent", record.topic) for record in records]
        if self.mode == "silent":
            self.waited.append(timeout)
            if self.wait is not None:
                self.wait(timeout)
            return [Delivery("unknown", record.topic) for record in records]
        deliveries = []
        for record in records:
            partition = self.partition_of(record.key)
            offset = self.ends.get((record.topic, partition), 0)
            self.ends[(record.topic, partition)] = offset + 1
            self.topics.setdefault(record.topic, []).append(record)
            deliveries.append(Delivery("acknowledged", record.topic, partition, offset))
        return deliveries

    def partition_of(self, key: bytes | None) -> int:
        if key is None:
            return 0
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % self.partitions

    async def ping(self, timeout: float) -> None:
        if self.mode != "up":
            raise TimeoutError("the in-memory broker is set away")

    def published(self, topic: str) -> list[OutgoingRecord]:
        return list(self.topics.get(topic, ()))
