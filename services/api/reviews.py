"""Reviews: the work queue of due reviews (one open item per subject), completing one, overdue counts.

The scheduler opens the items (projections/casework.py). Completing one records who reviewed
and what was decided: an append-only review_decision row and a message on alert-workflow.v1,
in one transaction with the access-log row. An overdue review is flagged, never escalated.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from services.api.access_log import Access, record_access, stated_purpose
from services.api.auth import PERSONAL_DATA_ROLES, Principal, Role, allow
from services.api.common import ERRORS, NOT_FOUND, Note, QueryState, query_state, scope_of
from streams.topology import ALERT_WORKFLOW

router = APIRouter(tags=["reviews"], responses=ERRORS)

Decision = Literal["level_confirmed", "override_requested", "no_longer_high_risk", "case_opened", "other"]
class ReviewOut(BaseModel):
    review_id: str
    subject: str = Field(description="The subject's pseudonym")
    level: str = Field(description="The subject's level when the review fell due")
    due_at: dt.datetime
    overdue: bool = Field(description="Still open past the policy's grace (reviews.overdue_hours)")
    region: str | None
    caseload: str | None
    opened_at: dt.datetime
    status: Literal["open", "completed"]
    completed_at: dt.datetime | None
    reviewer: str | None
    decision: str | None
    next_due_at: dt.datetime | None = Field(description="Completed: when the next review falls due")


class ReviewList(BaseModel):
    reviews: list[ReviewOut]


class CompleteIn(BaseModel):
    decision: Decision
    note: Note | None = Field(default=None, max_length=4000)


class UnitOverdue(BaseModel):
    region: str | None
    caseload: str | None
    overdue: int


class OverdueCounts(BaseModel):
    units: list[UnitOverdue]


@router.get("/reviews", response_model=ReviewList, summary="The review queue",
            description="Open reviews in the user's scope, by due time, then level (extreme first).")
async def review_queue(
    request: Request,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
    overdue: bool | None = Query(None, description="Only overdue (true) or only not yet overdue (false)"),
    limit: int = Query(200, ge=1, le=1000),
) -> ReviewList:
    rows = await state.ports.reviews.queue(scope_of(principal), overdue, limit)
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request,
                        [r["subject"] for r in rows], stated_purpose(request) or "review queue",
                        dict(request.query_params))
    return ReviewList(reviews=[ReviewOut(**dict(row)) for row in rows])


@router.get("/reviews/overdue-counts", response_model=OverdueCounts, summary="Overdue reviews per unit (supervisors)",
            description="For supervisors: how many open reviews are overdue in each region and caseload in scope.")
async def overdue_counts(
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> OverdueCounts:
    if not (principal.supervisor or principal.role == Role.ADMIN):
        raise HTTPException(403, "role: overdue counts are for supervisors")
    rows = await state.ports.reviews.overdue_counts(scope_of(principal))  # counts name no person: no access-log row
    return OverdueCounts(units=[UnitOverdue(**dict(row)) for row in rows])


@router.post("/reviews/{review_id}/complete", response_model=ReviewOut,
             responses={**NOT_FOUND, 409: {"description": "The review is completed already"}},
             summary="Complete a review: who reviewed, what was decided")
async def complete(
    request: Request,
    review_id: uuid.UUID,
    body: CompleteIn,
    principal: Principal = Depends(allow(*PERSONAL_DATA_ROLES)),
    state: QueryState = Depends(query_state),
) -> ReviewOut:
    async with state.ports.workflow.unit() as unit:
        row = await unit.review_for_update(str(review_id))
        if row is None:
            raise HTTPException(404, "review_id: no such review")
        if not principal.covers(row["region"], row["caseload"]):
            raise HTTPException(403, "scope: this review is for another region or caseload")
        if row["status"] != "open":
            raise HTTPException(409, "status: the review is completed already")
        event_id = str(uuid.uuid4())
        updated = await unit.complete_review(str(review_id), event_id, principal.name, body.decision, body.note)
        at: dt.datetime = updated["completed_at"]
        await unit.publish(ALERT_WORKFLOW, row["subject"], {
            "event_id": event_id, "review_id": str(review_id), "subject": row["subject"],
            "action": "review_completed", "decision": body.decision, "actor": principal.name,
            "has_note": bool(body.note), "at": at.isoformat(),
        })
        await record_access(unit.record_access, principal, Access.ALTERATION, request, [row["subject"]],
                            stated_purpose(request) or "review completed")
    return ReviewOut(**dict(updated))
