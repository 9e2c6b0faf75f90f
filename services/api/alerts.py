"""Alerts: the queue, one alert with its workflow, acknowledge / assign / close, and the live feed (SSE).

An analyst sees the alerts of the regions in scope, a probation officer those of the caseloads
in scope; escalated alerts go to supervisors only. Every answer that shows alerts writes one
access-log row first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field

from projections.alerts import Trigger
from schemas.rules import REGIONS
from services.api.access_log import Access, AccessNotLogged, record_access, stated_purpose
from services.workflow.alerts import (
    ESCALATED_TRIGGER,
    Status,
    Step,
    WorkflowAction,
    WorkflowRefused,
    record_step,
)
from services.api.auth import PERSONAL_DATA_ROLES, Principal, Role, allow
from services.api.common import (
    ERRORS,
    NOT_FOUND,
    PSEUDONYM_MAX,
    PSEUDONYM_PATTERN,
    Invalid,
    LevelName,
    Note,
    QueryState,
    Stated,
    StatedNote,
    SubjectFilter,
    query_state,
    scope_of,
    utc,
)
from services.api.ports import AlertFilter, Row, Scope

router = APIRouter(tags=["alerts"], responses=ERRORS)

LIVE_BATCH = 100
LIVE_RETRY_MS = 2000
TRIGGERS = (*(trigger.value for trigger in Trigger), ESCALATED_TRIGGER)


class AlertOut(BaseModel):
    alert_id: str
    seq: int = Field(description="Position in commit order: the live feed's event id")
    subject: str = Field(description="The subject's pseudonym")
    trigger: str
    priority: int = Field(description="1 urgent, 2 high, 3 routine")
    status: Status
    level_before: str
    level_after: str
    score: float
    explanation: str
    factors: list[dict[str, Any]]
    region: str | None
    caseload: str | None
    event_time: dt.datetime = Field(description="When the causing event happened")
    raised_at: dt.datetime
    causing_event_id: str
    policy_version: str
    assignee: str | None
    for_supervisor: bool
    escalated_from: str | None
    status_changed_at: dt.datetime | None
    paged: bool = Field(description="False: history (its event was older than the paging window when processed, "
                                    "or came in a backfill); it is in no live queue and never escalates")
    case_id: str | None = Field(description="The case it is attached to (paged alerts only)")


class AlertPage(BaseModel):
    items: list[AlertOut]
    total: int
    limit: int
    offset: int


class WorkflowStepOut(BaseModel):
    event_id: str
    action: WorkflowAction
    actor: str
    assignee: str | None
    note: str | None
    at: dt.datetime


class AlertDetail(AlertOut):
    workflow: list[WorkflowStepOut]


class AcknowledgeIn(BaseModel):
    note: Note | None = Field(default=None, max_length=4000)


class AssignIn(BaseModel):
    assignee: Stated = Field(max_length=200, description="Who is to act on it")
    note: Note | None = Field(default=None, max_length=4000)


class CloseIn(BaseModel):
    note: StatedNote = Field(max_length=4000, description="What was done, or why nothing is")


def alert_out(row: Any) -> AlertOut:
    values = dict(row)
    values["raised_at"] = values.pop("created_at")
    return AlertOut(**values)


def may_see(principal: Principal, alert: Any) -> bool:
    supervised = not alert["for_supervisor"] or principal.supervisor or principal.role == Role.ADMIN
    return supervised and principal.covers(alert["region"], alert["caseload"])


@router.get("/alerts", response_model=AlertPage, summary="The alert queue",
            description="Paged alerts in the user's scope, most urgent first, then newest first. Units work "
                        "cases (/v1/cases), which group a subject's alerts; this list is for integrations.")
async def alert_queue(
    request: Request,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
    region: str | None = Query(None, pattern=f"^({'|'.join(REGIONS)})$"),
    level: LevelName | None = Query(None, description="Level after the alert"),
    trigger: str | None = Query(None, pattern=f"^({'|'.join(TRIGGERS)})$"),
    status: Status | None = None,
    subject: SubjectFilter | None = Query(None, max_length=PSEUDONYM_MAX, pattern=PSEUDONYM_PATTERN),
    since: dt.datetime | None = Query(None, description="Raised at or after"),
    until: dt.datetime | None = Query(None, description="Raised before"),
    history: bool = Query(False, description="List the alerts recorded as history instead of the paged ones"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> AlertPage:
    if region is not None and principal.role == Role.INTELLIGENCE_ANALYST and not principal.covers(region, None):
        raise HTTPException(403, "region: outside your scope")
    filters = AlertFilter(history=history, region=region, level=level, trigger=trigger,
                          status=status.value if status else None, subject=subject,
                          since=utc(since, "since"), until=utc(until, "until"))
    rows, total = await state.ports.alerts.queue(scope_of(principal), filters, limit, offset)
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request,
                        [r["subject"] for r in rows], stated_purpose(request) or "alert triage",
                        dict(request.query_params))
    return AlertPage(items=[alert_out(row) for row in rows], total=total, limit=limit, offset=offset)


def live_cursor(
    last_event_id: str | None = Header(None, alias="Last-Event-ID", description="Resume after this alert"),
    after: int | None = Query(None, ge=0, le=2**62, description="Resume after this alert (for clients "
                              "that cannot set Last-Event-ID)"),
) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return after
    try:
        cursor = int(last_event_id.strip())
    except ValueError:
        raise Invalid("header", "Last-Event-ID", "not an alert number from this feed") from None
    if not 0 <= cursor <= 2**62:
        raise Invalid("header", "Last-Event-ID", "not an alert number from this feed")
    return cursor


@router.get(
    "/alerts/live", response_class=EventSourceResponse, summary="New alerts as they are raised (Server-Sent Events)",
    description=(
        "Each alert in the user's scope is an `alert` event whose id is the alert's `seq`. A client that "
        "reconnects with Last-Event-ID (browsers do) receives every alert it missed, in order. Without one "
        "the feed starts with the next alert raised."
    ),
)
async def live_alerts(
    request: Request,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
    cursor: int | None = Depends(live_cursor),
) -> AsyncIterable[ServerSentEvent]:
    async for message in live_feed(request, principal, state, cursor, last_seq=state.ports.alerts.last_seq,
                                   after=state.ports.alerts.paged_after, event="alert", out=alert_out,
                                   purpose=stated_purpose(request) or "live alert watch"):
        yield message


async def live_feed(request: Request, principal: Principal, state: QueryState, cursor: int | None, *,
                    last_seq: Callable[[], Awaitable[int]], after: Callable[[int, Scope, int], Awaitable[list[Row]]],
                    event: str, out: Callable[[Any], BaseModel], purpose: str) -> AsyncIterator[ServerSentEvent]:
    """The rows `after` a seq in the user's scope, in `seq` order, as `event` events whose id is the seq;
    each batch shown is in the access log first. Without a cursor, from the row after `last_seq`."""
    if cursor is None:
        cursor = await last_seq()
    yield ServerSentEvent(comment=f"{event}s after {cursor}", retry=LIVE_RETRY_MS)
    scope = scope_of(principal)
    while not await request.is_disconnected():
        rows = await after(cursor, scope, LIVE_BATCH)
        if not rows:
            await asyncio.sleep(state.live_poll_seconds)
            continue
        try:
            await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request,
                                [r["subject"] for r in rows], purpose, {"after": cursor})
        except AccessNotLogged as refused:
            yield ServerSentEvent(event="error", data={"detail": refused.detail})
            return
        for row in rows:
            yield ServerSentEvent(id=str(row["seq"]), event=event, data=out(row))
        cursor = rows[-1]["seq"]


@router.get("/alerts/{alert_id}", response_model=AlertDetail, responses=NOT_FOUND,
            summary="One alert and what was done with it")
async def alert_detail(
    request: Request,
    alert_id: uuid.UUID,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> AlertDetail:
    row = await state.ports.alerts.alert(str(alert_id))
    row = _check(principal, row)
    steps = await state.ports.alerts.steps(str(alert_id))
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request, [row["subject"]],
                        stated_purpose(request) or "alert triage")
    return AlertDetail(**alert_out(row).model_dump(), workflow=[WorkflowStepOut(**dict(step)) for step in steps])


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut,
             responses={**NOT_FOUND, 409: {"description": "The alert is acknowledged or closed already"}},
             summary="Acknowledge an alert: someone is on it")
async def acknowledge(
    request: Request,
    alert_id: uuid.UUID,
    body: AcknowledgeIn | None = None,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> AlertOut:
    step = Step(WorkflowAction.ACKNOWLEDGED, principal.name, note=body.note if body else None)
    return await _step(request, state, principal, alert_id, step)


@router.post("/alerts/{alert_id}/assign", response_model=AlertOut,
             responses={**NOT_FOUND, 409: {"description": "The alert is closed"}},
             summary="Assign an alert to someone")
async def assign(
    request: Request,
    alert_id: uuid.UUID,
    body: AssignIn,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> AlertOut:
    step = Step(WorkflowAction.ASSIGNED, principal.name, assignee=body.assignee, note=body.note)
    return await _step(request, state, principal, alert_id, step)


@router.post("/alerts/{alert_id}/close", response_model=AlertOut,
             responses={**NOT_FOUND, 409: {"description": "The alert is closed already"}},
             summary="Close an alert, saying what was done")
async def close(
    request: Request,
    alert_id: uuid.UUID,
    body: CloseIn,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> AlertOut:
    return await _step(request, state, principal, alert_id, Step(WorkflowAction.CLOSED, principal.name, note=body.note))


async def _step(request: Request, state: QueryState, principal: Principal, alert_id: uuid.UUID, step: Step) -> AlertOut:
    """The step, its outbox message and the access-log row: all in one transaction, or none."""
    async with state.ports.workflow.unit() as unit:
        row = await unit.alert_for_update(str(alert_id))
        row = _check(principal, row)
        try:
            updated = await record_step(unit, row, step)
        except WorkflowRefused as refused:
            raise HTTPException(409, refused.reason) from None
        await record_access(unit.record_access, principal, Access.ALTERATION, request, [row["subject"]],
                            stated_purpose(request) or f"alert {step.action.value}")
    return alert_out(updated)


def _check(principal: Principal, row: Row | None) -> Row:
    if row is None:
        raise HTTPException(404, "alert_id: no such alert")
    if not may_see(principal, row):
        raise HTTPException(403, "scope: this alert is for another region, caseload or the supervisors")
    return row
