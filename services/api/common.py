"""What the query endpoints share: their state, error answers, parameter checks."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Request
from pydantic import AfterValidator, StringConstraints

from schemas.text import PSEUDONYM_FORM, free_text_fault, holds_identity_number
from services.api.auth import Authenticator, Principal, Role
from services.api.ports import QueryPorts, Scope
from services.api.problems import documented

LevelName = Literal["low", "moderate", "high", "extreme"]
PSEUDONYM_MAX = 128  # keyed pseudonyms are far shorter; longer input is not one
# A pseudonym as the gateway writes it (ps_ and hex) or as an agency sends it: letters, digits, _ and -.
PSEUDONYM_PATTERN = r"^[A-Za-z0-9_-]+$"


@dataclass(frozen=True, slots=True)
class QueryState:
    ports: QueryPorts
    producer: Any  # an AIOKafkaProducer, acks=all, shared with the ingest gateway
    authenticator: Authenticator
    live_poll_seconds: float


def scope_of(principal: Principal) -> Scope:
    """The rows this user may see: an analyst's regions, a probation officer's caseloads, or all."""
    field: Literal["region", "caseload"] | None = None
    if not principal.national:
        field = "region" if principal.role == Role.INTELLIGENCE_ANALYST else "caseload"
    return Scope(field, frozenset(principal.scope), principal.supervisor or principal.role == Role.ADMIN)


def query_state(request: Request) -> QueryState:
    state: QueryState = request.app.state.query
    return state


ERRORS: dict[int | str, dict[str, Any]] = {
    400: documented("A path or query parameter holds a control character or is not UTF-8"),
    401: documented("No bearer token, or not a valid one"),
    403: documented("Not for this role, or outside the user's region or caseload"),
    422: documented("A parameter or a body field is wrong: each is named with the reason"),
    500: documented("Among others: the access could not be logged, so nothing is disclosed"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: documented("Not known")}


def canonical_text(max_length: int, *, multiline: bool = False) -> Callable[[str], str]:
    """A check for free text written by a user: NFC, no control characters (tab and newline where
    `multiline`), at most `max_length` characters and no identity number, since such text is
    kept in the read models and may travel on a topic."""

    def check(value: str) -> str:
        value = unicodedata.normalize("NFC", value)
        fault = free_text_fault(value, max_length=max_length, multiline=multiline)
        if fault is not None:
            raise ValueError(fault)
        return value

    return check


# Free text that must say something: surrounding blanks are dropped, nothing may remain empty.
Stated = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(canonical_text(200))]
Note = Annotated[str, AfterValidator(canonical_text(4000, multiline=True))]
StatedNote = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1),
                       AfterValidator(canonical_text(4000, multiline=True))]
Filter = Annotated[str, AfterValidator(canonical_text(500))]


def not_an_identity_number(value: str) -> str:
    """A pseudonym parameter is logged with the access: a clear identity number may not stand in for one."""
    if not PSEUDONYM_FORM.match(value) and holds_identity_number(value):
        raise ValueError("is shaped like an identity number; ask by the subject's pseudonym")
    return value


SubjectFilter = Annotated[str, AfterValidator(not_an_identity_number)]


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
