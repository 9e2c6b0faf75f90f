"""The quarantine on PostgreSQL (projections/quarantine.py says what goes there and why)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from projections.quarantine import Quarantined, QuarantineEntry
from services.adapters.postgres.pool import Connection, port_errors


async def write_quarantined(connection: Connection | asyncpg.Pool, rows: Sequence[Quarantined]) -> None:
    if not rows:
        return
    await connection.executemany(
        """INSERT INTO quarantine (stage, topic, kafka_partition, kafka_offset, record_key, record, event_id,
                                   reason_class, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7::uuid, $8, $9)""",
        [(r.stage, r.topic, r.partition, r.offset, r.key, r.record, r.event_id, r.reason_class, r.reason)
         for r in rows],
    )


class PostgresQuarantine:
    """projections.ports.Quarantine on a pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def write(self, rows: Sequence[Quarantined]) -> None:
        with port_errors():
            await write_quarantined(self.pool, rows)

    async def entries(self, *, include_retried: bool = False,
                      ids: Sequence[int] | None = None) -> list[QuarantineEntry]:
        with port_errors():
            rows = await self.pool.fetch(
                """SELECT id, quarantined_at, stage, topic, kafka_partition, kafka_offset, record_key, record,
                          event_id::text AS event_id, reason_class, reason, retried_at
                   FROM quarantine
                   WHERE ($1 OR retried_at IS NULL) AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
                   ORDER BY id""",
                include_retried, list(ids) if ids is not None else None,
            )
        return [QuarantineEntry(id=row["id"], quarantined_at=row["quarantined_at"], stage=row["stage"],
                                topic=row["topic"], partition=row["kafka_partition"], offset=row["kafka_offset"],
                                key=_bytes(row["record_key"]), record=bytes(row["record"]), event_id=row["event_id"],
                                reason_class=row["reason_class"], reason=row["reason"], retried_at=row["retried_at"])
                for row in rows]

    async def mark_retried(self, ids: Sequence[int]) -> None:
        with port_errors():
            await self.pool.execute("UPDATE quarantine SET retried_at = now() WHERE id = ANY($1::bigint[])", list(ids))


def _bytes(value: bytes | None) -> bytes | None:
    return bytes(value) if value is not None else None
