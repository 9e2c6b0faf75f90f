"""Event-id claims in PostgreSQL: who may claim an id, and when a claim may be taken over."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from services.adapters.postgres.ingest import PostgresIngestRecords as Store
from services.runtime.stack import Stack
from tests.support.api import database, ingest
from tests.support.scenario import at, event, new_person

pytestmark = pytest.mark.integration

IN_FLIGHT = 60.0
CLUSTER, EMPTIED = "cluster-now", "cluster-before"


def content(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


async def test_an_id_is_claimed_once_and_taken_over_only_when_stale(stack: Stack) -> None:
    async with database(stack) as pool:
        store = Store(pool)

        async def claim(event_id: str, body: str, cluster: str = CLUSTER) -> bool:
            claimed = await store.claim_event_ids(cluster, "test-client", [(event_id, "police.arrest", content(body))],
                                                  IN_FLIGHT)
            return event_id in claimed

        published, in_flight, abandoned, released = (str(uuid.uuid4()) for _ in range(4))
        assert await claim(published, "a")
        assert not await claim(published, "b"), "a different event under a claimed id"
        assert await store.claimed_hashes([published]) == {published: (content("a"), False)}
        await store.record_accepted(CLUSTER, [(published, "agency.police.v1", 0, 7)])
        assert await store.claimed_hashes([published]) == {published: (content("a"), True)}
        assert not await claim(published, "a"), "a published event is a duplicate, not claimed again"

        assert await claim(in_flight, "a")
        assert not await claim(in_flight, "a"), "the same event while its first sending is under way"

        assert await claim(abandoned, "a")
        await store.abandon_claims(CLUSTER, [abandoned])
        assert not await claim(abandoned, "b"), "the first may still arrive: no other event under its id"
        assert await claim(abandoned, "a"), "the same event may be sent again at once"

        assert await claim(released, "a")
        await store.release_claims(CLUSTER, [released])
        assert await claim(released, "b"), "never sent: the id is free"

        # accepted by a broker since emptied and never archived: accepted again on the new one
        restarted = str(uuid.uuid4())
        assert await claim(restarted, "a", cluster=EMPTIED)
        await store.record_accepted(EMPTIED, [(restarted, "agency.police.v1", 0, 1)])
        assert await claim(restarted, "a")
        sender = await pool.fetchval("SELECT client FROM ingested_event WHERE event_id = $1::uuid", restarted)
        assert sender == "test-client"


async def test_an_archived_event_is_never_claimed_again(stack: Stack) -> None:
    document = event("police.domestic_callout", new_person(), at(13), {"injuries": False})
    await ingest(stack, document)
    async with database(stack) as pool:
        claimed = await Store(pool).claim_event_ids(EMPTIED, "test-client",
                                                    [(document["event_id"], "police.domestic_callout", content("x"))],
                                                    IN_FLIGHT)
    assert claimed == set()
