"""The risk stage's store on PostgreSQL: the batch's unit of work and the archive reader.

Each risk batch is ONE transaction: archive rows, state rows, history, alerts and their cases,
the outbox, quarantined records and the consumed offsets. A replayed message is recognised by
its tracked offset or its event id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from projections.alerts import StoredAlert
from projections.ports import BatchEffects, Partition, StateHead
from services.adapters.postgres.casework import attach_to_cases, backfilled
from services.adapters.postgres import columns
from services.adapters.postgres.pool import UNAVAILABLE, Connection, mapped, port_errors, stored_json
from services.adapters.postgres.quarantine import write_quarantined

ARCHIVE_COLUMNS = ("event_id", "subject", "source_type", "agency", "region", "event_time", "recorded_time", "body")
HISTORY_COLUMNS = ("subject", "event_id", "event_time", "level", "score", "explanation", "policy_version")


def ms_to_datetime(epoch_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)


class PostgresRiskStore:
    """projections.ports.RiskStore and ArchiveReader on a pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def batch(self, cluster_id: str,
                    offsets: Mapping[Partition, Sequence[int]]) -> AsyncIterator[PostgresRiskUnit]:
        """The tracking rows are locked first, so two workers that briefly both hold a partition
        (during a rebalance) serialise here; the second sees the offsets the first committed."""
        with port_errors():
            connection = await self.pool.acquire()
        try:
            unit: PostgresRiskUnit | None = None
            with port_errors():
                transaction = connection.transaction()
                await transaction.start()
            try:
                with port_errors():
                    tracked = await _lock_tracking(connection, cluster_id, offsets.keys())
                fresh = {tp: [o for o in offs if o > tracked.get(tp, -1)] for tp, offs in offsets.items()}
                unit = PostgresRiskUnit(connection, transaction, cluster_id, fresh)
                yield unit  # (the block's own errors pass as they are)
            finally:
                if unit is None or not unit.committed:
                    await _rollback(transaction)
        finally:
            await self.pool.release(connection)

    async def applied_positions(self, cluster_id: str, partitions: Sequence[Partition]) -> dict[Partition, int]:
        with port_errors():
            async with self.pool.acquire() as connection:
                tracked = await _tracked(connection, cluster_id, partitions)
        return {tp: offset + 1 for tp, offset in tracked.items() if offset >= 0}

    # ---- the archive reader (rebuild) --------------------------------------------------------

    async def projection_assessments(self) -> list[tuple[str, dict[str, Any]]]:
        rows = await mapped(lambda: self.pool.fetch("SELECT subject, assessment FROM risk_projection ORDER BY subject"))
        return [(row["subject"], row["assessment"]) for row in rows]

    async def archived_bodies(self, prefetch: int = 20_000) -> AsyncIterator[tuple[str, bytes]]:
        """(subject, body) of the archive in (subject, event time) order, streamed with a server-side cursor.

        The cursor is read `prefetch` rows a call: iterating it row by row costs a round of
        asyncpg's checks per row, as much as the rest of a rebuild's reading together.
        """
        with port_errors():
            async with self.pool.acquire() as connection, connection.transaction():
                cursor = await connection.cursor(
                    "SELECT subject, body FROM event_archive ORDER BY subject, event_time, event_id"
                )
                while rows := await cursor.fetch(prefetch):
                    for subject, body in rows:
                        yield subject, body


async def _rollback(transaction: Any) -> None:
    # the connection is gone, or the commit failed: either way nothing was committed, and the
    # failure that brought us here is the one to report
    with contextlib.suppress(*UNAVAILABLE):
        await transaction.rollback()


class PostgresRiskUnit:
    """projections.ports.RiskUnit: one transaction, the tracking rows of its partitions locked."""

    def __init__(self, connection: Connection, transaction: Any, cluster_id: str,
                 fresh: dict[Partition, list[int]]) -> None:
        self.connection = connection
        self.transaction = transaction
        self.cluster_id = cluster_id
        self._fresh = fresh
        self.committed = False

    @property
    def fresh(self) -> dict[Partition, list[int]]:
        return self._fresh

    async def archived(self, event_ids: Sequence[str]) -> set[str]:
        rows = await mapped(lambda: self.connection.fetch(
            "SELECT event_id::text AS event_id FROM event_archive WHERE event_id = ANY($1::uuid[])", list(event_ids)
        ))
        return {row["event_id"] for row in rows}

    async def backfilled(self, event_ids: Sequence[str]) -> set[str]:
        return await mapped(lambda: backfilled(self.connection, event_ids))

    async def lock_states(self, subjects: Sequence[str]) -> dict[str, StateHead]:
        rows = await mapped(lambda: self.connection.fetch(
            """SELECT subject, state_version, (extract(epoch FROM assessed_at) * 1000)::bigint AS assessed_at
               FROM subject_projection WHERE subject = ANY($1::text[]) ORDER BY subject FOR UPDATE""",
            list(subjects),
        ))
        return {row["subject"]: StateHead(row["state_version"], int(row["assessed_at"])) for row in rows}

    async def state_events(self, subjects: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        if not subjects:
            return {}
        rows = await mapped(lambda: self.connection.fetch(
            "SELECT subject, event FROM risk_state_event WHERE subject = ANY($1::text[])", list(subjects)
        ))
        events: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            events.setdefault(row["subject"], []).append(row["event"])
        return events

    @asynccontextmanager
    async def part(self) -> AsyncIterator[None]:
        self._open()
        with port_errors():
            async with self.connection.transaction():  # a savepoint: a part that fails leaves no trace
                yield

    async def write(self, effects: BatchEffects) -> set[str]:
        self._open()
        with port_errors():
            return await write_effects(self.connection, effects)

    async def commit(self, effects: BatchEffects) -> set[str]:
        self._open()
        with port_errors():
            new = await write_effects(self.connection, effects)
            await _advance_tracking(self.connection, self.cluster_id, effects.offsets)
            await self.transaction.commit()
        self.committed = True
        return new

    def _open(self) -> None:
        if self.committed:
            raise RuntimeError("the unit of work was committed already")


async def _lock_tracking(connection: Connection, cluster_id: str,
                         partitions: Iterable[Partition]) -> dict[Partition, int]:
    """Each partition's tracking row, made at -1 if it has none, locked (in partition order), in one round trip.

    ON CONFLICT DO UPDATE locks a row that is there, waits for a transaction holding it, and
    returns its latest committed offset (what a SELECT ... FOR UPDATE would, by READ COMMITTED's
    rules for updates).
    """
    topics, numbers = columns(sorted(partitions), 2)
    rows = await connection.fetch(
        """INSERT INTO tracking AS t (cluster_id, topic, kafka_partition, kafka_offset)
           SELECT $1, * FROM unnest($2::text[], $3::int[]), (VALUES (-1::bigint)) AS start(o)
           ON CONFLICT (cluster_id, topic, kafka_partition) DO UPDATE SET kafka_offset = t.kafka_offset
           RETURNING topic, kafka_partition, kafka_offset""",
        cluster_id, topics, numbers,
    )
    return {(row["topic"], row["kafka_partition"]): row["kafka_offset"] for row in rows}


async def _tracked(connection: Connection, cluster_id: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
    """(topic, partition) -> the last offset applied on this cluster (-1: none yet)."""
    topics, numbers = columns(sorted(partitions), 2)
    rows = await connection.fetch(
        """SELECT topic, kafka_partition, kafka_offset FROM tracking
           WHERE cluster_id = $1 AND (topic, kafka_partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))""",
        cluster_id, topics, numbers,
    )
    return {(row["topic"], row["kafka_partition"]): row["kafka_offset"] for row in rows}


async def _advance_tracking(connection: Connection, cluster_id: str, offsets: dict[Partition, int]) -> None:
    topics, numbers, values = columns(((t, p, o) for (t, p), o in sorted(offsets.items())), 3)
    if topics:
        await connection.execute(
            """UPDATE tracking SET kafka_offset = GREATEST(tracking.kafka_offset, v.o), updated_at = now()
               FROM unnest($2::text[], $3::int[], $4::bigint[]) AS v(t, p, o)
               WHERE tracking.cluster_id = $1 AND tracking.topic = v.t AND tracking.kafka_partition = v.p""",
            cluster_id, topics, numbers, values,
        )


async def write_effects(connection: Connection, effects: BatchEffects) -> set[str]:
    """Write effects inside the caller's transaction; the ids of the alerts not stored before."""
    await write_quarantined(connection, effects.quarantined)
    await _stage(connection, [table for table, rows in (("event_archive", effects.archive),
                                                        ("risk_history", effects.history)) if rows])
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
            subjects, times, ids, events = columns(added, 4)
            await connection.execute(
                """INSERT INTO risk_state_event (subject, event_time, event_id, event)
                   SELECT s, t, i, e::jsonb
                   FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS x(s, t, i, e)
                   ON CONFLICT DO NOTHING""",
                subjects, times, ids, [stored_json(event) for event in events],
            )
    if effects.history:
        await _copy_new(connection, "risk_history", HISTORY_COLUMNS, [
            (r.subject, r.event_id, ms_to_datetime(r.event_time), r.level, r.score, r.explanation, r.policy_version)
            for r in effects.history
        ])
    new_alerts = await insert_alerts(connection, effects.alerts)
    await attach_to_cases(connection, [r for r in new_alerts if r.paged])
    outbox = list(effects.risk_changes) + [(r.topic, r.subject, r.message) for r in new_alerts]
    if outbox:
        topics, keys, messages = columns(outbox, 3)
        await connection.execute(
            """INSERT INTO outbox (topic, message_key, message)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])""",
            topics, keys, messages,
        )
    return {alert.alert_id for alert in new_alerts}


async def insert_alerts(connection: Connection, alerts: Sequence[StoredAlert]) -> list[StoredAlert]:
    """The one writer of alerts: those not stored before are stored and returned (an alert id is deterministic)."""
    if not alerts:
        return []
    al = alerts
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
        [r.explanation for r in al], [stored_json(r.factors) for r in al], [r.region for r in al],
        [r.caseload for r in al],
        [ms_to_datetime(r.event_time) for r in al], [r.causing_event_id for r in al],
        [r.policy_version for r in al], [r.paged for r in al],
    )
    new_ids = {row["alert_id"] for row in inserted}
    return [r for r in al if r.alert_id in new_ids]


async def _stage(connection: Connection, tables: Sequence[str]) -> None:
    """The temporary tables `_copy_new` copies into for `tables`, in one round trip.

    A temporary table is emptied at commit and lives as long as the connection.
    """
    if tables:
        await connection.execute("; ".join(
            f"CREATE TEMP TABLE IF NOT EXISTS staging_{table} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            for table in tables
        ))


async def _copy_new(connection: Connection, table: str, names: Sequence[str],
                    records: list[tuple[Any, ...]]) -> None:
    """Rows by COPY into `table`'s temporary table (made by `_stage`), then into `table`, skipping
    rows already there: COPY is the fastest way in, but it cannot skip conflicts, and a replayed
    event is already archived."""
    staging = f"staging_{table}"
    listed = ", ".join(names)
    await connection.copy_records_to_table(staging, records=records, columns=list(names))
    await connection.execute(
        f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {staging} ON CONFLICT DO NOTHING; TRUNCATE {staging}"
    )
