"""Watch lists: releases and furloughs for probation officers, the ranked list per region for analysts.

Both are derived from the read models: the release watch from the event archive (scheduled
and actual releases and furloughs) joined with each subject's current projection, the priority
list from the projections ranked by score with the components the score is made of.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from schemas.codec import decode_risk_event
from schemas.rules import REGIONS
from services.api.access_log import Access, record_access, stated_purpose
from services.api.auth import NATIONAL, Principal, Role, allow
from services.api.common import ERRORS, Filter, Invalid, QueryState, query_state

router = APIRouter(tags=["watch lists"], responses=ERRORS)

SWEDEN = ZoneInfo("Europe/Stockholm")  # agency dates are Swedish calendar dates
SCHEDULE_LOOKBACK = dt.timedelta(days=730)  # a release is scheduled at most this long before it happens
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(2200, 12, 31)

RELEASE_SCHEDULED = "prison_probation.release_scheduled"
RELEASED = "prison_probation.released"
FURLOUGH_GRANTED = "prison_probation.furlough_granted"
FURLOUGH_STARTED = "prison_probation.furlough_started"
Kind = Literal["release", "furlough"]
# planned event type -> (what it plans, the attribute with the date, the event type that carries it out)
PLANS: dict[str, tuple[Kind, str, str]] = {
    RELEASE_SCHEDULED: ("release", "release_date", RELEASED),
    FURLOUGH_GRANTED: ("furlough", "start_date", FURLOUGH_STARTED),
}
DONE: dict[str, Kind] = {RELEASED: "release", FURLOUGH_STARTED: "furlough"}


class ReleaseItem(BaseModel):
    subject: str
    kind: Kind
    date: dt.date
    release_kind: str | None = Field(description="conditional or end_of_sentence, for releases")
    event_id: str
    event_type: str
    level: str = Field(description="The subject's current level")
    score: float
    caseload: str | None


class ReleaseWatch(BaseModel):
    as_of: dt.date
    upcoming: list[ReleaseItem] = Field(description="Planned within the coming days, soonest first")
    recent: list[ReleaseItem] = Field(description="Happened within the past days, latest first")


class PriorityItem(BaseModel):
    rank: int
    subject: str
    level: str
    score: float
    recency: float
    frequency: float
    gravity: float
    victims: float
    escalation: float
    markers: float
    overridden: bool
    caseload: str | None
    assessed_at: dt.datetime


class PriorityList(BaseModel):
    region: str
    items: list[PriorityItem]
    total: int
    limit: int
    offset: int


@router.get("/releases", response_model=ReleaseWatch, summary="Release watch: releases and furloughs in the caseload",
            description="Upcoming (scheduled releases, granted furloughs) and recent (releases, furloughs started) "
                        "for the subjects in the user's caseload, each with the subject's current level.")
async def release_watch(
    request: Request,
    as_of: dt.date | None = Query(None, description="The day to look from (default: today in Sweden)"),
    ahead_days: int = Query(30, ge=0, le=365),
    back_days: int = Query(30, ge=0, le=365),
    caseload: Filter | None = Query(None, max_length=200, description="One caseload unit of the user's scope"),
    principal: Principal = Depends(allow(Role.PROBATION_OFFICER, Role.ADMIN)),
    state: QueryState = Depends(query_state),
) -> ReleaseWatch:
    if caseload is not None and not principal.covers(None, caseload):
        raise HTTPException(403, "caseload: outside your scope")
    day = as_of or dt.datetime.now(SWEDEN).date()
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Invalid("query", "as_of", f"a day from {FIRST_DAY} to {LAST_DAY}")
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), SWEDEN)
    window_start = dt.datetime.combine(day - dt.timedelta(days=back_days), dt.time(), SWEDEN)
    horizon = day + dt.timedelta(days=ahead_days)
    caseloads = None
    if caseload is not None or not principal.national:
        caseloads = [caseload] if caseload is not None else sorted(principal.scope)
    rows = await state.ports.watch.watch_events([*PLANS, *DONE], min(day_end - SCHEDULE_LOOKBACK, window_start),
                                                day_end, caseloads)
    latest_plan: dict[tuple[str, str], tuple[Any, dict[str, str]]] = {}
    carried_out: dict[tuple[str, str], dt.datetime] = {}
    recent: list[ReleaseItem] = []
    for row in rows:
        attributes = decode_risk_event(bytes(row["body"]))["attributes"]
        if row["source_type"] in PLANS:
            latest_plan[(row["subject"], row["source_type"])] = (row, attributes)
        else:
            carried_out[(row["subject"], row["source_type"])] = row["event_time"]
            if row["event_time"] >= window_start:
                recent.append(_item(row, DONE[row["source_type"]], row["event_time"].astimezone(SWEDEN).date(),
                                    attributes))
    upcoming: list[ReleaseItem] = []
    for (subject, plan_type), (row, attributes) in latest_plan.items():
        kind, date_attribute, done_type = PLANS[plan_type]
        planned = dt.date.fromisoformat(attributes[date_attribute])
        done = carried_out.get((subject, done_type))
        if day <= planned <= horizon and (done is None or done < row["event_time"]):
            upcoming.append(_item(row, kind, planned, attributes))
    upcoming.sort(key=lambda item: (item.date, item.subject))
    recent.sort(key=lambda item: (item.date, item.subject), reverse=True)
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request,
                        [item.subject for item in (*upcoming, *recent)], stated_purpose(request) or "release watch",
                        dict(request.query_params))
    return ReleaseWatch(as_of=day, upcoming=upcoming, recent=recent)


def _item(row: Any, kind: Kind, date: dt.date, attributes: dict[str, str]) -> ReleaseItem:
    return ReleaseItem(subject=row["subject"], kind=kind, date=date, release_kind=attributes.get("release_kind"),
                       event_id=row["event_id"], event_type=row["source_type"], level=row["level"],
                       score=row["score"], caseload=row["caseload"])


@router.get("/priority", response_model=PriorityList, summary="Priority list of a region",
            description="Subjects of the region ranked by score (MATAC-style), with the recency, frequency, gravity "
                        "and victims components the score is made of.")
async def priority_list(
    request: Request,
    region: str = Query(pattern=f"^({'|'.join((*REGIONS, NATIONAL))})$",
                        description=f"A police region, or {NATIONAL} (national scope only): the subjects no region "
                                    "may be named for, because every one recorded could point at a protected victim"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(allow(Role.INTELLIGENCE_ANALYST, Role.ADMIN)),
    state: QueryState = Depends(query_state),
) -> PriorityList:
    if not principal.covers(region, None):
        raise HTTPException(403, "region: outside your scope")
    # covers() lets only a national scope ask for NATIONAL: the subjects without a region
    rows, total = await state.ports.watch.priority(None if region == NATIONAL else region, limit, offset)
    await record_access(state.ports.access_log.record, principal, Access.CONSULTATION, request,
                        [r["subject"] for r in rows], stated_purpose(request) or "priority list",
                        dict(request.query_params))
    items = [
        PriorityItem(rank=offset + index, subject=row["subject"], level=row["level"], score=row["score"],
                     overridden=row["overridden"], caseload=row["caseload"], assessed_at=row["assessed_at"],
                     **{name: row["components"][name] for name in
                        ("recency", "frequency", "gravity", "victims", "escalation", "markers")})
        for index, row in enumerate(rows, start=1)
    ]
    return PriorityList(region=region, items=items, total=total, limit=limit, offset=offset)
