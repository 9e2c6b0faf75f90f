"""HTTP API: the ingest gateway (POST /v1/events) and health."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from projections.store import Store, create_pool
from services.auth import AgencyClient, ClientAuthenticator, client_authenticator_for
from services.ingest import DATABASE_AWAY, IngestGateway, Outcome, Submission
from services.query import query_services, router as query_router
from services.metrics import add_metrics_route
from services.runtime import pseudonym_key
from services.settings import Settings
from streams.kafka import cluster_id, new_producer

MAX_BODY_BYTES = 8 * 1024 * 1024
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
    )
    app.include_router(query_router)
    add_metrics_route(app)

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
            "broker or the database does not answer in time."
        ),
    )
    async def post_events(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_client_bearer)
    ) -> JSONResponse:
        state: ApiState = request.app.state.riskwatch
        client = await _agency_client(state, credentials)
        if isinstance(client, JSONResponse):
            return client
        media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _problem(413, "body", f"is larger than {MAX_BODY_BYTES} bytes; send a file with `riskwatch ingest`")
        submissions: list[Submission]
        if media_type in JSON_TYPES:
            submissions = [Submission(body, "json", "http")]
        elif media_type in NDJSON_TYPES:
            submissions = [Submission(line, "json", f"http line {n}")
                           for n, line in enumerate(body.splitlines(), start=1) if line.strip()]
        elif media_type in AVRO_TYPES:
            submissions = [Submission(body, "avro", "http")]
        else:
            allowed = ", ".join(sorted(JSON_TYPES | NDJSON_TYPES | AVRO_TYPES))
            return _problem(415, "content-type", f"{media_type!r} is not accepted; use one of {allowed}")
        if not submissions:
            return _problem(422, "body", "holds no event")
        outcomes = await state.gateway.submit(submissions, client)
        if media_type in NDJSON_TYPES:
            worst = max((_status(o) for o in outcomes), default=202)
            results = {"results": [o.to_dict() for o in outcomes]}
            if worst < 400:
                return JSONResponse(results, status_code=202)
            refused = sum(_status(o) >= 400 for o in outcomes)
            return _answer(state, worst, f"{refused} of {len(outcomes)} events not accepted; see results", [], results)
        outcome = outcomes[0]
        status = _status(outcome)
        if status < 400:
            return JSONResponse(outcome.to_dict(), status_code=status)
        errors = [{"field": e.field, "reason": e.reason} for e in outcome.errors]
        return _answer(state, status, "; ".join(f"{e.field}: {e.reason}" for e in outcome.errors), errors,
                       {"event_id": outcome.event_id, "event_type": outcome.event_type})

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

    return app


async def _agency_client(state: ApiState, credentials: HTTPAuthorizationCredentials | None) -> AgencyClient | JSONResponse:
    """The agency client sending the request, or the 401 (or 503) answer to give instead."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        return _answer(state, 401, "send the agency client's token as a bearer token",
                       [{"field": "authorization", "reason": "missing"}])
    try:
        async with asyncio.timeout(state.gateway.timeout):
            client = await state.clients.authenticate(credentials.credentials)
    except DATABASE_AWAY:
        return _answer(state, 503, "the database is unavailable; retry", [{"field": "database", "reason": "unavailable"}])
    if client is None:
        return _answer(state, 401, "the token is not an agency client's, or was revoked",
                       [{"field": "authorization", "reason": "not a valid agency client token"}])
    return client


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


def _answer(state: ApiState, status: int, detail: str, errors: list[dict[str, str]],
            extensions: dict[str, Any] | None = None) -> JSONResponse:
    """RFC 9457 problem details; 401 names the scheme, 503 says when to retry."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status == 503:
        headers["Retry-After"] = state.retry_after
    document = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
                "errors": errors, **(extensions or {})}
    return JSONResponse(document, status_code=status, headers=headers, media_type="application/problem+json")


def _problem(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse({"status": "rejected", "errors": [{"field": field, "reason": reason}]}, status_code=status)
