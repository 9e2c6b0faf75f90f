"""The gateway's records in PostgreSQL: subject_identity, ingested_event, dead_letter, backfill_event."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

import asyncpg

from services.adapters.postgres import DATABASE_AWAY, columns
from services.ingest.ports import StoreUnavailable


@asynccontextmanager
async def _available() -> AsyncIterator[None]:
    try:
        yield
    except DATABASE_AWAY as error:
        raise StoreUnavailable(f"the database did not answer ({type(error).__name__})") from error


class PostgresIngestRecords:
    """IngestRecords on an asyncpg pool (its own, bounded by the gateway's timeout, in the API)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def remember_identities(self, rows: Iterable[tuple[str, str, str]]) -> None:
        pseudonyms, numbers, kinds = columns(rows, 3)
        if not pseudonyms:
            return
        async with _available():
            await self.pool.execute(
                """INSERT INTO subject_identity (pseudonym, identity_number, kind)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                   ON CONFLICT DO NOTHING""",  # no target: two requests may bring the same new person at once
                pseudonyms, numbers, kinds,
            )

    async def claim_event_ids(self, cluster_id: str, client: str, claims: Sequence[tuple[str, str, bytes]],
                              in_flight_seconds: float) -> set[str]:
        # One statement, so of two requests with one new id exactly one claims it; sorted, so that
        # two requests claiming overlapping ids lock them in the same order.
        ids, types, hashes = columns(sorted(claims), 3)
        if not ids:
            return set()
        async with _available():
            rows = await self.pool.fetch(
                """INSERT INTO ingested_event (event_id, event_type, cluster_id, content_hash, client)
                   SELECT e, t, $4, h, $5 FROM unnest($1::uuid[], $2::text[], $3::bytea[]) AS x(e, t, h) ORDER BY e
                   ON CONFLICT (event_id) DO UPDATE SET event_type = EXCLUDED.event_type,
                       cluster_id = EXCLUDED.cluster_id, content_hash = EXCLUDED.content_hash,
                       client = EXCLUDED.client, topic = NULL, kafka_partition = NULL, kafka_offset = NULL,
                       claimed_at = now(), accepted_at = now()
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
        async with _available():
            rows = await self.pool.fetch(
                """SELECT event_id::text AS event_id, content_hash, topic IS NOT NULL AS published
                   FROM ingested_event WHERE event_id = ANY($1::uuid[])""",
                list(event_ids),
            )
        return {row["event_id"]: (bytes(row["content_hash"]), row["published"]) for row in rows}

    async def release_claims(self, cluster_id: str, event_ids: Sequence[str]) -> None:
        async with _available():
            await self.pool.execute(
                "DELETE FROM ingested_event WHERE event_id = ANY($1::uuid[]) AND cluster_id = $2 AND topic IS NULL",
                list(event_ids), cluster_id,
            )

    async def abandon_claims(self, cluster_id: str, event_ids: Sequence[str]) -> None:
        async with _available():
            await self.pool.execute(
                """UPDATE ingested_event SET claimed_at = '-infinity'
                   WHERE event_id = ANY($1::uuid[]) AND cluster_id = $2 AND topic IS NULL""",
                list(event_ids), cluster_id,
            )

    async def record_accepted(self, cluster_id: str, rows: Iterable[tuple[str, str, int, int]]) -> None:
        ids, topics, partitions, offsets = columns(rows, 4)
        if not ids:
            return
        async with _available():
            await self.pool.execute(
                """UPDATE ingested_event SET topic = x.tp, kafka_partition = x.p, kafka_offset = x.o,
                          accepted_at = now()
                   FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[]) AS x(e, tp, p, o)
                   WHERE ingested_event.event_id = x.e AND ingested_event.cluster_id = $5""",
                ids, topics, partitions, offsets, cluster_id,
            )

    async def record_dead_letters(self, rows: Iterable[tuple[str, str, bytes]]) -> None:
        sources, reasons, originals = columns(rows, 3)
        if not sources:
            return
        async with _available():
            await self.pool.execute(
                """INSERT INTO dead_letter (source, reason, original)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])""",
                sources, reasons, originals,
            )

    async def record_backfill(self, event_ids: Iterable[str]) -> None:
        ids = sorted(set(event_ids))
        if not ids:
            return
        async with _available():
            await self.pool.execute(
                "INSERT INTO backfill_event (event_id) SELECT * FROM unnest($1::uuid[]) ON CONFLICT DO NOTHING", ids
            )

    async def ping(self) -> None:
        async with _available():
            await self.pool.fetchval("SELECT 1")
