"""PostgreSQL read models (asyncpg): migrations, the gateway's records, and the risk batch.

Each risk batch is ONE transaction: archive rows, projections, history, alerts, outbox and
the consumed offsets. A replayed message is recognised by its tracked offset or its event id.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence

import asyncpg

from projections.casework import attach_to_cases

MIGRATIONS_LOCK = 0x5249534B  # advisory lock id: "RISK"


async def create_pool(database_url: str, **options: Any) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=options.pop("max_size", 4),
                                     init=_init_connection, **options)
    assert pool is not None
    return pool


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the numbered SQL files not applied yet, each in its own transaction."""
    applied_now: list[str] = []
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", MIGRATIONS_LOCK)
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["name"] for row in await connection.fetch("SELECT name FROM schema_migration")}
            files = sorted(
                (entry for entry in resources.files("projections").joinpath("migrations").iterdir() if entry.name.endswith(".sql")),
                key=lambda entry: entry.name,
            )
            for entry in files:
                if entry.name in done:
                    continue
                async with connection.transaction():
                    await connection.execute(entry.read_text(encoding="utf-8"))
                    await connection.execute("INSERT INTO schema_migration (name) VALUES ($1)", entry.name)
                applied_now.append(entry.name)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATIONS_LOCK)
    return applied_now


def ms_to_datetime(epoch_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    event_id: str
    subject: str
    source_type: str
    agency: str
    region: str
    event_time: int
    recorded_time: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ProjectionRow:
    subject: str
    state_added: list[tuple[int, str, dict[str, Any]]]  # (event time, event id, compact event) new in the state
    state_from: int | None  # when stored events fell behind retention: the first kept event's time
    assessment: dict[str, Any]
    level: str
    score: float
    region: str | None  # None: every region known could point at a protected victim
    caseload: str | None
    policy_version: str
    assessed_at: int
    next_review_at: int | None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    subject: str
    event_id: str
    event_time: int
    level: str
    score: float
    explanation: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert_id: str
    subject: str
    trigger: str
    priority: int
    level_before: str
    level_after: str
    score: float
    explanation: str
    factors: list[dict[str, Any]]
    region: str | None
    caseload: str | None
    event_time: int
    causing_event_id: str
    policy_version: str
    topic: str  # where the relay publishes `message`
    message: bytes
    paged: bool = True  # False: history, recorded but in no live queue (projections.alerts.pages)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    topic: str
    key: str
    message: bytes


@dataclass
class BatchEffects:
    """Everything one risk batch changes, written in one transaction."""

    archive: list[ArchivedEvent] = field(default_factory=list)
    projections: list[ProjectionRow] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    risk_changes: list[tuple[str, str, bytes]] = field(default_factory=list)  # (topic, subject, message)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) -> last offset
    new_alert_ids: set[str] = field(default_factory=set)  # filled on write: alerts not stored before


# (connection, offsets not yet applied per partition) -> the effects, or None when nothing is new
BatchComputation = Callable[[asyncpg.Connection, dict[tuple[str, int], list[int]]], Awaitable[BatchEffects | None]]


class Store:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # ---- ingest gateway -------------------------------------------------------------------

    async def remember_identities(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """(pseudonym, canonical identity number, kind): the only place clear identities live."""
        pseudonyms, numbers, kinds = _columns(rows, 3)
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
        ids, types, hashes = _columns(sorted(claims), 3)
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
        ids, topics, partitions, offsets = _columns(rows, 4)
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
        sources, reasons, originals = _columns(rows, 3)
        if not sources:
            return
        await self.pool.execute(
            """INSERT INTO dead_letter (source, reason, original)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])""",
            sources, reasons, originals,
        )

    # ---- risk processor --------------------------------------------------------------------

    async def apply_batch(
        self,
        cluster_id: str,
        offsets: dict[tuple[str, int], list[int]],
        compute: BatchComputation,
    ) -> BatchEffects | None:
        """Run `compute` under the partition locks and write its effects, all in one transaction.

        `offsets` lists the offsets of the batch per (topic, partition). The tracking rows are
        locked first, so two workers that briefly both hold a partition (during a rebalance)
        serialise here; the second sees the offsets the first committed and skips them.
        """
        async with self.pool.acquire() as connection, connection.transaction():
            tracked = await _lock_tracking(connection, cluster_id, offsets.keys())
            fresh = {tp: [o for o in offs if o > tracked.get(tp, -1)] for tp, offs in offsets.items()}
            effects = await compute(connection, fresh)
            if effects is None:
                return None
            await _write_effects(connection, effects)
            await _advance_tracking(connection, cluster_id, effects.offsets)
            return effects

    async def write_effects(self, connection: asyncpg.Connection, effects: BatchEffects) -> None:
        """Write effects inside a transaction of the caller's (the risk stage's per-record path)."""
        await _write_effects(connection, effects)

    async def applied_positions(self, cluster_id: str, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the offset after the last one applied on this cluster, where one was."""
        async with self.pool.acquire() as connection:
            tracked = await _tracked(connection, cluster_id, partitions, lock=False)
        return {tp: offset + 1 for tp, offset in tracked.items() if offset >= 0}

    async def lock_projections(self, connection: asyncpg.Connection,
                               subjects: Sequence[str]) -> dict[str, tuple[int, int]]:
        """subject -> (state version, event time in ms the projection was assessed at), rows locked."""
        rows = await connection.fetch(
            """SELECT subject, state_version, (extract(epoch FROM assessed_at) * 1000)::bigint AS assessed_at
               FROM subject_projection WHERE subject = ANY($1::text[]) ORDER BY subject FOR UPDATE""",
            list(subjects),
        )
        return {row["subject"]: (row["state_version"], int(row["assessed_at"])) for row in rows}

    async def load_state_events(self, connection: asyncpg.Connection,
                                subjects: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """subject -> the compact events of its stored state (callers lock the projection rows first)."""
        rows = await connection.fetch(
            "SELECT subject, event FROM risk_state_event WHERE subject = ANY($1::text[])", list(subjects)
        )
        events: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            events.setdefault(row["subject"], []).append(row["event"])
        return events

    async def archived_ids(self, connection: asyncpg.Connection, event_ids: Sequence[str]) -> set[str]:
        rows = await connection.fetch(
            "SELECT event_id::text AS event_id FROM event_archive WHERE event_id = ANY($1::uuid[])", list(event_ids)
        )
        return {row["event_id"] for row in rows}

    # ---- outbox relay ------------------------------------------------------------------------

    async def relay_outbox(self, publish: Callable[[list[OutboxMessage]], Awaitable[None]], limit: int) -> int:
        """Claim up to `limit` unpublished messages, publish them, mark them published.

        The rows stay locked (SKIP LOCKED) while `publish` runs, so two relays never send the
        same message at once. A crash after publishing and before the commit republishes it:
        consumers recognise alerts by their deterministic alert_id.
        """
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                """SELECT id, topic, message_key, message FROM outbox WHERE published_at IS NULL
                   ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                limit,
            )
            if not rows:
                return 0
            await publish([OutboxMessage(r["id"], r["topic"], r["message_key"], bytes(r["message"])) for r in rows])
            await connection.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            return len(rows)

    async def outbox_backlog(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))

    # ---- reads ---------------------------------------------------------------------------------

    async def projection_assessments(self) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch("SELECT subject, assessment FROM risk_projection ORDER BY subject")
        return [(row["subject"], row["assessment"]) for row in rows]

    async def archived_bodies(self, prefetch: int = 20_000) -> AsyncIterator[tuple[str, bytes]]:
        """(subject, body) of the archive in (subject, event time) order, streamed with a server-side cursor."""
        async with self.pool.acquire() as connection, connection.transaction():
            cursor = connection.cursor(
                "SELECT subject, body FROM event_archive ORDER BY subject, event_time, event_id", prefetch=prefetch
            )
            async for row in cursor:
                yield row["subject"], bytes(row["body"])


async def _lock_tracking(connection: asyncpg.Connection, cluster_id: str, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    topics, numbers = _columns(sorted(partitions), 2)
    await connection.execute(
        """INSERT INTO tracking (cluster_id, topic, kafka_partition, kafka_offset)
           SELECT $1, * FROM unnest($2::text[], $3::int[]), (VALUES (-1::bigint)) AS start(o)
           ON CONFLICT DO NOTHING""",
        cluster_id, topics, numbers,
    )
    return await _tracked(connection, cluster_id, list(zip(topics, numbers)), lock=True)


async def _tracked(connection: asyncpg.Connection, cluster_id: str, partitions: Iterable[tuple[str, int]], *,
                   lock: bool) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the last offset applied on this cluster (-1: none yet), rows locked if asked."""
    topics, numbers = _columns(sorted(partitions), 2)
    rows = await connection.fetch(
        """SELECT topic, kafka_partition, kafka_offset FROM tracking
           WHERE cluster_id = $1 AND (topic, kafka_partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))
           ORDER BY topic, kafka_partition""" + (" FOR UPDATE" if lock else ""),
        cluster_id, topics, numbers,
    )
    return {(row["topic"], row["kafka_partition"]): row["kafka_offset"] for row in rows}


async def _advance_tracking(connection: asyncpg.Connection, cluster_id: str, offsets: dict[tuple[str, int], int]) -> None:
    topics, numbers, values = _columns(((t, p, o) for (t, p), o in sorted(offsets.items())), 3)
    if topics:
        await connection.execute(
            """UPDATE tracking SET kafka_offset = GREATEST(tracking.kafka_offset, v.o), updated_at = now()
               FROM unnest($2::text[], $3::int[], $4::bigint[]) AS v(t, p, o)
               WHERE tracking.cluster_id = $1 AND tracking.topic = v.t AND tracking.kafka_partition = v.p""",
            cluster_id, topics, numbers, values,
        )


async def _write_effects(connection: asyncpg.Connection, effects: BatchEffects) -> None:
    if effects.archive:
        await _copy_new(connection, "event_archive", ARCHIVE_COLUMNS, [
            (e.event_id, e.subject, e.source_type, e.agency, e.region, ms_to_datetime(e.event_time),
             ms_to_datetime(e.recorded_time), e.body) for e in effects.archive
        ])
    if effects.projections:
        p = effects.projections
        await connection.execute(
            """INSERT INTO subject_projection (subject, assessment, level, score, region, caseload,
                                               policy_version, assessed_at, next_review_at, updated_at, state_version)
               SELECT s, a::jsonb, l, sc, r, c, pv, at, nr, now(), 1
               FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[],
                           $7::text[], $8::timestamptz[], $9::timestamptz[]) AS x(s, a, l, sc, r, c, pv, at, nr)
               ON CONFLICT (subject) DO UPDATE SET assessment = EXCLUDED.assessment,
                   level = EXCLUDED.level, score = EXCLUDED.score, region = EXCLUDED.region,
                   caseload = EXCLUDED.caseload, policy_version = EXCLUDED.policy_version,
                   assessed_at = EXCLUDED.assessed_at, next_review_at = EXCLUDED.next_review_at, updated_at = now(),
                   state_version = subject_projection.state_version + 1""",
            [r.subject for r in p], [stored_json(r.assessment) for r in p], [r.level for r in p],
            [r.score for r in p], [r.region for r in p], [r.caseload for r in p], [r.policy_version for r in p],
            [ms_to_datetime(r.assessed_at) for r in p],
            [ms_to_datetime(r.next_review_at) if r.next_review_at is not None else None for r in p],
        )
        dropping = [r for r in p if r.state_from is not None]  # rare: only when the cut-off moved past stored events
        for r in dropping:
            await connection.execute(
                "DELETE FROM risk_state_event WHERE subject = $1 AND event_time < $2", r.subject, r.state_from
            )
        added = [(r.subject, time, event_id, event) for r in p for time, event_id, event in r.state_added]
        if added:
            subjects, times, ids, events = _columns(added, 4)
            await connection.execute(
                """INSERT INTO risk_state_event (subject, event_time, event_id, event)
                   SELECT s, t, i, e::jsonb FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS x(s, t, i, e)
                   ON CONFLICT DO NOTHING""",
                subjects, times, ids, [stored_json(event) for event in events],
            )
    if effects.history:
        await _copy_new(connection, "risk_history", HISTORY_COLUMNS, [
            (r.subject, r.event_id, ms_to_datetime(r.event_time), r.level, r.score, r.explanation, r.policy_version)
            for r in effects.history
        ])
    new_alerts: list[AlertRow] = []
    if effects.alerts:
        al = effects.alerts
        inserted = await connection.fetch(
            """INSERT INTO alert (alert_id, subject, trigger, priority, level_before, level_after, score, explanation,
                                  factors, region, caseload, event_time, causing_event_id, policy_version, paged)
               SELECT a, s, t, p, lb, la, sc, e, f::jsonb, r, c, et, ce, pv, pg
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int2[], $5::text[], $6::text[], $7::float8[],
                           $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::uuid[], $14::text[],
                           $15::bool[])
                    AS x(a, s, t, p, lb, la, sc, e, f, r, c, et, ce, pv, pg)
               ON CONFLICT (alert_id) DO NOTHING RETURNING alert_id::text""",
            [r.alert_id for r in al], [r.subject for r in al], [r.trigger for r in al], [r.priority for r in al],
            [r.level_before for r in al], [r.level_after for r in al], [r.score for r in al],
            [r.explanation for r in al], [stored_json(r.factors) for r in al], [r.region for r in al], [r.caseload for r in al],
            [ms_to_datetime(r.event_time) for r in al], [r.causing_event_id for r in al],
            [r.policy_version for r in al], [r.paged for r in al],
        )
        effects.new_alert_ids = {row["alert_id"] for row in inserted}
        new_alerts = [r for r in al if r.alert_id in effects.new_alert_ids]
        await attach_to_cases(connection, [r for r in new_alerts if r.paged])
    outbox = list(effects.risk_changes) + [(r.topic, r.subject, r.message) for r in new_alerts]
    if outbox:
        topics, keys, messages = _columns(outbox, 3)
        await connection.execute(
            """INSERT INTO outbox (topic, message_key, message)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])""",
            topics, keys, messages,
        )


ARCHIVE_COLUMNS = ("event_id", "subject", "source_type", "agency", "region", "event_time", "recorded_time", "body")
HISTORY_COLUMNS = ("subject", "event_id", "event_time", "level", "score", "explanation", "policy_version")


async def _copy_new(connection: asyncpg.Connection, table: str, columns: Sequence[str],
                    records: list[tuple[Any, ...]]) -> None:
    """Rows by COPY into a temporary table, then into `table`, skipping rows already there.

    COPY is the fastest way in, but it cannot skip conflicts: a replayed event is already archived.
    The temporary table is emptied at commit and lives as long as the connection.
    """
    staging = f"staging_{table}"
    names = ", ".join(columns)
    await connection.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await connection.copy_records_to_table(staging, records=records, columns=list(columns))
    await connection.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} ON CONFLICT DO NOTHING; TRUNCATE {staging}"
    )


def stored_json(value: Any) -> str:
    # arrays of jsonb go over the wire as text and are cast in SQL
    return json.dumps(value, separators=(",", ":"))


def _columns(rows: Iterable[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    columns: tuple[list[Any], ...] = tuple([] for _ in range(width))
    for row in rows:
        for column, value in zip(columns, row):
            column.append(value)
    return columns
