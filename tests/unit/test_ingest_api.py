"""POST /v1/events and /readyz on the in-memory twins: every refusal a 4xx, 503 only for a dependency away."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from services.adapters.memory import ManualClock
from services.adapters.memory.directory import MemoryClientDirectory
from services.adapters.memory.ingest import MemoryEventPublisher, MemoryIngestRecords
from services.api.app import ApiState, create_api
from services.api.auth import ClientAuthenticator, add_client
from services.ingest.gateway import IngestGateway
from services.runtime.settings import Settings
from tests.support.scenario import at, event, new_person

UNIT = "Polisen Region Stockholm"


class Api:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.records = MemoryIngestRecords(clock=self.clock)
        self.publisher = MemoryEventPublisher(wait=self.clock.advance)
        self.directory = MemoryClientDirectory()
        gateway = IngestGateway(self.records, self.publisher, bytes(32), "cluster-unit", timeout=2.0,
                                today=lambda: dt.date(2026, 11, 1), clock=self.clock)
        self.app = create_api(Settings())
        self.app.state.riskwatch = ApiState(self.records, self.publisher, gateway,
                                            ClientAuthenticator(self.directory), "2")


@pytest.fixture
async def api() -> AsyncIterator[tuple[Api, httpx.AsyncClient, dict[str, str]]]:
    twins = Api()
    token = await add_client(twins.directory, "police-unit", "police", [UNIT])
    transport = httpx.ASGITransport(app=twins.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield twins, http, {"Authorization": f"Bearer {token}"}


def body(**overrides: object) -> dict[str, object]:
    return {**event("police.domestic_callout", new_person(), at(3), {"injuries": False}), **overrides}


async def test_answers_by_outcome(api: tuple[Api, httpx.AsyncClient, dict[str, str]]) -> None:
    twins, http, auth = api
    document = body()
    assert (await http.post("/v1/events", json=document, headers=auth)).status_code == 202
    assert (await http.post("/v1/events", json=document, headers=auth)).status_code == 200
    conflict = await http.post("/v1/events", json={**document, "payload": {"injuries": True}}, headers=auth)
    assert conflict.status_code == 409
    assert (await http.post("/v1/events", json=body(unit="Polisen Region Syd"), headers=auth)).status_code == 403
    assert (await http.post("/v1/events", json=body(event_id="x"), headers=auth)).status_code == 422
    assert (await http.post("/v1/events", json=document)).status_code == 401
    wrong = await http.post("/v1/events", json=document, headers={"Authorization": "Bearer rwc_nothing"})
    assert wrong.status_code == 401
    media = await http.post("/v1/events", content=b"<x/>", headers={**auth, "content-type": "text/xml"})
    assert media.status_code == 415
    assert len(twins.records.dead_letters) == 4  # conflict, forbidden, unreadable, media type


async def test_a_broker_that_does_not_answer_is_503_with_retry_after(
        api: tuple[Api, httpx.AsyncClient, dict[str, str]]) -> None:
    twins, http, auth = api
    twins.publisher.mode = "silent"
    answer = await http.post("/v1/events", json=body(), headers=auth)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
    assert twins.publisher.waited == [2.0]
    ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["broker"].startswith("unreachable")
    twins.publisher.mode = "up"
    assert (await http.get("/readyz")).json() == {"ready": True, "database": "ok", "broker": "ok"}


async def test_a_database_away_is_503(api: tuple[Api, httpx.AsyncClient, dict[str, str]]) -> None:
    twins, http, auth = api
    twins.records.available = False
    lines = b"".join(json.dumps(d).encode() + b"\n" for d in (body(), body()))
    answer = await http.post("/v1/events", content=lines, headers={**auth, "content-type": "application/x-ndjson"})
    assert answer.status_code == 503
    assert [r["status"] for r in answer.json()["results"]] == ["unavailable", "unavailable"]
