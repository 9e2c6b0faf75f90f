"""The query API's reads of subjects, watch lists and the streams' state in PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import asyncpg

from services.adapters.postgres.access_log import transient_as_unavailable
from services.adapters.postgres.workflow import row, rows
from services.api.ports import Row


class PostgresSubjectReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def projection(self, subject: str) -> Row | None:
        with transient_as_unavailable():
            return row(await self._pool.fetchrow(
                """SELECT subject, assessment, level, score, region, caseload, policy_version, assessed_at,
                          next_review_at
                   FROM risk_projection WHERE subject = $1""",
                subject,
            ))

    async def history(self, subject: str, limit: int) -> list[Row]:
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                """SELECT event_id::text AS event_id, event_time, level, score, explanation FROM risk_history
                   WHERE subject = $1 ORDER BY event_time DESC, event_id DESC LIMIT $2""",
                subject, limit,
            ))

    async def archived_events(self, event_ids: Sequence[str]) -> list[Row]:
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                """SELECT event_id::text AS event_id, source_type, agency, event_time FROM event_archive
                   WHERE event_id = ANY($1::uuid[]) ORDER BY event_time, event_id""",
                list(event_ids),
            ))

    async def identity(self, subject: str) -> Row | None:
        with transient_as_unavailable():
            return row(await self._pool.fetchrow(
                "SELECT identity_number, kind FROM subject_identity WHERE pseudonym = $1", subject))


class PostgresWatchReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def watch_events(self, source_types: Sequence[str], start: dt.datetime, end: dt.datetime,
                           caseloads: Sequence[str] | None) -> list[Row]:
        parameters: list[Any] = [list(source_types), start, end]
        scope = ""
        if caseloads is not None:
            parameters.append(list(caseloads))
            scope = f"AND p.caseload = ANY(${len(parameters)}::text[])"
        with transient_as_unavailable():
            found = await self._pool.fetch(
                f"""SELECT a.event_id::text AS event_id, a.subject, a.source_type, a.event_time, a.body,
                           p.level, p.score, p.caseload
                    FROM event_archive a JOIN risk_projection p ON p.subject = a.subject
                    WHERE a.source_type = ANY($1::text[]) AND a.event_time >= $2 AND a.event_time < $3 {scope}
                    ORDER BY a.event_time, a.event_id""",
                *parameters,
            )
        return [{**dict(record), "body": bytes(record["body"])} for record in found]

    async def priority(self, region: str | None, limit: int, offset: int) -> tuple[list[Row], int]:
        # both forms keep to the (region, score) index
        where = "region IS NULL AND $1::text IS NULL" if region is None else "region = $1"
        with transient_as_unavailable():
            async with self._pool.acquire() as connection:
                total = await connection.fetchval(f"SELECT count(*) FROM risk_projection WHERE {where}", region)
                found = await connection.fetch(
                    f"""SELECT subject, level, score, caseload, assessed_at, assessment -> 'components' AS components,
                              (assessment ->> 'override') IS NOT NULL AS overridden
                       FROM risk_projection WHERE {where} ORDER BY score DESC, subject LIMIT $2 OFFSET $3""",
                    region, limit, offset,
                )
        return rows(found), int(total)


class PostgresStreamStatusReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def alert_latency(self) -> Row:
        with transient_as_unavailable():
            found = await self._pool.fetchrow(
                """SELECT count(*) AS alerts,
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50_seconds,
                          percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95_seconds,
                          max(seconds) AS max_seconds
                   FROM (SELECT greatest(0, extract(epoch FROM a.created_at - i.accepted_at))::float8 AS seconds
                         FROM alert a JOIN ingested_event i ON i.event_id = a.causing_event_id
                         WHERE a.created_at > now() - interval '1 hour' AND a.escalated_from IS NULL) AS latencies"""
            )
        assert found is not None
        return dict(found)

    async def backlogs(self) -> Row:
        with transient_as_unavailable():
            found = await self._pool.fetchrow(
                """SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS outbox_backlog,
                          (SELECT count(*) FROM dead_letter) AS dead_letters,
                          (SELECT count(*) FROM dead_letter WHERE received_at > now() - interval '1 hour')
                              AS dead_letters_last_hour,
                          (SELECT count(*) FROM alert WHERE status = 'open') AS unacknowledged_alerts,
                          (SELECT count(*) FROM alert WHERE status = 'escalated') AS escalated_alerts"""
            )
        assert found is not None
        return dict(found)
