"""The case workflow: acknowledge, assign and close a case, and with it its alerts; escalation per case.

A case is what a unit works on: one per subject while it is not closed, with the subject's
paged alerts attached (projections/casework.py). Each step is an append-only case_workflow
row, the same step on each of the case's alerts that it still fits, and an outbox message for
alert-workflow.v1, all in the caller's unit of work (services/workflow/ports.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from enum import StrEnum

from projections.events import RISKWATCH_AGENCY, RISKWATCH_NAMESPACE
from services.workflow.alerts import (
    ESCALATED_TRIGGER,
    ESCALATIONS_PER_ROUND,
    Step,
    WorkflowAction,
    WorkflowRefused,
    escalate_alert,
    next_status,
    record_step,
    Status as AlertStatus,
)
from services.workflow.ports import Row, WorkflowStore, WorkflowUnit
from streams.topology import ALERT_WORKFLOW

log = logging.getLogger(__name__)


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


async def record_case_step(unit: WorkflowUnit, case: Row, step: Step) -> Row:
    """Apply one step to a case the unit holds (loaded for update) and to its alerts."""
    status = next_case_status(CaseStatus(case["status"]), step.action)
    event_id = str(uuid.uuid4())
    updated = await unit.record_case_step(case["case_id"], event_id, step.action.value, step.actor,
                                          step.assignee, step.note, status.value)
    at: dt.datetime = updated["updated_at"]
    for alert in await unit.open_case_alerts_for_update(case["case_id"]):
        try:
            next_status(AlertStatus(alert["status"]), step.action)
        except WorkflowRefused:
            continue  # e.g. an alert acknowledged on its own before: the case step still stands
        await record_step(unit, alert, step)
    await unit.publish(ALERT_WORKFLOW, case["subject"], {
        "event_id": event_id, "case_id": case["case_id"], "subject": case["subject"],
        "action": step.action.value, "status": status.value, "actor": step.actor, "assignee": step.assignee,
        "has_note": bool(step.note), "at": at.isoformat(),
    })
    return updated


async def escalate_cases(unit: WorkflowUnit, timeout: dt.timedelta, limit: int) -> int:
    """Escalate each case left open (nobody acknowledged it) for longer than `timeout`, once.

    The time counts from its opening, or from its reopening by a more urgent alert.

    One escalation per case, however many alerts it holds: its most urgent alert goes to the
    supervisors as an `escalated` alert, and the case is flagged.
    """
    cases = await unit.overdue_cases(timeout, limit)
    for case in cases:
        alert = await unit.most_urgent_open_alert(case["case_id"])
        if alert is not None:
            await escalate_alert(unit, alert, timeout)
        await unit.mark_case_escalated(
            case["case_id"], str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{case['case_id']}|escalation-step")),
            RISKWATCH_AGENCY,
        )
    return len(cases)


async def escalate_overdue(store: WorkflowStore, timeout: dt.timedelta) -> int:
    """Escalate the cases open for longer than `timeout`; 0 when another instance escalates.

    Escalation is per case (services/workflow/cases.py). Alerts that are history never escalate;
    paged alerts stored before cases existed (no case) still escalate one by one.
    """
    async with store.unit() as unit:
        if not await unit.claim_escalation():
            return 0
        escalated = await escalate_cases(unit, timeout, ESCALATIONS_PER_ROUND)
        overdue = await unit.overdue_alerts(timeout, ESCALATIONS_PER_ROUND, except_trigger=ESCALATED_TRIGGER)
        for alert in overdue:
            await escalate_alert(unit, alert, timeout)
        return escalated + len(overdue)


async def run_escalation(store: WorkflowStore, timeout: dt.timedelta, interval: float) -> None:
    """Until cancelled: escalate what is overdue, every `interval` seconds."""
    while True:
        try:
            escalated = await escalate_overdue(store, timeout)
            if escalated:
                log.info("escalated %d unacknowledged alerts", escalated)
        except Exception:  # a database hiccup must not end escalation for the life of the process
            log.exception("escalation failed; retrying")
        await asyncio.sleep(interval)
