"""HTTP API: the ingest gateway (POST /v1/events) and health."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from projections.store import Store, create_pool
from services.ingest import IngestGateway, Outcome, Submission
from services.query import query_services, router as query_router
from services.api_operations import add_operations
from services.runtime import pseudonym_key
from services.settings import Settings
from streams.kafka import cluster_id, new_producer

MAX_BODY_BYTES = 8 * 1024 * 1024
JSON_TYPES = {"application/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/jsonl", "application/json-seq"}
AVRO_TYPES = {"application/vnd.apache.avro+binary", "avro/binary", "application/octet-stream"}


@dataclass
class ApiState:
    store: Store
    gateway: IngestGateway


def create_api(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings.database_url, "no database configured"
        pool = await create_pool(settings.database_url)
        producer = new_producer(settings)
        await producer.start()
        store = Store(pool)
        app.state.riskwatch = ApiState(store, IngestGateway(store, producer, pseudonym_key(settings),
                                                                   await cluster_id(settings)))
        try:
            async with query_services(app, settings, pool, producer):
                yield
        finally:
            await producer.stop()
            await pool.close()

    app = FastAPI(
        title="Riskwatch",
        version="1",
        description="Event-sourced risk monitoring of high-risk perpetrators of violence against women.",
        lifespan=lifespan,
    )
    app.include_router(query_router)
    add_operations(app, settings)

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Submit agency events",
        description=(
            "One JSON event (application/json), several as JSON Lines (application/x-ndjson), or one Avro "
            "single-object encoded event (application/vnd.apache.avro+binary). Answers after the broker "
            "acknowledged (acks=all): 202 accepted, 200 duplicate of an accepted event, 422 with every wrong "
            "field, 409 when the event id was used for a different event."
        ),
    )
    async def post_events(request: Request) -> JSONResponse:
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
        state: ApiState = request.app.state.riskwatch
        outcomes = await state.gateway.submit(submissions)
        if media_type in NDJSON_TYPES:
            worst = max((_status(o) for o in outcomes), default=202)
            return JSONResponse({"results": [o.to_dict() for o in outcomes]}, status_code=worst if worst >= 400 else 202)
        outcome = outcomes[0]
        return JSONResponse(outcome.to_dict(), status_code=_status(outcome))

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The database and the broker are reachable")
    async def readyz(request: Request) -> JSONResponse:
        state: ApiState = request.app.state.riskwatch
        checks: dict[str, Any] = {}
        try:
            await state.store.pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except Exception as error:  # readiness reports, it does not raise
            checks["database"] = f"unreachable: {type(error).__name__}"
        try:
            await state.gateway.producer.client.fetch_all_metadata()
            checks["broker"] = "ok"
        except Exception as error:
            checks["broker"] = f"unreachable: {type(error).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    return app


def _status(outcome: Outcome) -> int:
    if outcome.status == "accepted":
        return 202
    if outcome.status == "duplicate":
        return 200
    return 409 if outcome.conflict else 422


def _problem(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse({"status": "rejected", "errors": [{"field": field, "reason": reason}]}, status_code=status)
