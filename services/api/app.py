"""HTTP API: the ingest gateway (POST /v1/events) and health."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.adapters.postgres.pool import create_pool
from services.adapters.postgres.store import Store
from schemas.errors import FieldError
from services.api.auth import AgencyClient, ClientAuthenticator, client_authenticator_for
from services.api.console import mount_console
from services.ingest.gateway import DATABASE_AWAY, Format, IngestGateway, Outcome, Submission
from services.api.problems import documented, install_problems, problem
from services.api.query import query_services, router as query_router
from services.api.operations import add_operations
from services.runtime.state import pseudonym_key
from services.runtime.settings import Settings
from streams.kafka import cluster_id, new_producer

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_EVENTS_PER_BODY = 10_000
# Of a body over MAX_BODY_BYTES the dead letters keep this much, with its size and SHA-256.
KEPT_PREFIX_BYTES = 4096
JSON_TYPES = {"application/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/jsonl", "application/json-seq"}
AVRO_TYPES = {"application/vnd.apache.avro+binary", "avro/binary", "application/octet-stream"}


_client_bearer = HTTPBearer(auto_error=False, scheme_name="AgencyClient",
                            description="An agency client token from `riskwatch clients add`, or an OIDC "
                                        "client-credentials access token")


@dataclass
class ApiState:
    store: Store
    gateway: IngestGateway
    clients: ClientAuthenticator
    retry_after: str  # seconds, for 503 answers


def create_api(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings.database_url, "no database configured"
        timeout = settings.ingest_timeout_seconds
        pool = await create_pool(settings.database_url)
        # the gateway's own connections: a database that does not answer is given up on in time
        ingest_pool = await create_pool(settings.database_url, max_size=8, timeout=timeout, command_timeout=timeout)
        producer = new_producer(settings)
        await producer.start()
        store = Store(ingest_pool)
        gateway = IngestGateway(store, producer, pseudonym_key(settings), await cluster_id(settings), timeout=timeout)
        app.state.riskwatch = ApiState(store, gateway, client_authenticator_for(settings, ingest_pool),
                                       str(math.ceil(timeout)))
        try:
            async with query_services(app, settings, pool, producer):
                yield
        finally:
            await producer.stop()
            await ingest_pool.close()
            await pool.close()

    app = FastAPI(
        title="Riskwatch",
        version="1",
        description="Event-sourced risk monitoring of high-risk perpetrators of violence against women.",
        lifespan=lifespan,
        docs_url=None,  # served by the console, from shipped assets: no CDN on a closed network
        redoc_url=None,
    )
    app.include_router(query_router)
    add_operations(app, settings)
    mount_console(app)

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Submit agency events",
        description=(
            "One JSON event (application/json), several as JSON Lines (application/x-ndjson), or one Avro "
            "single-object encoded event (application/vnd.apache.avro+binary). Answers after the broker "
            "acknowledged (acks=all): 202 accepted, 200 duplicate of an accepted event, 422 with every wrong "
            "field, 409 when the event id was used for a different event, 401 without an agency client token, "
            "403 for an event type of another agency or a unit not the client's, 503 with Retry-After when the "
            "broker or the database does not answer in time. Refusals are problem details "
            "(application/problem+json) and are kept in the dead letters, 413 and 415 included."
        ),
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object", "description": "One event in the JSON ingest format"}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "One JSON event per line"}},
            "application/vnd.apache.avro+binary": {"schema": {"type": "string", "format": "binary"}},
        }}},
        responses={status: documented(description) for status, description in (
            (409, "The event id was accepted for a different event"),
            (413, f"The body is over {MAX_BODY_BYTES} bytes or holds over {MAX_EVENTS_PER_BODY} events"),
            (415, "A media type the gateway does not take"),
            (422, "Every wrong field, with the reason"),
        )},
    )
    async def post_events(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_client_bearer)
    ) -> JSONResponse:
        state: ApiState = request.app.state.riskwatch
        client = await _agency_client(state, credentials)
        if isinstance(client, JSONResponse):
            return client
        media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        body, size, digest = await _bounded_body(request)
        kind: Format = "json" if media_type in JSON_TYPES | NDJSON_TYPES else "avro" if media_type in AVRO_TYPES else "other"
        if size > MAX_BODY_BYTES:
            refused = FieldError("body", f"is {size} bytes, larger than {MAX_BODY_BYTES}; send a file with "
                                         f"`riskwatch ingest` (kept: the first {len(body)} bytes, SHA-256 {digest})")
            return await _refused(state, Submission(body, kind, "http"), refused, 413)
        if kind == "other":
            allowed = ", ".join(sorted(JSON_TYPES | NDJSON_TYPES | AVRO_TYPES))
            refused = FieldError("content-type", f"{media_type[:80]!r} is not accepted; use one of {allowed}")
            return await _refused(state, Submission(body, kind, "http"), refused, 415)
        submissions: list[Submission]
        if media_type in NDJSON_TYPES:
            submissions = [Submission(line, "json", f"http line {n}")
                           for n, line in enumerate(body.splitlines(), start=1) if line.strip()]
            if len(submissions) > MAX_EVENTS_PER_BODY:
                refused = FieldError("body", f"holds {len(submissions)} events, more than {MAX_EVENTS_PER_BODY}; "
                                             "send them in several requests")
                return await _refused(state, Submission(body, kind, "http"), refused, 413)
        else:
            submissions = [Submission(body, kind, "http")]
        if not submissions:
            return await _refused(state, Submission(body, kind, "http"), FieldError("body", "holds no event"), 422)
        outcomes = await state.gateway.submit(submissions, client)
        if media_type in NDJSON_TYPES:
            worst = max((_status(o) for o in outcomes), default=202)
            results = [o.to_dict() for o in outcomes]
            if worst < 400:
                return JSONResponse({"results": results}, status_code=202)
            wrong = [FieldError(f"lines[{o.source.removeprefix('http line ')}].{e.field}", e.reason)
                     for o in outcomes for e in o.errors]
            return _answer(state, worst, wrong, results=results)
        outcome = outcomes[0]
        if _status(outcome) >= 400:
            return _answer(state, _status(outcome), outcome.errors, event_id=outcome.event_id,
                           event_type=outcome.event_type)
        return JSONResponse(outcome.to_dict(), status_code=_status(outcome))

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The database and the broker are reachable")
    async def readyz(request: Request) -> JSONResponse:
        state: ApiState = request.app.state.riskwatch
        checks: dict[str, Any] = {}
        probes = {"database": lambda: state.store.pool.fetchval("SELECT 1"),
                  "broker": lambda: state.gateway.producer.client.fetch_all_metadata()}
        for dependency, probe in probes.items():
            try:
                async with asyncio.timeout(state.gateway.timeout):
                    await probe()
                checks[dependency] = "ok"
            except Exception as error:  # readiness reports, it does not raise
                checks[dependency] = f"unreachable: {type(error).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    install_problems(app, own_bodies={"/v1/events"})
    return app


async def _agency_client(state: ApiState, credentials: HTTPAuthorizationCredentials | None) -> AgencyClient | JSONResponse:
    """The agency client sending the request, or the 401 (or 503) answer to give instead."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        return _answer(state, 401, [FieldError("authorization", "missing")],
                       detail="send the agency client's token as a bearer token")
    try:
        async with asyncio.timeout(state.gateway.timeout):
            client = await state.clients.authenticate(credentials.credentials)
    except DATABASE_AWAY:
        return _answer(state, 503, [FieldError("database", "unavailable")], detail="the database is unavailable; retry")
    if client is None:
        return _answer(state, 401, [FieldError("authorization", "not a valid agency client token")],
                       detail="the token is not an agency client's, or was revoked")
    return client


async def _bounded_body(request: Request) -> tuple[bytes, int, str]:
    """(body, size, SHA-256 in hex groups): the whole body up to MAX_BODY_BYTES, of a larger one its first KEPT_PREFIX_BYTES."""
    kept, size, digest = bytearray(), 0, hashlib.sha256()
    async for chunk in request.stream():
        size += len(chunk)
        digest.update(chunk)
        if size <= MAX_BODY_BYTES:
            kept += chunk
    # In groups of eight: a reason is searched for identity numbers, and ten decimal digits in a row
    # of a hex digest would be withheld.
    hexdigest = digest.hexdigest()
    grouped = ":".join(hexdigest[start:start + 8] for start in range(0, len(hexdigest), 8))
    return bytes(kept if size <= MAX_BODY_BYTES else kept[:KEPT_PREFIX_BYTES]), size, grouped


async def _refused(state: ApiState, submission: Submission, error: FieldError, status: int) -> JSONResponse:
    """A body refused as a whole: kept in the dead letters like any refused event, answered as a problem."""
    kept = await state.gateway.refuse(submission, error)
    if kept.status == "unavailable":
        return _answer(state, 503, kept.errors)
    return problem(status, [error])


def _status(outcome: Outcome) -> int:
    if outcome.status == "accepted":
        return 202
    if outcome.status == "duplicate":
        return 200
    if outcome.status == "unavailable":
        return 503
    if outcome.forbidden:
        return 403
    return 409 if outcome.conflict else 422


def _answer(state: ApiState, status: int, errors: Iterable[FieldError], *, detail: str | None = None,
            **members: Any) -> JSONResponse:
    """A problem-details answer of the gateway; 401 names the scheme, 503 says when to retry."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status == 503:
        headers["Retry-After"] = state.retry_after
    return problem(status, errors, detail=detail, headers=headers, **members)
