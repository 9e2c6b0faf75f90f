"""The case endpoints on the in-memory twins: no database, the same answers and the same atomicity."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from services.adapters.memory.reads import memory_query_ports
from services.adapters.memory.tables import MemoryTables
from services.api.auth import Principal, Role
from services.api.common import QueryState
from services.api.ports import AccessEntry, StoreUnavailable
from services.api.problems import install_problems
from services.api.query import router
from tests.support.contracts.world import subject, unit_name

MINE = unit_name()
OFFICER = Principal("officer-1", Role.PROBATION_OFFICER, frozenset({MINE}))


class Tokens:
    async def authenticate(self, token: str) -> Principal | None:
        return OFFICER if token == "officer" else None


class BrokenLog(Exception):
    pass


@pytest.fixture
def tables() -> MemoryTables:
    return MemoryTables()


@pytest_asyncio.fixture
async def http(tables: MemoryTables) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router)
    install_problems(app)
    app.state.query = QueryState(memory_query_ports(tables), None, Tokens(), 0.01)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": "Bearer officer"}) as client:
        yield client


def seed_case(tables: MemoryTables, caseload: str) -> tuple[dict[str, object], dict[str, object]]:
    person = subject()
    case = tables.add_case(subject=person, priority=1, level="high", caseload=caseload, triggers=["release_at_high"],
                           alert_count=1)
    alert = tables.add_alert(subject=person, caseload=caseload, case_id=case["case_id"], trigger="release_at_high")
    return case, alert


async def test_the_queue_shows_the_caseload_and_logs_the_access(http: httpx.AsyncClient,
                                                                tables: MemoryTables) -> None:
    mine, _ = seed_case(tables, MINE)
    seed_case(tables, unit_name())
    response = await http.get("/v1/cases")
    assert response.status_code == 200, response.text
    assert [case["case_id"] for case in response.json()["cases"]] == [mine["case_id"]]
    [row] = tables.access_log
    assert (row["actor"], row["action"], row["endpoint"], row["subjects"]) == (
        "officer-1", "consultation", "GET /v1/cases", [mine["subject"]])


async def test_acknowledging_a_case_reaches_its_alert_once(http: httpx.AsyncClient, tables: MemoryTables) -> None:
    case, alert = seed_case(tables, MINE)
    response = await http.post(f"/v1/cases/{case['case_id']}/acknowledge", json={"note": "on it"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "acknowledged"
    assert tables.alerts[str(alert["alert_id"])]["status"] == "acknowledged"
    assert len(tables.outbox) == 2 and len(tables.access_log) == 1
    again = await http.post(f"/v1/cases/{case['case_id']}/acknowledge")
    assert again.status_code == 409
    assert len(tables.outbox) == 2 and len(tables.access_log) == 1 and len(tables.case_steps) == 1


async def test_refusals(http: httpx.AsyncClient, tables: MemoryTables) -> None:
    theirs, _ = seed_case(tables, unit_name())
    assert (await http.get(f"/v1/cases/{uuid.uuid4()}")).status_code == 404
    assert (await http.get(f"/v1/cases/{theirs['case_id']}")).status_code == 403
    assert (await http.post(f"/v1/cases/{theirs['case_id']}/close", json={"note": "x"})).status_code == 403
    assert (await http.get("/v1/cases", headers={"Authorization": "Bearer nobody"})).status_code == 401
    assert tables.access_log == [] and tables.case_steps == []


async def test_a_step_whose_access_cannot_be_logged_is_undone(http: httpx.AsyncClient, tables: MemoryTables,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    case, alert = seed_case(tables, MINE)

    def refuse(_tables: MemoryTables, _entry: AccessEntry) -> None:
        raise BrokenLog

    monkeypatch.setattr("services.adapters.memory.workflow.append_access", refuse)
    response = await http.post(f"/v1/cases/{case['case_id']}/close", json={"note": "moved away"})
    assert response.status_code == 500 and "access log" in response.text
    assert tables.cases[str(case["case_id"])]["status"] == "open"
    assert tables.alerts[str(alert["alert_id"])]["status"] == "open"
    assert tables.outbox == [] and tables.case_steps == [] and tables.alert_steps == []


async def test_a_store_that_does_not_answer_is_a_503_with_retry_after_and_nothing_applied(
        http: httpx.AsyncClient, tables: MemoryTables, monkeypatch: pytest.MonkeyPatch) -> None:
    case, _ = seed_case(tables, MINE)

    def away(_tables: MemoryTables, _entry: AccessEntry) -> None:
        raise StoreUnavailable("connection lost")

    monkeypatch.setattr("services.adapters.memory.workflow.append_access", away)
    response = await http.post(f"/v1/cases/{case['case_id']}/close", json={"note": "moved away"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json()["errors"] == [{"field": "database", "reason": "unavailable"}]
    assert tables.cases[str(case["case_id"])]["status"] == "open"
    assert tables.outbox == [] and tables.case_steps == [] and tables.alert_steps == []
