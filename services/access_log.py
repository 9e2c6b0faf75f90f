"""The access log (Brottsdatalagen 2018:1177, Directive (EU) 2016/680 art. 25).

Every consultation, disclosure or alteration of personal data through the API writes one row
before the answer leaves: who, when, which subjects, which endpoint, why. If the row cannot be
written, the request fails and discloses nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import asyncpg
from fastapi import HTTPException, Request

from services.auth import Principal

log = logging.getLogger(__name__)

PURPOSE_HEADER = "X-Purpose"
MAX_PURPOSE = 500


class Access(StrEnum):
    CONSULTATION = "consultation"
    DISCLOSURE = "disclosure"  # clear identity revealed
    ALTERATION = "alteration"


class AccessNotLogged(HTTPException):
    def __init__(self) -> None:
        super().__init__(500, "access log: the access could not be recorded, so nothing is disclosed")


def stated_purpose(request: Request, parameter: str | None = None) -> str | None:
    """The purpose the user stated in the X-Purpose header or the `purpose` parameter."""
    purpose = (request.headers.get(PURPOSE_HEADER) or parameter or "").strip()
    return purpose[:MAX_PURPOSE] or None


def endpoint_of(request: Request) -> str:
    """Method and route template, e.g. "GET /v1/subjects/{pseudonym}": the identifiers are in `subjects`."""
    names = {value: name for name, value in request.path_params.items()}
    segments = [f"{{{names[segment]}}}" if segment in names else segment for segment in request.url.path.split("/")]
    return f"{request.method} {'/'.join(segments)}"


async def record_access(
    connection: asyncpg.Connection | asyncpg.Pool,
    principal: Principal,
    access: Access,
    request: Request,
    subjects: Iterable[str],
    purpose: str,
    query: dict[str, Any] | None = None,
) -> None:
    """One access-log row; AccessNotLogged (500) if it cannot be written."""
    try:
        await connection.execute(
            """INSERT INTO access_log (actor, role, action, endpoint, subjects, purpose, query)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            principal.name, principal.role.value, access.value, endpoint_of(request),
            sorted(set(subjects)), purpose, json.loads(json.dumps(query or {}, default=str)),
        )
    except Exception as error:
        log.error("access log write failed (%s); refusing the request", type(error).__name__)
        raise AccessNotLogged() from error


async def read_access_log(
    pool: asyncpg.Pool, *, actor: str | None, subject: str | None, since: dt.datetime | None,
    until: dt.datetime | None, limit: int, offset: int,
) -> tuple[list[asyncpg.Record], int]:
    clauses, parameters = ["TRUE"], []  # type: list[str], list[Any]
    for template, value in (("actor = ${}", actor), ("${} = ANY(subjects)", subject),
                            ("at >= ${}", since), ("at < ${}", until)):
        if value is not None:
            parameters.append(value)
            clauses.append(template.format(len(parameters)))
    where = " AND ".join(clauses)
    total = await pool.fetchval(f"SELECT count(*) FROM access_log WHERE {where}", *parameters)
    rows = await pool.fetch(
        f"""SELECT id, at, actor, role, action, endpoint, subjects, purpose, query FROM access_log WHERE {where}
            ORDER BY id DESC LIMIT ${len(parameters) + 1} OFFSET ${len(parameters) + 2}""",
        *parameters, limit, offset,
    )
    return rows, int(total)
