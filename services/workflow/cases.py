"""The case workflow: acknowledge, assign and close a case, and with it its alerts; escalation per case.

A case is what a unit works on: one per subject while it is not closed, with the subject's
paged alerts attached (projections/casework.py). Each step is an append-only case_workflow
row, the same step on each of the case's alerts that it still fits (alert_workflow), and an
outbox message for alert-workflow.v1, all in the caller's transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from enum import StrEnum
import asyncpg

from projections.events import RISKWATCH_AGENCY, RISKWATCH_NAMESPACE
from schemas.codec import encode_published
from services.workflow.alerts import (
    ALERT_COLUMNS,
    ESCALATED_TRIGGER,
    ESCALATION_LOCK,
    ESCALATIONS_PER_ROUND,
    Step,
    WorkflowAction,
    WorkflowRefused,
    escalate_alert,
    next_status,
    record_step,
    Status as AlertStatus,
)
from streams.topology import ALERT_WORKFLOW

log = logging.getLogger(__name__)

CASE_COLUMNS = """case_id::text AS case_id, subject, status, priority, level, region, caseload, triggers, alert_count,
    explanation, assignee, opened_at, updated_at, seq, escalated"""


class CaseStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


def next_case_status(status: CaseStatus, action: WorkflowAction) -> CaseStatus:
    """Open -> acknowledged -> closed; assigning keeps the status; nothing after closed."""
    if status == CaseStatus.CLOSED:
        raise WorkflowRefused("status: the case is closed")
    if action == WorkflowAction.ACKNOWLEDGED:
        if status == CaseStatus.ACKNOWLEDGED:
            raise WorkflowRefused("status: the case is acknowledged already")
        return CaseStatus.ACKNOWLEDGED
    if action == WorkflowAction.CLOSED:
        return CaseStatus.CLOSED
    return status


async def record_case_step(connection: asyncpg.Connection, case: asyncpg.Record, step: Step) -> asyncpg.Record:
    """Apply one step to a case locked by the caller (SELECT ... FOR UPDATE) and to its alerts."""
    status = next_case_status(CaseStatus(case["status"]), step.action)
    event_id = str(uuid.uuid4())
    at: dt.datetime = await connection.fetchval(
        """INSERT INTO case_workflow (event_id, case_id, action, actor, assignee, note)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING at""",
        event_id, case["case_id"], step.action.value, step.actor, step.assignee, step.note,
    )
    updated = await connection.fetchrow(
        f"""UPDATE alert_case SET status = $2, assignee = coalesce($3, assignee), updated_at = $4
            WHERE case_id = $1 RETURNING {CASE_COLUMNS}""",
        case["case_id"], status.value, step.assignee, at,
    )
    alerts = await connection.fetch(
        f"SELECT {ALERT_COLUMNS} FROM alert WHERE case_id = $1 AND status <> 'closed' ORDER BY seq FOR UPDATE",
        case["case_id"],
    )
    for alert in alerts:
        try:
            next_status(AlertStatus(alert["status"]), step.action)
        except WorkflowRefused:
            continue  # e.g. an alert acknowledged on its own before: the case step still stands
        await record_step(connection, alert, step)
    await connection.execute(
        "INSERT INTO outbox (topic, message_key, message) VALUES ($1, $2, $3)",
        ALERT_WORKFLOW, case["subject"], encode_published(ALERT_WORKFLOW, {
            "event_id": event_id, "case_id": case["case_id"], "subject": case["subject"],
            "action": step.action.value, "status": status.value, "actor": step.actor, "assignee": step.assignee,
            "has_note": bool(step.note), "at": at.isoformat(),
        }),
    )
    assert updated is not None
    return updated


async def escalate_cases(connection: asyncpg.Connection, timeout: dt.timedelta, limit: int) -> int:
    """Escalate each case left open (nobody acknowledged it) for longer than `timeout`, once.

    The time counts from its opening, or from its reopening by a more urgent alert.

    One escalation per case, however many alerts it holds: its most urgent alert goes to the
    supervisors as an `escalated` alert, and the case is flagged.
    """
    cases = await connection.fetch(
        f"""SELECT {CASE_COLUMNS} FROM alert_case
            WHERE status = 'open' AND NOT escalated
              AND coalesce((SELECT max(w.at) FROM case_workflow w
                            WHERE w.case_id = alert_case.case_id AND w.action = 'reopened'), opened_at)
                  <= now() - $1::interval
            ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED""",
        timeout, limit,
    )
    for case in cases:
        alert = await connection.fetchrow(
            f"""SELECT {ALERT_COLUMNS} FROM alert WHERE case_id = $1 AND status = 'open'
                ORDER BY priority, seq DESC LIMIT 1 FOR UPDATE""",
            case["case_id"],
        )
        if alert is not None:
            await escalate_alert(connection, alert, timeout)
        await connection.execute(
            """INSERT INTO case_workflow (event_id, case_id, action, actor) VALUES ($1, $2, 'escalated', $3)
               ON CONFLICT DO NOTHING""",
            str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{case['case_id']}|escalation-step")), case["case_id"],
            RISKWATCH_AGENCY,
        )
        await connection.execute(
            "UPDATE alert_case SET escalated = true, updated_at = now() WHERE case_id = $1", case["case_id"]
        )
    return len(cases)


async def escalate_overdue(pool: asyncpg.Pool, timeout: dt.timedelta) -> int:
    """Escalate the cases open for longer than `timeout`; 0 when another instance holds the lock.

    Escalation is per case (services/workflow/cases.py). Alerts that are history never escalate;
    paged alerts stored before cases existed (no case) still escalate one by one.
    """
    async with pool.acquire() as connection, connection.transaction():
        if not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", ESCALATION_LOCK):
            return 0
        escalated = await escalate_cases(connection, timeout, ESCALATIONS_PER_ROUND)
        overdue = await connection.fetch(
            f"""SELECT {ALERT_COLUMNS} FROM alert
                WHERE status = 'open' AND paged AND case_id IS NULL AND trigger <> $1
                  AND created_at <= now() - $2::interval
                ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED""",
            ESCALATED_TRIGGER, timeout, ESCALATIONS_PER_ROUND,
        )
        for alert in overdue:
            await escalate_alert(connection, alert, timeout)
        return escalated + len(overdue)


async def run_escalation(pool: asyncpg.Pool, timeout: dt.timedelta, interval: float) -> None:
    """Until cancelled: escalate what is overdue, every `interval` seconds."""
    while True:
        try:
            escalated = await escalate_overdue(pool, timeout)
            if escalated:
                log.info("escalated %d unacknowledged alerts", escalated)
        except Exception:  # a database hiccup must not end escalation for the life of the process
            log.exception("escalation failed; retrying")
        await asyncio.sleep(interval)
