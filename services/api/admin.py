"""Who am I, the access log (admins), and the state of the streams (operators): no personal data
except in the access log itself, whose consultation is logged like any other."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from services.api.access_log import Access, record_access, stated_purpose
from services.api.auth import Principal, Role, allow, current_principal
from services.api.common import (
    ERRORS,
    PSEUDONYM_MAX,
    PSEUDONYM_PATTERN,
    Filter,
    QueryState,
    SubjectFilter,
    query_state,
    utc,
)
from services.api.ports import AccessQuery
from services.runtime.settings import Settings
from streams.kafka import group_lag
from streams.topology import STAGE_TOPICS, stage_group

router = APIRouter(responses=ERRORS)


class Me(BaseModel):
    name: str
    role: Role
    scope: list[str]
    supervisor: bool


class AccessRecord(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    role: str
    action: Access
    endpoint: str
    subjects: list[str]
    purpose: str
    query: dict[str, Any]


class AccessLogPage(BaseModel):
    items: list[AccessRecord]
    total: int
    limit: int
    offset: int


class AlertLatency(BaseModel):
    alerts: int = Field(description="Alerts committed in the last hour whose causing event came through the gateway")
    p50_seconds: float | None = Field(description="From the gateway's acceptance of the causing event to the alert's "
                                                  "commit, median; null without alerts")
    p95_seconds: float | None
    max_seconds: float | None


class StreamStatus(BaseModel):
    consumer_lag: dict[str, dict[str, int]] = Field(description=(
        "Records not yet processed, by consumer group and topic (end offset minus committed offset)"))
    alert_latency_last_hour: AlertLatency
    outbox_backlog: int = Field(description="Alerts, risk changes and workflow steps not yet published")
    dead_letters: int = Field(description="Refused input kept since the start")
    dead_letters_last_hour: int
    unacknowledged_alerts: int
    escalated_alerts: int


@router.get("/me", response_model=Me, tags=["users"], summary="Who the token belongs to")
async def me(principal: Principal = Depends(current_principal)) -> Me:
    return Me(name=principal.name, role=principal.role, scope=sorted(principal.scope), supervisor=principal.supervisor)


@router.get("/access-log", response_model=AccessLogPage, tags=["access log"],
            summary="The access log, newest first (admins)")
async def access_log(
    request: Request,
    actor: Filter | None = Query(None, max_length=200),
    subject: SubjectFilter | None = Query(None, max_length=PSEUDONYM_MAX, pattern=PSEUDONYM_PATTERN,
                                description="Accesses to this subject"),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(allow(Role.ADMIN)),
    state: QueryState = Depends(query_state),
) -> AccessLogPage:
    rows, total = await state.ports.access_log.read(
        AccessQuery(actor=actor, subject=subject, since=utc(since, "since"), until=utc(until, "until")), limit, offset)
    subjects = {pseudonym for row in rows for pseudonym in row["subjects"]}
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request, subjects,
                        stated_purpose(request) or "access log audit", dict(request.query_params))
    return AccessLogPage(items=[AccessRecord(**dict(row)) for row in rows], total=total, limit=limit, offset=offset)


@router.get("/operations/status", response_model=StreamStatus, tags=["operations"],
            summary="Lag, alert latency, backlogs and refusals (operators)",
            dependencies=[Depends(allow(Role.OPERATOR, Role.ADMIN))])
async def stream_status(request: Request, state: QueryState = Depends(query_state)) -> StreamStatus:
    settings: Settings = request.app.state.settings
    lag = await group_lag(settings, {stage_group(settings.consumer_group, stage): topics
                                     for stage, topics in STAGE_TOPICS.items()})
    latency = await state.ports.status.alert_latency()
    row = await state.ports.status.backlogs()
    return StreamStatus(consumer_lag=lag, alert_latency_last_hour=AlertLatency(**dict(latency)), **dict(row))
