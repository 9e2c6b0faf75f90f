"""The access log (Brottsdatalagen 2018:1177, Directive (EU) 2016/680 art. 25).

Every consultation, disclosure or alteration of personal data through the API writes one row
before the answer leaves: who, when, which subjects, which endpoint, why. If the row cannot be
written, the request fails and discloses nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import unicodedata
import urllib.parse
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import asyncpg
from fastapi import HTTPException, Request

from schemas.text import PSEUDONYM_FORM, withhold_identity_numbers
from services.api.auth import Principal

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
    """The purpose the user stated: the X-Purpose* or X-Purpose header, or the `purpose` parameter.

    Stored exactly as written. HTTP header values are bytes; clients send non-ASCII either as
    UTF-8 in X-Purpose or percent-encoded in X-Purpose* (RFC 8187: UTF-8''hotbed%C3%B6mning).
    """
    extended, plain = _header_bytes(request, PURPOSE_HEADER + "*"), _header_bytes(request, PURPOSE_HEADER)
    if extended is not None:
        source, purpose = PURPOSE_HEADER + "*", _rfc8187(extended)
    elif plain is not None:
        source, purpose = PURPOSE_HEADER, _utf8(plain, PURPOSE_HEADER)
    else:
        source, purpose = "purpose", parameter or ""
    purpose = purpose.strip()
    if any(unicodedata.category(character) in ("Cc", "Cs") for character in purpose):
        raise HTTPException(400, f"{source}: holds a control character; state the purpose in words")
    return purpose[:MAX_PURPOSE] or None


def _header_bytes(request: Request, name: str) -> bytes | None:
    # Starlette decodes header values as latin-1: read the bytes as they came
    wanted = name.lower().encode()
    return next((value for key, value in request.headers.raw if key == wanted), None)


def _utf8(value: bytes, name: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, f"{name}: is not UTF-8; send UTF-8, or {PURPOSE_HEADER}* as in RFC 8187 "
                                 "(UTF-8''hotbed%C3%B6mning)") from None


def _rfc8187(value: bytes) -> str:
    """An RFC 8187 ext-value: charset'language'percent-encoded bytes."""
    charset, quote, rest = _utf8(value, PURPOSE_HEADER + "*").partition("'")
    _language, quote_again, encoded = rest.partition("'")
    if not (quote and quote_again) or charset.lower() not in ("utf-8", "iso-8859-1"):
        raise HTTPException(400, f"{PURPOSE_HEADER}*: write it as RFC 8187 says, e.g. UTF-8''hotbed%C3%B6mning")
    try:
        return urllib.parse.unquote(encoded, encoding=charset, errors="strict")
    except UnicodeDecodeError:
        raise HTTPException(400, f"{PURPOSE_HEADER}*: the percent-encoded bytes are not {charset}") from None


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
            sorted(set(subjects)), purpose, json.loads(json.dumps(_asked(query or {}), default=str)),
        )
    except Exception as error:
        log.error("access log write failed (%s); refusing the request", type(error).__name__)
        raise AccessNotLogged() from error


def _asked(query: dict[str, Any]) -> dict[str, Any]:
    """The filters as kept in the log: any parameter, known or not, without an identity number in it."""
    def kept(value: Any) -> Any:
        if not isinstance(value, str) or PSEUDONYM_FORM.match(value):
            return value
        return withhold_identity_numbers(value)
    return {kept(name): kept(value) for name, value in query.items()}


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
