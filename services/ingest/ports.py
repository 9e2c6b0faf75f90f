"""The ports of the ingest gateway: where it keeps its records, and where it publishes.

No driver type appears here: the PostgreSQL and Kafka adapters (services/adapters) and their
in-memory twins implement these, and the composition root (services/bootstrap.py) picks one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Headers = list[tuple[str, bytes]]


# One error for a store that did not answer, whichever port: the adapters raise it, callers retry or answer 503.
from projections.ports import StoreUnavailable as StoreUnavailable  # noqa: E402


class IngestRecords(Protocol):
    """The gateway's records: identities, event-id claims, accepted events, dead letters, backfill marks.

    Event ids are UUID text in canonical (lower-case) form.
    """

    async def remember_identities(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """(pseudonym, canonical identity number, kind); a pseudonym already known is kept as it is."""

    async def claim_event_ids(self, cluster_id: str, client: str, claims: Sequence[tuple[str, str, bytes]],
                              in_flight_seconds: float) -> set[str]:
        """Claim (event_id, event_type, content_hash) for publication; returns the ids claimed now.

        Atomic per id: of two concurrent claims of one new id exactly one wins. An existing claim
        is taken over only when stale: accepted on another broker cluster and never archived, or
        an unpublished claim of the same content older than `in_flight_seconds` (or abandoned).
        """

    async def claimed_hashes(self, event_ids: Sequence[str]) -> dict[str, tuple[bytes, bool]]:
        """event_id -> (content hash, whether it is published) of those of the ids that are claimed."""

    async def release_claims(self, cluster_id: str, event_ids: Sequence[str]) -> None:
        """Unpublished claims whose events certainly never reached the broker: the ids are free again."""

    async def abandon_claims(self, cluster_id: str, event_ids: Sequence[str]) -> None:
        """Unpublished claims whose events may be on the broker: the same content may claim them at once."""

    async def record_accepted(self, cluster_id: str, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """(event_id, topic, partition, offset) of claimed events the broker acknowledged."""

    async def record_dead_letters(self, rows: Iterable[tuple[str, str, bytes]]) -> None:
        """(source, reason, original bytes) of refused input, kept in full."""

    async def record_backfill(self, event_ids: Iterable[str]) -> None:
        """Mark events as history before they are sent, so that no worker pages them."""

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable when it does not."""


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: bytes | None  # None: the broker spreads such records over the partitions
    value: bytes
    headers: Headers


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one record handed to `EventPublisher.publish`.

    acknowledged: every in-sync replica has it, at `partition` and `offset`.
    unsent: it certainly never left this process (the broker was away before it was handed over).
    unknown: handed over but not acknowledged in time: it may still arrive.
    """

    status: Literal["acknowledged", "unsent", "unknown"]
    topic: str
    partition: int | None = None
    offset: int | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status == "acknowledged"


class EventPublisher(Protocol):
    async def publish(self, records: Sequence[OutgoingRecord], timeout: float) -> list[Delivery]:
        """Publish keyed records with acks=all, in order, returning within `timeout` seconds.

        One Delivery per record, in the records' order; a broker that is away makes records
        unsent or unknown, never an exception.
        """

    async def ping(self, timeout: float) -> None:
        """Return when the broker answers a metadata request; raise (TimeoutError, ...) otherwise."""
