"""The alert workflow: acknowledge, assign, close, and escalation of alerts nobody acknowledged.

Each step is an append-only alert_workflow row, written in one transaction with the alert's
new status and an outbox message for alert-workflow.v1 (the stream workers' relay publishes
it). Notes are free text that may name people: they stay in PostgreSQL, the topic only says
that there is one.

An escalation is a step too: an `escalated` step on the alert and a new alert with trigger
`escalated` for the supervisors of the same region or caseload. When to escalate is decided
per case (services/workflow/cases.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg

from projections.events import RISKWATCH_AGENCY, RISKWATCH_NAMESPACE
from schemas.codec import encode_published
from streams.topology import ALERT_WORKFLOW, ALERTS

ESCALATION_LOCK = 0x45534341  # advisory lock id: "ESCA"
ESCALATED_TRIGGER = "escalated"
ESCALATIONS_PER_ROUND = 500

# The alert as the API shows it; `seq` orders alerts by commit (see migration 002).
ALERT_COLUMNS = """alert_id::text AS alert_id, seq, subject, trigger, priority, status, level_before, level_after,
    score, explanation, factors, region, caseload, event_time, created_at, causing_event_id::text AS causing_event_id,
    policy_version, assignee, for_supervisor, escalated_from::text AS escalated_from, status_changed_at, paged,
    case_id::text AS case_id"""


class Status(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"  # nobody acknowledged it in time; the supervisors have an alert about it
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class WorkflowAction(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    CLOSED = "closed"
    ESCALATED = "escalated"


class WorkflowRefused(Exception):
    """The step does not fit the alert's status; the reason says why, for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Step:
    action: WorkflowAction
    actor: str
    assignee: str | None = None
    note: str | None = None


def next_status(status: Status, action: WorkflowAction) -> Status:
    """Open (or escalated) -> acknowledged -> closed; assigning keeps the status; nothing after closed."""
    if status == Status.CLOSED:
        raise WorkflowRefused("status: the alert is closed")
    if action == WorkflowAction.ACKNOWLEDGED:
        if status == Status.ACKNOWLEDGED:
            raise WorkflowRefused("status: the alert is acknowledged already")
        return Status.ACKNOWLEDGED
    if action == WorkflowAction.CLOSED:
        return Status.CLOSED
    if action == WorkflowAction.ESCALATED:
        if status != Status.OPEN:
            raise WorkflowRefused(f"status: only an open alert is escalated, this one is {status.value}")
        return Status.ESCALATED
    return status


async def record_step(connection: asyncpg.Connection, alert: asyncpg.Record, step: Step,
                      event_id: str | None = None) -> asyncpg.Record:
    """Apply one step to an alert locked by the caller (SELECT ... FOR UPDATE); returns the alert as it is now."""
    status = next_status(Status(alert["status"]), step.action)
    event_id = event_id or str(uuid.uuid4())
    at: dt.datetime = await connection.fetchval(
        """INSERT INTO alert_workflow (event_id, alert_id, action, actor, assignee, note)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING at""",
        event_id, alert["alert_id"], step.action.value, step.actor, step.assignee, step.note,
    )
    updated = await connection.fetchrow(
        f"""UPDATE alert SET status = $2, assignee = coalesce($3, assignee), status_changed_at = $4
            WHERE alert_id = $1 RETURNING {ALERT_COLUMNS}""",
        alert["alert_id"], status.value, step.assignee, at,
    )
    message = {
        "event_id": event_id, "alert_id": alert["alert_id"], "subject": alert["subject"],
        "action": step.action.value, "status": status.value, "actor": step.actor, "assignee": step.assignee,
        "has_note": bool(step.note), "at": at.isoformat(),
    }
    await _outbox(connection, ALERT_WORKFLOW, alert["subject"], message)
    assert updated is not None
    return updated


async def escalate_alert(connection: asyncpg.Connection, alert: asyncpg.Record, timeout: dt.timedelta) -> None:
    """The alert's `escalated` step and a new alert about it for the supervisors of its audience."""
    # Derived ids: an escalation retried after a crash is the same escalation.
    step_id = str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{alert['alert_id']}|escalation-step"))
    escalation_id = str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{alert['alert_id']}|{ESCALATED_TRIGGER}"))
    await record_step(connection, alert, Step(WorkflowAction.ESCALATED, RISKWATCH_AGENCY), event_id=step_id)
    explanation = f"Not acknowledged within {_duration(timeout)}: {alert['explanation']}"
    await connection.execute(
        """INSERT INTO alert (alert_id, subject, trigger, priority, level_before, level_after, score, explanation,
                              factors, region, caseload, event_time, causing_event_id, policy_version,
                              for_supervisor, escalated_from)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::uuid, $14, true, $15::uuid)
           ON CONFLICT (alert_id) DO NOTHING""",
        escalation_id, alert["subject"], ESCALATED_TRIGGER, alert["priority"], alert["level_before"],
        alert["level_after"], alert["score"], explanation, alert["factors"], alert["region"], alert["caseload"],
        alert["event_time"], alert["causing_event_id"], alert["policy_version"], alert["alert_id"],
    )
    await _outbox(connection, ALERTS, alert["subject"], {
        "alert_id": escalation_id, "subject": alert["subject"], "trigger": ESCALATED_TRIGGER,
        "priority": alert["priority"], "level_before": alert["level_before"], "level_after": alert["level_after"],
        "score": alert["score"], "explanation": explanation, "factors": alert["factors"],
        "audience": {"region": alert["region"], "caseload": alert["caseload"], "supervisor": True},
        "event_time": int(alert["event_time"].timestamp() * 1000), "causing_event_id": alert["causing_event_id"],
        "policy_version": alert["policy_version"], "escalated_from": alert["alert_id"],
    })


async def _outbox(connection: asyncpg.Connection, topic: str, subject: str, message: dict[str, Any]) -> None:
    await connection.execute(
        "INSERT INTO outbox (topic, message_key, message) VALUES ($1, $2, $3)",
        topic, subject, encode_published(topic, message),
    )


def _duration(span: dt.timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
