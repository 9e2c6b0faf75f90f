"""The alert workflow: acknowledge, assign, close, and escalation of alerts nobody acknowledged.

Each step is an append-only workflow row, written in one unit of work (services/workflow/ports.py)
with the alert's new status and an outbox message for alert-workflow.v1 (the stream workers'
relay publishes it). Notes are free text that may name people: they stay in PostgreSQL, the topic only says
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

from projections.events import RISKWATCH_AGENCY, RISKWATCH_NAMESPACE
from services.workflow.ports import NewAlert, Row, WorkflowUnit
from streams.topology import ALERT_WORKFLOW, ALERTS

ESCALATED_TRIGGER = "escalated"
ESCALATIONS_PER_ROUND = 500


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


async def record_step(unit: WorkflowUnit, alert: Row, step: Step, event_id: str | None = None) -> Row:
    """Apply one step to an alert the unit holds (loaded for update); returns the alert as it is now."""
    status = next_status(Status(alert["status"]), step.action)
    event_id = event_id or str(uuid.uuid4())
    updated = await unit.record_alert_step(alert["alert_id"], event_id, step.action.value, step.actor,
                                           step.assignee, step.note, status.value)
    at: dt.datetime = updated["status_changed_at"]
    await unit.publish(ALERT_WORKFLOW, alert["subject"], {
        "event_id": event_id, "alert_id": alert["alert_id"], "subject": alert["subject"],
        "action": step.action.value, "status": status.value, "actor": step.actor, "assignee": step.assignee,
        "has_note": bool(step.note), "at": at.isoformat(),
    })
    return updated


async def escalate_alert(unit: WorkflowUnit, alert: Row, timeout: dt.timedelta) -> None:
    """The alert's `escalated` step and a new alert about it for the supervisors of its audience."""
    # Derived ids: an escalation retried after a crash is the same escalation.
    step_id = str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{alert['alert_id']}|escalation-step"))
    escalation_id = str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{alert['alert_id']}|{ESCALATED_TRIGGER}"))
    await record_step(unit, alert, Step(WorkflowAction.ESCALATED, RISKWATCH_AGENCY), event_id=step_id)
    explanation = f"Not acknowledged within {_duration(timeout)}: {alert['explanation']}"
    event_time = round(alert["event_time"].timestamp() * 1000)  # epoch ms, exactly as stored
    await unit.add_alert(NewAlert(
        alert_id=escalation_id, subject=alert["subject"], trigger=ESCALATED_TRIGGER, priority=alert["priority"],
        level_before=alert["level_before"], level_after=alert["level_after"], score=alert["score"],
        explanation=explanation, factors=alert["factors"], region=alert["region"], caseload=alert["caseload"],
        event_time=event_time, causing_event_id=alert["causing_event_id"],
        policy_version=alert["policy_version"], for_supervisor=True, escalated_from=alert["alert_id"],
    ))
    await unit.publish(ALERTS, alert["subject"], {
        "alert_id": escalation_id, "subject": alert["subject"], "trigger": ESCALATED_TRIGGER,
        "priority": alert["priority"], "level_before": alert["level_before"], "level_after": alert["level_after"],
        "score": alert["score"], "explanation": explanation, "factors": alert["factors"],
        "audience": {"region": alert["region"], "caseload": alert["caseload"], "supervisor": True},
        "event_time": event_time, "causing_event_id": alert["causing_event_id"],
        "policy_version": alert["policy_version"], "escalated_from": alert["alert_id"],
    })


def _duration(span: dt.timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
