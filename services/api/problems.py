"""Every error answer of the API in one shape: RFC 9457 problem details.

    HTTP/1.1 422 Unprocessable Content
    Content-Type: application/problem+json

    {"type": "urn:riskwatch:problem:invalid-input", "title": "Invalid input", "status": 422,
     "detail": "unit: holds the control character U+0000",
     "errors": [{"field": "unit", "reason": "holds the control character U+0000"}]}

`errors` names each wrong field with its reason; `detail` is the first of them (or the whole
story when no field is to blame). No answer quotes an identity number or a control character.
`install_problems` puts FastAPI's validation errors, HTTPExceptions, refused paths and query
strings, and unexpected failures into this shape, on every endpoint at once.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from projections.ports import StoreUnavailable
from schemas.errors import FieldError
from schemas.text import printable

MEDIA_TYPE = "application/problem+json"
# The query API's bodies are a note or a reason: a few kilobytes at most.
BODY_MAX_BYTES = 64 * 1024
_TYPES = {
    400: "invalid-input", 422: "invalid-input", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 409: "conflict", 413: "too-large", 415: "unsupported-media-type",
    500: "server-error", 503: "unavailable",
}
# FastAPI's "field: reason" convention for HTTPException details.
_FIELD_DETAIL = re.compile(r"^(?P<field>[A-Za-z_][\w.\[\]-]*): (?P<reason>.+)$", re.DOTALL)
_log = logging.getLogger("riskwatch.api")


class FieldProblem(BaseModel):
    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the wrong fields listed."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = []


def documented(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for a problem answer."""
    return {"model": Problem, "description": description,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # ASCII escapes: whatever text reaches an answer, it can always be sent.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def problem(status: int, errors: Iterable[FieldError] = (), *, detail: str | None = None,
            headers: Mapping[str, str] | None = None, **members: Any) -> ProblemResponse:
    """A problem-details answer; `members` adds extension members (e.g. an ingest outcome's results)."""
    listed = [{"field": printable(e.field, 80), "reason": printable(e.reason, 400)} for e in errors]
    if detail is None:
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in listed) or HTTPStatus(status).phrase
    kind = _TYPES.get(status)
    document = {
        "type": f"urn:riskwatch:problem:{kind}" if kind else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": printable(detail, 1000),
        "errors": listed,
        **members,
    }
    return ProblemResponse(document, status_code=status, headers=dict(headers or {}))


def validation_errors(errors: Sequence[Any]) -> list[FieldError]:
    """FastAPI's (pydantic's) error list as fields and reasons: the location without its source, the message
    without the input (which may be anything, an identity number included)."""
    found = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        field = ".".join(location[1:]) if len(location) > 1 else (location[0] if location else "request")
        reason = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        found.append(FieldError(field, reason))
    return found


async def _on_validation_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, RequestValidationError)
    return problem(422, validation_errors(error.errors()))


STORE_RETRY_AFTER_SECONDS = 5  # a store away: when a client may ask again


async def _on_store_unavailable(request: Request, error: Exception) -> ProblemResponse:
    """A store that did not answer is a dependency away, not a defect: 503 and when to retry."""
    _log.warning("%s %s: the database did not answer (%s)", request.method, request.url.path, error)
    return problem(503, [FieldError("database", "unavailable")], detail="the database is unavailable; retry",
                   headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)})


async def _on_http_exception(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail
    if isinstance(detail, list):
        return problem(error.status_code, validation_errors(detail), headers=error.headers)
    text = str(detail)
    stated = _FIELD_DETAIL.match(text)
    errors = [FieldError(stated["field"], stated["reason"])] if stated else []
    return problem(error.status_code, errors, detail=text, headers=error.headers)


def _refusal(text: str, where: str) -> str | None:
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs"):
            return f"holds the character U+{ord(char):04X}, which no {where} may hold"
    return None


class _Boundary:
    """Refuses paths and query strings with control characters (PostgreSQL and the access log cannot
    keep them, and no identifier or filter holds one), bodies over BODY_MAX_BYTES or not JSON on the
    endpoints that read their own (the ingest gateway reads, refuses and keeps its own), and answers
    an unexpected failure with a 500 problem instead of letting it cut the keep-alive connection."""

    def __init__(self, app: ASGIApp, own_bodies: frozenset[str]) -> None:
        self.app = app
        self.own_bodies = own_bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._refused(scope) or self._refused_body(scope)
        if refused is not None:
            await refused(scope, receive, send)
            return
        if scope["path"] not in self.own_bodies and scope["method"] in ("POST", "PUT", "PATCH"):
            buffered = await self._buffered(receive)
            if buffered is None:
                await problem(413, [FieldError("body", f"is larger than {BODY_MAX_BYTES} bytes")])(scope, receive, send)
                return
            receive = buffered
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            _log.exception("unexpected failure answering %s %s", scope.get("method"), printable(scope["path"], 200))
            if started:
                raise  # half an answer is out: only closing the connection tells the client
            await problem(500, detail="the request could not be completed; it is logged")(scope, receive, send)

    @staticmethod
    async def _buffered(receive: Receive) -> Receive | None:
        """The body read ahead, at most BODY_MAX_BYTES (a body sent chunked has no length to check
        first); None when it is larger."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > BODY_MAX_BYTES:
                return None
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        return replayed

    def _refused_body(self, scope: Scope) -> ProblemResponse | None:
        if scope["path"] in self.own_bodies:
            return None
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > BODY_MAX_BYTES:
            return problem(413, [FieldError("body", f"is larger than {BODY_MAX_BYTES} bytes")])
        has_body = (length.isdigit() and int(length) > 0) or "transfer-encoding" in headers
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if has_body and media_type != "application/json" and not media_type.endswith("+json"):
            return problem(415, [FieldError("content-type", f"{media_type[:80]!r} is not accepted; send "
                                                            "application/json")])
        return None

    @staticmethod
    def _refused(scope: Scope) -> ProblemResponse | None:
        try:
            path = unquote_to_bytes(scope.get("raw_path") or scope["path"].encode()).decode("utf-8")
        except UnicodeDecodeError:
            return problem(400, [FieldError("path", "is not UTF-8 once percent-decoded")])
        reason = _refusal(path, "path")
        if reason is not None:
            return problem(400, [FieldError("path", reason)])
        query = scope.get("query_string", b"")
        if b"%" not in query and not any(byte < 0x20 or byte == 0x7F for byte in query):
            return None
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                                     errors="surrogateescape"):
            for text in (name, value):
                reason = _refusal(text, "query parameter")
                if reason is not None:
                    return problem(400, [FieldError(printable(name, 40) or "query", reason)])
        return None


def install_problems(app: FastAPI, *, own_bodies: Iterable[str] = ()) -> None:
    """Every error answer of `app` as problem details; call once, after the routes are added.

    `own_bodies`: paths whose endpoints read, limit and refuse their bodies themselves."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(StoreUnavailable, _on_store_unavailable)
    app.add_middleware(_Boundary, own_bodies=frozenset(own_bodies))
