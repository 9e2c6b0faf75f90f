"""The workflow's store in PostgreSQL: alert, case and review steps, escalation, the outbox.

A unit of work is one transaction on one connection; `..._for_update` reads lock the rows
(SELECT ... FOR UPDATE), escalation takes an advisory lock so one instance escalates at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import asyncpg

from services.adapters.postgres.access_log import Executor, insert_access, transient_as_unavailable
from projections.store import ms_to_datetime
from schemas.codec import encode_published
from services.workflow.ports import AccessEntry, NewAlert, Row

ESCALATION_LOCK = 0x45534341  # advisory lock id: "ESCA"

# The alert as the API shows it; `seq` orders alerts by commit (see migration 002).
ALERT_COLUMNS = """alert_id::text AS alert_id, seq, subject, trigger, priority, status, level_before, level_after,
    score, explanation, factors, region, caseload, event_time, created_at, causing_event_id::text AS causing_event_id,
    policy_version, assignee, for_supervisor, escalated_from::text AS escalated_from, status_changed_at, paged,
    case_id::text AS case_id"""
CASE_COLUMNS = """case_id::text AS case_id, subject, status, priority, level, region, caseload, triggers, alert_count,
    explanation, assignee, opened_at, updated_at, seq, escalated"""
REVIEW_COLUMNS = """review_id::text AS review_id, subject, level, due_at, overdue_at <= now() AS overdue, region,
    caseload, opened_at, status, completed_at, reviewer, decision, next_due_at"""
STEP_COLUMNS = "event_id::text AS event_id, action, actor, assignee, note, at"


def row(record: asyncpg.Record | None) -> Row | None:
    return None if record is None else dict(record)


def rows(records: Sequence[asyncpg.Record]) -> list[Row]:
    return [dict(record) for record in records]


def _found(record: asyncpg.Record | None) -> Row:
    assert record is not None, "the row is locked by this unit"
    return dict(record)


class PostgresWorkflowUnit:
    def __init__(self, connection: Executor) -> None:
        self._connection = connection

    async def alert_for_update(self, alert_id: str) -> Row | None:
        return row(await self._connection.fetchrow(
            f"SELECT {ALERT_COLUMNS} FROM alert WHERE alert_id = $1::uuid FOR UPDATE", alert_id))

    async def case_for_update(self, case_id: str) -> Row | None:
        return row(await self._connection.fetchrow(
            f"SELECT {CASE_COLUMNS} FROM alert_case WHERE case_id = $1::uuid FOR UPDATE", case_id))

    async def cases_for_update(self, case_ids: Sequence[str]) -> dict[str, Row]:
        found = await self._connection.fetch(
            f"SELECT {CASE_COLUMNS} FROM alert_case WHERE case_id = ANY($1::uuid[]) ORDER BY case_id FOR UPDATE",
            list(case_ids),
        )
        return {record["case_id"]: dict(record) for record in found}

    async def open_case_alerts_for_update(self, case_id: str) -> list[Row]:
        return rows(await self._connection.fetch(
            f"""SELECT {ALERT_COLUMNS} FROM alert WHERE case_id = $1::uuid AND status <> 'closed'
                ORDER BY seq FOR UPDATE""",
            case_id,
        ))

    async def record_alert_step(self, alert_id: str, event_id: str, action: str, actor: str,
                                assignee: str | None, note: str | None, status: str) -> Row:
        at: dt.datetime = await self._connection.fetchval(
            """INSERT INTO alert_workflow (event_id, alert_id, action, actor, assignee, note)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING at""",
            event_id, alert_id, action, actor, assignee, note,
        )
        return _found(await self._connection.fetchrow(
            f"""UPDATE alert SET status = $2, assignee = coalesce($3, assignee), status_changed_at = $4
                WHERE alert_id = $1 RETURNING {ALERT_COLUMNS}""",
            alert_id, status, assignee, at,
        ))

    async def record_case_step(self, case_id: str, event_id: str, action: str, actor: str,
                               assignee: str | None, note: str | None, status: str) -> Row:
        at: dt.datetime = await self._connection.fetchval(
            """INSERT INTO case_workflow (event_id, case_id, action, actor, assignee, note)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING at""",
            event_id, case_id, action, actor, assignee, note,
        )
        return _found(await self._connection.fetchrow(
            f"""UPDATE alert_case SET status = $2, assignee = coalesce($3, assignee), updated_at = $4
                WHERE case_id = $1 RETURNING {CASE_COLUMNS}""",
            case_id, status, assignee, at,
        ))

    async def add_alert(self, alert: NewAlert) -> None:
        await self._connection.execute(
            """INSERT INTO alert (alert_id, subject, trigger, priority, level_before, level_after, score, explanation,
                                  factors, region, caseload, event_time, causing_event_id, policy_version,
                                  for_supervisor, escalated_from)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::uuid, $14, $15, $16::uuid)
               ON CONFLICT (alert_id) DO NOTHING""",
            alert.alert_id, alert.subject, alert.trigger, alert.priority, alert.level_before, alert.level_after,
            alert.score, alert.explanation, alert.factors, alert.region, alert.caseload,
            ms_to_datetime(alert.event_time),
            alert.causing_event_id, alert.policy_version, alert.for_supervisor, alert.escalated_from,
        )

    async def publish(self, topic: str, key: str, message: Mapping[str, Any]) -> None:
        await self._connection.execute(
            "INSERT INTO outbox (topic, message_key, message) VALUES ($1, $2, $3)",
            topic, key, encode_published(topic, dict(message)),
        )

    async def record_access(self, entry: AccessEntry) -> None:
        await insert_access(self._connection, entry)

    async def claim_escalation(self) -> bool:
        return bool(await self._connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", ESCALATION_LOCK))

    async def overdue_cases(self, timeout: dt.timedelta, limit: int) -> list[Row]:
        return rows(await self._connection.fetch(
            f"""SELECT {CASE_COLUMNS} FROM alert_case
                WHERE status = 'open' AND NOT escalated
                  AND coalesce((SELECT max(w.at) FROM case_workflow w
                                WHERE w.case_id = alert_case.case_id AND w.action = 'reopened'), opened_at)
                      <= now() - $1::interval
                ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED""",
            timeout, limit,
        ))

    async def most_urgent_open_alert(self, case_id: str) -> Row | None:
        return row(await self._connection.fetchrow(
            f"""SELECT {ALERT_COLUMNS} FROM alert WHERE case_id = $1::uuid AND status = 'open'
                ORDER BY priority, seq DESC LIMIT 1 FOR UPDATE""",
            case_id,
        ))

    async def mark_case_escalated(self, case_id: str, event_id: str, actor: str) -> None:
        await self._connection.execute(
            """INSERT INTO case_workflow (event_id, case_id, action, actor) VALUES ($1, $2, 'escalated', $3)
               ON CONFLICT DO NOTHING""",
            event_id, case_id, actor,
        )
        await self._connection.execute(
            "UPDATE alert_case SET escalated = true, updated_at = now() WHERE case_id = $1", case_id)

    async def overdue_alerts(self, timeout: dt.timedelta, limit: int, *, except_trigger: str) -> list[Row]:
        return rows(await self._connection.fetch(
            f"""SELECT {ALERT_COLUMNS} FROM alert
                WHERE status = 'open' AND paged AND case_id IS NULL AND trigger <> $1
                  AND created_at <= now() - $2::interval
                ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED""",
            except_trigger, timeout, limit,
        ))

    async def review_for_update(self, review_id: str) -> Row | None:
        return row(await self._connection.fetchrow(
            f"SELECT {REVIEW_COLUMNS} FROM review WHERE review_id = $1::uuid FOR UPDATE", review_id))

    async def complete_review(self, review_id: str, event_id: str, reviewer: str, decision: str,
                              note: str | None) -> Row:
        at: dt.datetime = await self._connection.fetchval(
            """INSERT INTO review_decision (event_id, review_id, reviewer, decision, note)
               VALUES ($1, $2, $3, $4, $5) RETURNING at""",
            event_id, review_id, reviewer, decision, note,
        )
        return _found(await self._connection.fetchrow(
            f"""UPDATE review SET status = 'completed', completed_at = $2::timestamptz, reviewer = $3, decision = $4,
                    next_due_at = $2::timestamptz + make_interval(hours => interval_hours)
                WHERE review_id = $1 RETURNING {REVIEW_COLUMNS}""",
            review_id, at, reviewer, decision,
        ))


class PostgresWorkflowStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def unit(self) -> AsyncIterator[PostgresWorkflowUnit]:
        async with contextlib.AsyncExitStack() as stack:
            with transient_as_unavailable():
                connection = await stack.enter_async_context(self._pool.acquire())
                await stack.enter_async_context(connection.transaction())
            with transient_as_unavailable():
                yield PostgresWorkflowUnit(connection)
