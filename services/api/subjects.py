"""One subject: the current assessment and why, the risk timeline, the events behind it; the
analyst's override; and the one way to the clear identity, on a stated purpose.

Contributing events are shown pseudonymously, by agency and type only: their units and regions
could point at a protected victim.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import AfterValidator, BaseModel, Field

from projections.normalize import override_event
from schemas.codec import encode_risk_event
from services.api.access_log import Access, record_access, recorded_access, stated_purpose
from services.api.auth import NATIONAL, PERSONAL_DATA_ROLES, Principal, Role, allow, require_scope
from services.api.common import (
    ERRORS,
    NOT_FOUND,
    PSEUDONYM_MAX,
    PSEUDONYM_PATTERN,
    Filter,
    Invalid,
    LevelName,
    QueryState,
    StatedNote,
    not_an_identity_number,
    query_state,
)
from streams.kafka import risk_event_headers
from streams.topology import SUBJECT_EVENTS

router = APIRouter(tags=["subjects"], responses=ERRORS)

Pseudonym = Annotated[str, Path(min_length=1, max_length=PSEUDONYM_MAX, pattern=PSEUDONYM_PATTERN,
                                description="The subject's pseudonym"), AfterValidator(not_an_identity_number)]


class ContributionOut(BaseModel):
    factor: str
    value: float
    event_ids: list[str]
    agencies: list[str]


class OverrideOut(BaseModel):
    level: str
    reason: str
    analyst: str
    event_id: str


class HistoryPoint(BaseModel):
    event_id: str
    event_time: dt.datetime
    level: str
    score: float
    explanation: str


class ContributingEvent(BaseModel):
    event_id: str
    event_type: str
    agency: str
    event_time: dt.datetime
    factors: list[str] = Field(description="The contributions that rest on this event")


class SubjectView(BaseModel):
    subject: str
    level: str
    computed_level: str
    score: float
    components: dict[str, float]
    contributions: list[ContributionOut]
    override: OverrideOut | None
    explanation: str
    policy_version: str
    assessed_at: dt.datetime = Field(description="The event time the assessment refers to")
    next_review_at: dt.datetime | None
    region: str | None = Field(description="None when every region recorded for the subject could point at a "
                                            "protected victim; then only a national scope sees the subject")
    caseload: str | None
    history: list[HistoryPoint] = Field(description="Level and score after each event, oldest first")
    events: list[ContributingEvent]


class Identity(BaseModel):
    subject: str
    identity_number: str
    kind: str


class OverrideIn(BaseModel):
    level: LevelName
    reason: StatedNote = Field(max_length=1000, description="Why; it travels with the event, so name no one")


class OverrideAccepted(BaseModel):
    event_id: str
    subject: str
    level: LevelName
    status: str = "accepted"


async def _projection(state: QueryState, principal: Principal, subject: str) -> Any:
    row = await state.ports.subjects.projection(subject)
    if row is None:
        raise HTTPException(404, "pseudonym: no such subject")
    require_scope(principal, row["region"], row["caseload"])
    return row


@router.get("/subjects/{pseudonym}", response_model=SubjectView, responses=NOT_FOUND,
            summary="A subject's current risk, its history and the events behind it")
async def subject_view(
    request: Request,
    pseudonym: Pseudonym,
    history_limit: int = Query(200, ge=1, le=5000, description="Latest points of the timeline"),
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> SubjectView:
    row = await _projection(state, principal, pseudonym)
    assessment = row["assessment"]
    factors_of: dict[str, list[str]] = {}
    for contribution in assessment["contributions"]:
        for event_id in contribution["event_ids"]:
            factors_of.setdefault(event_id, []).append(contribution["factor"])
    history = await state.ports.subjects.history(pseudonym, history_limit)
    events = await state.ports.subjects.archived_events(list(factors_of))
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request, [pseudonym],
                        stated_purpose(request) or "subject review")
    return SubjectView(
        subject=pseudonym,
        level=row["level"],
        computed_level=assessment["computed_level"],
        score=row["score"],
        components=assessment["components"],
        contributions=assessment["contributions"],
        override=assessment["override"],
        explanation=assessment["explanation"],
        policy_version=row["policy_version"],
        assessed_at=row["assessed_at"],
        next_review_at=row["next_review_at"],
        region=row["region"],
        caseload=row["caseload"],
        history=[HistoryPoint(**dict(point)) for point in reversed(history)],
        events=[ContributingEvent(event_id=e["event_id"], event_type=e["source_type"], agency=e["agency"],
                                  event_time=e["event_time"], factors=factors_of[e["event_id"]]) for e in events],
    )


@router.get(
    "/subjects/{pseudonym}/identity", response_model=Identity, responses=NOT_FOUND,
    summary="Reveal the clear identity number (logged, with the stated purpose)",
    description="For admins and analysts in scope. State the purpose in the X-Purpose header or the `purpose` "
                "parameter; the disclosure is logged with it before the number is sent.",
)
async def reveal_identity(
    request: Request,
    pseudonym: Pseudonym,
    purpose: Filter | None = Query(None, max_length=500, description="Why the identity is needed"),
    principal: Principal = Depends(allow(Role.INTELLIGENCE_ANALYST, Role.ADMIN)),
    state: QueryState = Depends(query_state),
) -> Identity:
    stated = stated_purpose(request, purpose)
    if stated is None:
        raise Invalid("query", "purpose", "state why the identity is needed (here or in the X-Purpose header)")
    if principal.role != Role.ADMIN:
        await _projection(state, principal, pseudonym)
    row = await state.ports.subjects.identity(pseudonym)
    if row is None:
        raise HTTPException(404, "pseudonym: no clear identity is known for this subject")
    await record_access(state.ports.access_log.record, principal, Access.DISCLOSURE, request, [pseudonym], stated)
    return Identity(subject=pseudonym, identity_number=row["identity_number"], kind=row["kind"])


@router.post(
    "/subjects/{pseudonym}/override", status_code=202, response_model=OverrideAccepted, responses=NOT_FOUND,
    summary="Override the computed level, up or down, with a reason",
    description="Writes a `riskwatch.override` event to the subject's event stream and answers once the broker "
                "has it (acks=all); the projection follows within moments. A harmful event after the override "
                "lifts the level again if the facts call for it.",
)
async def override(
    request: Request,
    pseudonym: Pseudonym,
    body: OverrideIn,
    principal: Principal = Depends(allow(Role.INTELLIGENCE_ANALYST)),
    state: QueryState = Depends(query_state),
) -> OverrideAccepted:
    row = await _projection(state, principal, pseudonym)
    now = int(time.time() * 1000)
    event = override_event(event_id=str(uuid.uuid4()), subject=pseudonym, level=body.level, reason=body.reason,
                           analyst=principal.name, at=now, region=row["region"] or NATIONAL)
    # Logged first and committed only once the broker has the event: no override goes unlogged.
    async with recorded_access(state.ports.access_log, principal, Access.ALTERATION, request, [pseudonym],
                               stated_purpose(request) or "risk override", {"level": body.level}):
        await (await state.producer.send(SUBJECT_EVENTS, value := encode_risk_event(event.to_record()),
                                          key=pseudonym.encode(), headers=risk_event_headers(event, value, "api")))
    return OverrideAccepted(event_id=event.event_id, subject=pseudonym, level=body.level)
