"""Cases: the queue a unit works (one open case per subject), a case with its alerts, its workflow, the live feed.

A case carries its subject's paged alerts (history never opens one). An analyst sees the cases
of the regions in scope, a probation officer those of the caseloads in scope. Every answer
that shows cases writes one access-log row first.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field

from projections.alerts import Trigger
from schemas.rules import REGIONS
from services.api.access_log import Access, record_access, stated_purpose
from services.workflow.alerts import Step, WorkflowAction, WorkflowRefused
from services.api.auth import PERSONAL_DATA_ROLES, Principal, Role, allow
from services.workflow.cases import CaseStatus, record_case_step
from services.workflow.ports import WorkflowUnit
from services.api.alerts import AlertOut, AcknowledgeIn, AssignIn, CloseIn, alert_out
from services.api.alerts import WorkflowStepOut, live_cursor, live_feed
from services.api.common import ERRORS, NOT_FOUND, Note, QueryState, query_state, scope_of
from services.api.ports import CaseFilter, Row

router = APIRouter(tags=["cases"], responses=ERRORS)

BULK_MAX = 500
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "The step is not possible in the case's status"}}


class CaseOut(BaseModel):
    case_id: str
    subject: str = Field(description="The subject's pseudonym")
    status: CaseStatus
    priority: int = Field(description="1 urgent, 2 high, 3 routine: the most urgent of its alerts")
    level: str = Field(description="The latest alert's level after")
    region: str | None = Field(description="None when withheld (a protected victim)")
    caseload: str | None
    triggers: list[str] = Field(description="The distinct triggers of its alerts")
    alert_count: int
    explanation: str = Field(description="The latest alert's")
    assignee: str | None
    opened_at: dt.datetime
    updated_at: dt.datetime
    seq: int = Field(description="Increases on every change: the live feed's event id")
    escalated: bool


class CaseList(BaseModel):
    cases: list[CaseOut]


class CaseDetail(CaseOut):
    alerts: list[AlertOut]
    workflow: list[WorkflowStepOut]


class BulkAcknowledgeIn(BaseModel):
    case_ids: list[uuid.UUID] = Field(min_length=1, max_length=BULK_MAX)
    note: Note | None = Field(default=None, max_length=4000)


def case_out(row: Any) -> CaseOut:
    return CaseOut(**dict(row))


@router.get("/cases", response_model=CaseList, summary="The case queue",
            description="Cases in the user's scope (default: open and acknowledged), most urgent first "
                        "(`sort=priority`) or most recently changed first (`sort=updated`).")
async def case_queue(
    request: Request,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
    status: CaseStatus | None = None,
    region: str | None = Query(None, pattern=f"^({'|'.join(REGIONS)})$"),
    trigger: str | None = Query(None, pattern=f"^({'|'.join(t.value for t in Trigger)})$"),
    priority: int | None = Query(None, ge=1, le=3),
    sort: Literal["priority", "updated"] = "priority",
    limit: int = Query(100, ge=1, le=500),
) -> CaseList:
    if region is not None and principal.role == Role.INTELLIGENCE_ANALYST and not principal.covers(region, None):
        raise HTTPException(403, "region: outside your scope")
    filters = CaseFilter(status=status.value if status else None, region=region, trigger=trigger,
                         priority=priority, sort=sort)
    rows = await state.ports.cases.queue(scope_of(principal), filters, limit)
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request,
                        [r["subject"] for r in rows], stated_purpose(request) or "case triage",
                        dict(request.query_params))
    return CaseList(cases=[case_out(row) for row in rows])


@router.get(
    "/cases/live", response_class=EventSourceResponse, summary="Case changes as they happen (Server-Sent Events)",
    description=(
        "Each change of a case in the user's scope (opened, a new alert, a step, escalation) is a `case` event: "
        "the case as it is now, with its `seq` as the event id. Last-Event-ID (or `after`) resumes; without "
        "one the feed starts with the next change."
    ),
)
async def live_cases(
    request: Request,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
    cursor: int | None = Depends(live_cursor),
) -> AsyncIterable[ServerSentEvent]:
    async for message in live_feed(request, principal, state, cursor, last_seq=state.ports.cases.last_seq,
                                   after=state.ports.cases.changed_after, event="case", out=case_out,
                                   purpose=stated_purpose(request) or "live case watch"):
        yield message


@router.post("/cases/acknowledge", response_model=CaseList, responses={**NOT_FOUND, **CONFLICT},
             summary="Acknowledge several cases with one note",
             description="All or nothing: one case not found, out of scope or not open refuses the whole request.")
async def acknowledge_cases(
    request: Request,
    body: BulkAcknowledgeIn,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> CaseList:
    step = Step(WorkflowAction.ACKNOWLEDGED, principal.name, note=body.note)
    wanted = sorted({str(case_id) for case_id in body.case_ids})
    async with state.ports.workflow.unit() as unit:
        rows = await unit.cases_for_update(wanted)
        updated = []
        for case_id in wanted:
            row = _check(principal, rows.get(case_id), case_id)
            updated.append(await _apply(unit, row, step, case_id))
        await record_access(unit.record_access, principal, Access.ALTERATION, request,
                            sorted({r["subject"] for r in updated}), stated_purpose(request) or "case acknowledged")
    return CaseList(cases=[case_out(row) for row in updated])


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=NOT_FOUND,
            summary="One case, its alerts and what was done with it")
async def case_detail(
    request: Request,
    case_id: uuid.UUID,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> CaseDetail:
    row = _check(principal, await state.ports.cases.case(str(case_id)), str(case_id))
    alerts = await state.ports.cases.alerts(str(case_id))
    steps = await state.ports.cases.steps(str(case_id))
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request, [row["subject"]],
                        stated_purpose(request) or "case triage")
    return CaseDetail(**case_out(row).model_dump(), alerts=[alert_out(alert) for alert in alerts],
                      workflow=[WorkflowStepOut(**dict(step)) for step in steps])


@router.post("/cases/{case_id}/acknowledge", response_model=CaseOut, responses={**NOT_FOUND, **CONFLICT},
             summary="Acknowledge a case and its alerts: someone is on it")
async def acknowledge(
    request: Request,
    case_id: uuid.UUID,
    body: AcknowledgeIn | None = None,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> CaseOut:
    step = Step(WorkflowAction.ACKNOWLEDGED, principal.name, note=body.note if body else None)
    return await _step(request, state, principal, case_id, step)


@router.post("/cases/{case_id}/assign", response_model=CaseOut, responses={**NOT_FOUND, **CONFLICT},
             summary="Assign a case (and its alerts) to someone")
async def assign(
    request: Request,
    case_id: uuid.UUID,
    body: AssignIn,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> CaseOut:
    step = Step(WorkflowAction.ASSIGNED, principal.name, assignee=body.assignee, note=body.note)
    return await _step(request, state, principal, case_id, step)


@router.post("/cases/{case_id}/close", response_model=CaseOut, responses={**NOT_FOUND, **CONFLICT},
             summary="Close a case and its alerts, saying what was done")
async def close(
    request: Request,
    case_id: uuid.UUID,
    body: CloseIn,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> CaseOut:
    return await _step(request, state, principal, case_id, Step(WorkflowAction.CLOSED, principal.name, note=body.note))


async def _step(request: Request, state: QueryState, principal: Principal, case_id: uuid.UUID, step: Step) -> CaseOut:
    """The step on the case and its alerts, the outbox messages and the access-log row: one transaction."""
    async with state.ports.workflow.unit() as unit:
        row = _check(principal, await unit.case_for_update(str(case_id)), str(case_id))
        updated = await _apply(unit, row, step, str(case_id))
        await record_access(unit.record_access, principal, Access.ALTERATION, request, [row["subject"]],
                            stated_purpose(request) or f"case {step.action.value}")
    return case_out(updated)


async def _apply(unit: WorkflowUnit, row: Row, step: Step, case_id: str) -> Row:
    try:
        return await record_case_step(unit, row, step)
    except WorkflowRefused as refused:
        raise HTTPException(409, f"case {case_id}: {refused.reason}") from None


def _check(principal: Principal, row: Row | None, case_id: str) -> Row:
    if row is None:
        raise HTTPException(404, f"case_id: no such case {case_id}")
    if not principal.covers(row["region"], row["caseload"]):
        raise HTTPException(403, f"scope: case {case_id} is for another region or caseload")
    return row
