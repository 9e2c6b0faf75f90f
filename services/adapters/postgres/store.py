"""The gateway's records on PostgreSQL, on the `Store` the ingest gateway takes today.

`Store` is a compatibility class: the ingest gateway's methods (claims, accepted events, dead
letters, identities) until they move behind the gateway's own port, and the risk stage's store
(services/adapters/postgres/risk.py) it extends, so code holding a Store keeps working.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from projections.ports import OutboxMessage
from services.adapters.postgres.outbox import PostgresOutbox
from services.adapters.postgres.pool import columns
from services.adapters.postgres.risk import PostgresRiskStore


class Store(PostgresRiskStore):
    # ---- ingest gateway -------------------------------------------------------------------

    async def remember_identities(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """(pseudonym, canonical identity number, kind): the only place clear identities live."""
        pseudonyms, numbers, kinds = columns(rows, 3)
        if not pseudonyms:
            return
        await self.pool.execute(
            """INSERT INTO subject_identity (pseudonym, identity_number, kind)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
               ON CONFLICT DO NOTHING""",  # no target: two requests may bring the same new person at once
            pseudonyms, numbers, kinds,
        )

    async def claim_event_ids(self, cluster_id: str, client: str, claims: Sequence[tuple[str, str, bytes]],
                              in_flight_seconds: float) -> set[str]:
        """Claim (event_id, event_type, content_hash) for publication; returns the ids claimed now.

        One statement, so of two requests with one new id exactly one claims it. An existing row
        is taken over only when it is stale: accepted on another (since emptied) broker cluster
        and never archived, or an unpublished claim of the same content whose publication
        failed or has been under way longer than `in_flight_seconds`.
        """
        ids, types, hashes = columns(sorted(claims), 3)
        if not ids:
            return set()
        rows = await self.pool.fetch(
            """INSERT INTO ingested_event (event_id, event_type, cluster_id, content_hash, client)
               SELECT e, t, $4, h, $5 FROM unnest($1::uuid[], $2::text[], $3::bytea[]) AS x(e, t, h) ORDER BY e
               ON CONFLICT (event_id) DO UPDATE SET event_type = EXCLUDED.event_type, cluster_id = EXCLUDED.cluster_id,
                   content_hash = EXCLUDED.content_hash, client = EXCLUDED.client, topic = NULL,
                   kafka_partition = NULL, kafka_offset = NULL, claimed_at = now(), accepted_at = now()
               WHERE (ingested_event.cluster_id <> EXCLUDED.cluster_id
                      AND NOT EXISTS (SELECT 1 FROM event_archive a WHERE a.event_id = ingested_event.event_id))
                  OR (ingested_event.topic IS NULL AND ingested_event.cluster_id = EXCLUDED.cluster_id
                      AND ingested_event.content_hash = EXCLUDED.content_hash
                      AND ingested_event.claimed_at < now() - make_interval(secs => $6))
               RETURNING event_id::text""",
            ids, types, hashes, cluster_id, client, in_flight_seconds,
        )
        return {row["event_id"] for row in rows}

    async def claimed_hashes(self, event_ids: Sequence[str]) -> dict[str, tuple[bytes, bool]]:
        """event_id -> (content hash, whether it is published) of the ids someone else holds."""
        rows = await self.pool.fetch(
            """SELECT event_id::text AS event_id, content_hash, topic IS NOT NULL AS published
               FROM ingested_event WHERE event_id = ANY($1::uuid[])""",
            list(event_ids),
        )
        return {row["event_id"]: (bytes(row["content_hash"]), row["published"]) for row in rows}

    async def release_claims(self, cluster_id: str, event_ids: Sequence[str]) -> None:
        """Give up claims whose events certainly never reached the broker: the ids are free again."""
        await self.pool.execute(
            "DELETE FROM ingested_event WHERE event_id = ANY($1::uuid[]) AND cluster_id = $2 AND topic IS NULL",
            list(event_ids), cluster_id,
        )

    async def abandon_claims(self, cluster_id: str, event_ids: Sequence[str]) -> None:
        """Claims whose events may or may not be on the broker: the same content may claim them again at once."""
        await self.pool.execute(
            """UPDATE ingested_event SET claimed_at = '-infinity'
               WHERE event_id = ANY($1::uuid[]) AND cluster_id = $2 AND topic IS NULL""",
            list(event_ids), cluster_id,
        )

    async def record_accepted(self, cluster_id: str, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """(event_id, topic, partition, offset) of claimed events once the broker acknowledged them."""
        ids, topics, partitions, offsets = columns(rows, 4)
        if not ids:
            return
        await self.pool.execute(
            """UPDATE ingested_event SET topic = x.tp, kafka_partition = x.p, kafka_offset = x.o, accepted_at = now()
               FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[]) AS x(e, tp, p, o)
               WHERE ingested_event.event_id = x.e AND ingested_event.cluster_id = $5""",
            ids, topics, partitions, offsets, cluster_id,
        )

    async def record_dead_letters(self, rows: Iterable[tuple[str, str, bytes]]) -> None:
        """(source, reason, original bytes)."""
        sources, reasons, originals = columns(rows, 3)
        if not sources:
            return
        await self.pool.execute(
            """INSERT INTO dead_letter (source, reason, original)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])""",
            sources, reasons, originals,
        )

    # ---- the outbox, for the tools that wait for it to drain ------------------------------

    async def relay_outbox(self, publish: Callable[[list[OutboxMessage]], Awaitable[None]], limit: int) -> int:
        return await PostgresOutbox(self.pool).relay(publish, limit)

    async def outbox_backlog(self) -> int:
        return (await PostgresOutbox(self.pool).backlog()).messages
