"""What the query endpoints share: their state, error answers, parameter checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import HTTPException, Request
from pydantic import BaseModel, StringConstraints

from projections.levels import Level
from services.auth import Authenticator

LevelName = Literal["low", "moderate", "high", "extreme"]
LEVEL_NAMES: tuple[str, ...] = tuple(level.label for level in Level)
PSEUDONYM_MAX = 128  # keyed pseudonyms are far shorter; longer input is not one


@dataclass(frozen=True, slots=True)
class QueryState:
    pool: asyncpg.Pool
    producer: AIOKafkaProducer  # acks=all, shared with the ingest gateway
    authenticator: Authenticator
    live_poll_seconds: float


def query_state(request: Request) -> QueryState:
    state: QueryState = request.app.state.query
    return state


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No bearer token, or not a valid one"},
    403: {"model": Problem, "description": "Not for this role, or outside the user's region or caseload"},
    500: {"model": Problem, "description": "Among others: the access could not be logged, so nothing is disclosed"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "Not known"}}
# Text that must say something: surrounding blanks are dropped, and nothing may remain empty.
Stated = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Invalid(HTTPException):
    """A 422 in FastAPI's own validation format, for checks a parameter's schema cannot express."""

    def __init__(self, location: str, name: str, message: str) -> None:
        super().__init__(422, [{"type": "value_error", "loc": [location, name], "msg": message}])


def utc(moment: dt.datetime | None, field: str) -> dt.datetime | None:
    """A time parameter in UTC; one without an offset is read as UTC."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise Invalid("query", field, "out of range") from None
