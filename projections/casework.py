"""PostgreSQL adapter (asyncpg) for the workload: backfilled events, cases, the review queue.

Cases are written in the risk batch's transaction, with the alerts that open or update them:
a crash neither loses an alert's case nor attaches an alert twice. Reviews are opened by the
scheduler; see services/api/reviews.py for completing them and services/api/cases.py for
the case workflow.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import asyncpg

from projections.events import RISKWATCH_AGENCY, RISKWATCH_NAMESPACE
from projections.levels import Level
from projections.policy import Policy

if TYPE_CHECKING:
    from projections.store import AlertRow

REVIEW_BATCH = 10_000


async def backfilled(connection: asyncpg.Connection, event_ids: Sequence[str]) -> set[str]:
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


def case_id(subject: str, first_alert_id: str) -> str:
    return str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{subject}|case|{first_alert_id}"))


async def attach_to_cases(connection: asyncpg.Connection, alerts: Sequence[AlertRow]) -> None:
    """Paged alerts, newly stored, onto their subject's open case (opened if there is none).

    The case takes the most urgent priority of its alerts and the latest alert's level,
    explanation and audience. An acknowledged case that gets a more urgent alert is open again:
    someone must look at what is new.
    """
    by_subject: dict[str, list[AlertRow]] = {}
    for alert in alerts:
        by_subject.setdefault(alert.subject, []).append(alert)
    for subject in sorted(by_subject):
        rows = by_subject[subject]
        latest = rows[-1]
        priority = min(row.priority for row in rows)
        triggers = sorted({row.trigger for row in rows})
        case = await connection.fetchrow(
            """SELECT case_id::text AS case_id, status, priority FROM alert_case
               WHERE subject = $1 AND status <> 'closed' FOR UPDATE""",
            subject,
        )
        if case is None:
            target = case_id(subject, rows[0].alert_id)
            await connection.execute(
                """INSERT INTO alert_case (case_id, subject, priority, level, region, caseload, triggers, alert_count,
                                           explanation, seq)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)""",
                target, subject, priority, latest.level_after, latest.region, latest.caseload, triggers, len(rows),
                latest.explanation,
            )
        else:
            target = case["case_id"]
            reopen = case["status"] == "acknowledged" and priority < case["priority"]
            await connection.execute(
                """UPDATE alert_case SET priority = least(priority, $2), level = $3, region = coalesce($4, region),
                       caseload = coalesce($5, caseload),
                       triggers = ARRAY(SELECT DISTINCT t FROM unnest(triggers || $6::text[]) AS t ORDER BY t),
                       alert_count = alert_count + $7, explanation = $8, updated_at = now(),
                       status = CASE WHEN $9 THEN 'open' ELSE status END
                   WHERE case_id = $1""",
                target, priority, latest.level_after, latest.region, latest.caseload, triggers, len(rows),
                latest.explanation, reopen,
            )
            if reopen:
                await connection.execute(
                    """INSERT INTO case_workflow (event_id, case_id, action, actor, note)
                       VALUES ($1, $2, 'reopened', $3, 'a more urgent alert came in')""",
                    str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{target}|reopened|{latest.alert_id}")), target,
                    RISKWATCH_AGENCY,
                )
        await connection.execute(
            "UPDATE alert SET case_id = $1 WHERE alert_id = ANY($2::uuid[])", target, [row.alert_id for row in rows]
        )


async def open_due_reviews(pool: asyncpg.Pool, policy: Policy, now: dt.datetime) -> int:
    """One open review item for each subject at the policy's review level whose review has come.

    A subject with an open item gets none, however many reviews fell due while nobody looked
    (downtime, a backfill): catching up yields at most one item per subject. An item is overdue
    the policy's grace after it was opened, not after a due time that passed unseen. A completed
    review sets the next one at its completion plus the level's interval, unless new events
    moved the projection's next review later. The one-open-item index keeps two schedulers from
    opening two.
    """
    levels = [level.label for level in Level if level >= policy.review_from_level]
    intervals = {level.label: policy.review_ms[level] // 3_600_000 for level in Level}
    overdue = dt.timedelta(milliseconds=policy.review_overdue_ms)
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
        now, levels, overdue, intervals, REVIEW_BATCH,
    )
    return int(status.split()[-1])
