"""The contract of IngestRecords (services.ingest.ports), for PostgreSQL and the in-memory twin.

A subclass provides the `port` fixture and the hooks reading what the port keeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest

from services.ingest.ports import IngestRecords, StoreUnavailable

CLUSTER, EMPTIED = "cluster-now", "cluster-before"
LONG = 3600.0  # in flight for longer than any test runs


def content(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def new_id() -> str:
    return str(uuid.uuid4())


class IngestRecordsContract:
    """Tests of every IngestRecords; the subclass gives `port` and the hooks below."""

    async def identity(self, port: IngestRecords, alias: str) -> tuple[str, str] | None:
        """(identity number, kind) kept for the pseudonym."""
        raise NotImplementedError

    async def dead_letters_of(self, port: IngestRecords, source: str) -> list[tuple[str, bytes]]:
        """(reason, original) kept for the source, in the order recorded."""
        raise NotImplementedError

    async def backfilled(self, port: IngestRecords, event_ids: list[str]) -> set[str]:
        raise NotImplementedError

    async def archived_event(self, port: IngestRecords) -> str:
        """The id of an event the risk stage archived (accepted on the cluster CLUSTER or another)."""
        raise NotImplementedError

    async def make_unavailable(self, port: IngestRecords) -> None:
        raise NotImplementedError

    @staticmethod
    async def claim(port: IngestRecords, event_id: str, body: str, cluster: str = CLUSTER,
                    in_flight: float = LONG) -> bool:
        claimed = await port.claim_event_ids(cluster, "test-client", [(event_id, "police.arrest", content(body))],
                                             in_flight)
        return event_id in claimed

    async def test_an_id_is_claimed_once_and_published_ones_are_duplicates(self, port: IngestRecords) -> None:
        published = new_id()
        assert await self.claim(port, published, "a")
        assert not await self.claim(port, published, "b"), "a different event under a claimed id"
        assert await port.claimed_hashes([published]) == {published: (content("a"), False)}
        await port.record_accepted(CLUSTER, [(published, "agency.police.v1", 0, 7)])
        assert await port.claimed_hashes([published]) == {published: (content("a"), True)}
        assert not await self.claim(port, published, "a"), "a published event is a duplicate, not claimed again"
        assert not await self.claim(port, published, "a", in_flight=0.0), "published: never stale by time"

    async def test_an_unpublished_claim_is_taken_over_only_by_its_content_once_stale(self, port: IngestRecords) -> None:
        in_flight = new_id()
        assert await self.claim(port, in_flight, "a")
        assert not await self.claim(port, in_flight, "a"), "the same event while its first sending is under way"
        assert not await self.claim(port, in_flight, "b", in_flight=0.0), "different content: never"
        assert await self.claim(port, in_flight, "a", in_flight=0.0), "the same content after the in-flight time"

    async def test_abandoned_and_released_claims(self, port: IngestRecords) -> None:
        abandoned, released = new_id(), new_id()
        assert await self.claim(port, abandoned, "a")
        await port.abandon_claims(CLUSTER, [abandoned])
        assert not await self.claim(port, abandoned, "b"), "the first may still arrive: no other event under its id"
        assert await self.claim(port, abandoned, "a"), "the same event may be sent again at once"

        assert await self.claim(port, released, "a")
        await port.release_claims(CLUSTER, [released])
        assert await port.claimed_hashes([released]) == {}
        assert await self.claim(port, released, "b"), "never sent: the id is free"

    async def test_release_and_abandon_leave_published_events_and_other_clusters_alone(
            self, port: IngestRecords) -> None:
        published, elsewhere = new_id(), new_id()
        assert await self.claim(port, published, "a")
        await port.record_accepted(CLUSTER, [(published, "agency.police.v1", 1, 3)])
        assert await self.claim(port, elsewhere, "a", cluster=EMPTIED)
        await port.release_claims(CLUSTER, [published, elsewhere])
        await port.abandon_claims(CLUSTER, [published, elsewhere])
        assert await port.claimed_hashes([published, elsewhere]) == {published: (content("a"), True),
                                                                     elsewhere: (content("a"), False)}
        assert not await self.claim(port, elsewhere, "a", cluster=EMPTIED), "not abandoned: still in flight"

    async def test_an_event_of_an_emptied_cluster_is_accepted_again_unless_archived(self, port: IngestRecords) -> None:
        restarted = new_id()
        assert await self.claim(port, restarted, "a", cluster=EMPTIED)
        await port.record_accepted(EMPTIED, [(restarted, "agency.police.v1", 0, 1)])
        assert await self.claim(port, restarted, "a"), "accepted by a broker since emptied, never archived"
        assert await port.claimed_hashes([restarted]) == {restarted: (content("a"), False)}
        archived = await self.archived_event(port)
        assert not await self.claim(port, archived, "x", cluster=new_id()), "archived: never claimed again"

    async def test_a_batch_claims_its_new_ids_and_reports_only_those(self, port: IngestRecords) -> None:
        old, fresh = new_id(), [new_id() for _ in range(5)]
        assert await self.claim(port, old, "a")
        claims = [(event_id, "police.arrest", content(event_id)) for event_id in [*fresh, old]]
        assert await port.claim_event_ids(CLUSTER, "test-client", claims, LONG) == set(fresh)
        assert await port.claim_event_ids(CLUSTER, "test-client", [], LONG) == set()
        unknown = new_id()
        held = await port.claimed_hashes([*fresh, unknown])
        assert held == {event_id: (content(event_id), False) for event_id in fresh}

    async def test_of_concurrent_claims_of_one_id_exactly_one_wins(self, port: IngestRecords) -> None:
        ids = [new_id() for _ in range(100)]

        async def claim_all(body: str) -> list[bool]:
            return list(await asyncio.gather(*(self.claim(port, event_id, body) for event_id in ids)))

        first, second = await asyncio.gather(claim_all("a"), claim_all("b"))
        assert all(a != b for a, b in zip(first, second, strict=True)), "exactly one of each pair"
        held = await port.claimed_hashes(ids)
        winners = {event_id: content("a" if won else "b") for event_id, won in zip(ids, first, strict=True)}
        assert {event_id: hashed for event_id, (hashed, _) in held.items()} == winners

    async def test_an_identity_is_remembered_once(self, port: IngestRecords) -> None:
        alias, other = "ps_" + uuid.uuid4().hex, "ps_" + uuid.uuid4().hex
        number = f"{uuid.uuid4().int % 10**12:012d}"
        await port.remember_identities([])
        await port.remember_identities([(alias, number, "personal_identity_number")])
        await port.remember_identities([(alias, number, "personal_identity_number"),
                                        (other, number, "coordination_number")])
        assert await self.identity(port, alias) == (number, "personal_identity_number")
        assert await self.identity(port, other) is None, "one identity number has one pseudonym"

    async def test_dead_letters_keep_the_whole_input_in_order(self, port: IngestRecords) -> None:
        source = f"test-{uuid.uuid4().hex[:8]}"
        original = bytes(range(256)) * 300
        await port.record_dead_letters([])
        await port.record_dead_letters([(source, "first", original), (source, "second", b"{}")])
        assert await self.dead_letters_of(port, source) == [("first", original), ("second", b"{}")]

    async def test_backfill_marks_are_idempotent(self, port: IngestRecords) -> None:
        ids = [new_id() for _ in range(3)]
        await port.record_backfill([])
        await port.record_backfill(ids[:2])
        await port.record_backfill(ids[:2])
        assert await self.backfilled(port, ids) == set(ids[:2])

    async def test_a_store_away_raises_store_unavailable(self, port: IngestRecords) -> None:
        await port.ping()
        await self.make_unavailable(port)
        with pytest.raises(StoreUnavailable):
            await port.ping()
        with pytest.raises(StoreUnavailable):
            await self.claim(port, new_id(), "a")
        with pytest.raises(StoreUnavailable):
            await port.record_dead_letters([("test", "reason", b"x")])
