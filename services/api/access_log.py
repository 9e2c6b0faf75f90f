"""The access log (Brottsdatalagen 2018:1177, Directive (EU) 2016/680 art. 25).

Every consultation, disclosure or alteration of personal data through the API writes one row
before the answer leaves: who, when, which subjects, which endpoint, why. If the row cannot be
written, the request fails and discloses nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import unicodedata
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from enum import StrEnum
from typing import Any

from fastapi import HTTPException, Request

from schemas.text import PSEUDONYM_FORM, withhold_identity_numbers
from services.api.auth import Principal
from services.api.ports import AccessEntry, AccessLog, StoreUnavailable

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


def access_entry(principal: Principal, access: Access, request: Request, subjects: Iterable[str], purpose: str,
                 query: dict[str, Any] | None = None) -> AccessEntry:
    """The access-log row of this request: the filters kept without an identity number in them."""
    return AccessEntry(actor=principal.name, role=principal.role.value, action=access.value,
                       endpoint=endpoint_of(request), subjects=tuple(sorted(set(subjects))), purpose=purpose,
                       query=json.loads(json.dumps(_asked(query or {}), default=str)))


async def record_access(
    record: Callable[[AccessEntry], Awaitable[None]],
    principal: Principal,
    access: Access,
    request: Request,
    subjects: Iterable[str],
    purpose: str,
    query: dict[str, Any] | None = None,
) -> None:
    """One access-log row, written by `record` (the access log's, or a unit of work's, to write it with the
    step); AccessNotLogged (500) if it cannot be written."""
    entry = access_entry(principal, access, request, subjects, purpose, query)
    try:
        await record(entry)
    except StoreUnavailable:
        raise  # the database away: 503, retry (services/api/problems.py)
    except Exception as error:
        log.error("access log write failed (%s); refusing the request", type(error).__name__)
        raise AccessNotLogged() from error


@contextlib.asynccontextmanager
async def recorded_access(log_port: AccessLog, principal: Principal, access: Access, request: Request,
                          subjects: Iterable[str], purpose: str,
                          query: dict[str, Any] | None = None) -> AsyncIterator[None]:
    """The access-log row written before the block and kept only if the block ends normally."""
    entry = access_entry(principal, access, request, subjects, purpose, query)
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(log_port.recorded(entry))
        except StoreUnavailable:
            raise
        except Exception as error:
            log.error("access log write failed (%s); refusing the request", type(error).__name__)
            raise AccessNotLogged() from error
        yield


def _asked(query: dict[str, Any]) -> dict[str, Any]:
    """The filters as kept in the log: any parameter, known or not, without an identity number in it."""
    def kept(value: Any) -> Any:
        if not isinstance(value, str) or PSEUDONYM_FORM.match(value):
            return value
        return withhold_identity_numbers(value)
    return {kept(name): kept(value) for name, value in query.items()}
