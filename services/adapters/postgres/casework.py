"""The workload on PostgreSQL: backfilled events, cases (in the risk batch's transaction), reviews.

The rules are projections/casework.py's; this is their SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import asyncpg

from projections.alerts import StoredAlert
from projections.casework import REOPEN_NOTE, REVIEW_BATCH, case_updates, reopened_event_id, review_terms
from projections.events import RISKWATCH_AGENCY
from projections.policy import Policy
from services.adapters.postgres.pool import Connection, port_errors


async def backfilled(connection: Connection, event_ids: Sequence[str]) -> set[str]:
    """The event ids among these that were ingested as a backfill (their alerts are history)."""
    if not event_ids:
        return set()
    rows = await connection.fetch(
        "SELECT event_id::text AS event_id FROM backfill_event WHERE event_id = ANY($1::uuid[])", list(event_ids)
    )
    return {row["event_id"] for row in rows}


async def record_backfill(pool: asyncpg.Pool, event_ids: Iterable[str]) -> None:
    """Mark events as history before they are sent, so no worker can page them first."""
    ids = sorted(set(event_ids))
    if ids:
        await pool.execute(
            "INSERT INTO backfill_event (event_id) SELECT * FROM unnest($1::uuid[]) ON CONFLICT DO NOTHING", ids
        )


async def attach_to_cases(connection: Connection, alerts: Sequence[StoredAlert]) -> None:
    """Paged alerts, newly stored, onto their subject's open case (opened if there is none)."""
    for update in case_updates(alerts):
        latest = update.latest
        case = await connection.fetchrow(
            """SELECT case_id::text AS case_id, status, priority FROM alert_case
               WHERE subject = $1 AND status <> 'closed' FOR UPDATE""",
            update.subject,
        )
        if case is None:
            target = update.new_case_id
            await connection.execute(
                """INSERT INTO alert_case (case_id, subject, priority, level, region, caseload, triggers, alert_count,
                                           explanation, seq)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)""",
                target, update.subject, update.priority, latest.level_after, latest.region, latest.caseload,
                update.triggers, len(update.alerts), latest.explanation,
            )
        else:
            target = case["case_id"]
            reopen = update.reopens(case["status"], case["priority"])
            await connection.execute(
                """UPDATE alert_case SET priority = least(priority, $2), level = $3, region = coalesce($4, region),
                       caseload = coalesce($5, caseload),
                       triggers = ARRAY(SELECT DISTINCT t FROM unnest(triggers || $6::text[]) AS t ORDER BY t),
                       alert_count = alert_count + $7, explanation = $8, updated_at = now(),
                       status = CASE WHEN $9 THEN 'open' ELSE status END
                   WHERE case_id = $1""",
                target, update.priority, latest.level_after, latest.region, latest.caseload, update.triggers,
                len(update.alerts), latest.explanation, reopen,
            )
            if reopen:
                await connection.execute(
                    """INSERT INTO case_workflow (event_id, case_id, action, actor, note)
                       VALUES ($1, $2, 'reopened', $3, $4)""",
                    reopened_event_id(target, latest.alert_id), target, RISKWATCH_AGENCY, REOPEN_NOTE,
                )
        await connection.execute(
            "UPDATE alert SET case_id = $1 WHERE alert_id = ANY($2::uuid[])", target,
            [alert.alert_id for alert in update.alerts],
        )


class PostgresReviews:
    """projections.ports.Reviews: the scheduler's review opening (projections.casework.review_terms)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def open_due(self, policy: Policy, now: dt.datetime) -> int:
        with port_errors():
            return await open_due_reviews(self.pool, policy, now)


async def open_due_reviews(pool: asyncpg.Pool, policy: Policy, now: dt.datetime) -> int:
    terms = review_terms(policy)
    status = await pool.execute(
        """WITH latest AS (
               SELECT DISTINCT ON (subject) subject, status, next_due_at FROM review ORDER BY subject, opened_at DESC
           ), due AS (
               SELECT p.subject, p.level, p.region, p.caseload,
                      greatest(p.next_review_at, l.next_due_at) AS due_at
               FROM risk_projection p LEFT JOIN latest l ON l.subject = p.subject
               WHERE p.next_review_at <= $1 AND p.level = ANY($2::text[])
                 AND (l.subject IS NULL OR (l.status = 'completed' AND l.next_due_at <= $1))
               ORDER BY p.next_review_at LIMIT $5
           )
           INSERT INTO review (subject, level, due_at, overdue_at, interval_hours, region, caseload)
           SELECT subject, level, due_at, $1 + $3::interval, ($4::jsonb ->> level)::int, region, caseload
           FROM due
           ON CONFLICT DO NOTHING""",
        now, terms.levels, terms.overdue, terms.interval_hours, REVIEW_BATCH,
    )
    return int(status.split()[-1])
