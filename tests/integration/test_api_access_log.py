"""The access log: one row per personal-data request, written before answering, or no answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import pytest_asyncio

from services.api.auth import Role
from services.runtime.stack import Stack
from tests.support.api import (
    Story,
    access_rows,
    client,
    database,
    last_access_id,
    released_high_risk_subject,
    user,
)

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def story(stack: Stack) -> Story:
    return await released_high_risk_subject(stack)


@pytest_asyncio.fixture(scope="module")
async def analyst(stack: Stack) -> str:
    return await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])


# (method, path, JSON body, access-log action, route as logged)
PERSONAL_DATA = [
    ("GET", "/v1/alerts?subject={subject}", None, "consultation", "GET /v1/alerts"),
    ("GET", "/v1/alerts/{alert}", None, "consultation", "GET /v1/alerts/{alert_id}"),
    ("POST", "/v1/alerts/{alert}/assign", {"assignee": "K. Berg"}, "alteration", "POST /v1/alerts/{alert_id}/assign"),
    ("POST", "/v1/alerts/{alert}/acknowledge", None, "alteration", "POST /v1/alerts/{alert_id}/acknowledge"),
    ("POST", "/v1/alerts/{alert}/close", {"note": "visited, safety plan made"}, "alteration",
     "POST /v1/alerts/{alert_id}/close"),
    ("GET", "/v1/subjects/{subject}", None, "consultation", "GET /v1/subjects/{pseudonym}"),
    ("GET", "/v1/subjects/{subject}/identity", None, "disclosure", "GET /v1/subjects/{pseudonym}/identity"),
    ("POST", "/v1/subjects/{subject}/override", {"level": "extreme", "reason": "new intelligence"}, "alteration",
     "POST /v1/subjects/{pseudonym}/override"),
    ("GET", "/v1/priority?region=stockholm&limit=500", None, "consultation", "GET /v1/priority"),
]


async def test_every_personal_data_endpoint_logs_exactly_one_row_per_request(
    stack: Stack, story: Story, analyst: str
) -> None:
    for method, path, body, action, route in PERSONAL_DATA:
        before = await last_access_id(stack)
        async with client(stack, analyst, **{"X-Purpose": f"test of {route}"}) as http:
            response = await http.request(method, path.format(subject=story.subject, alert=story.release_alert),
                                          json=body)
        assert response.status_code in (200, 202), (route, response.text)
        rows = await access_rows(stack, before)
        assert len(rows) == 1, (route, rows)
        row = rows[0]
        assert (row["action"], row["endpoint"], row["role"]) == (action, route, "intelligence_analyst")
        assert row["actor"].startswith("intelligence_analyst-")
        assert story.subject in row["subjects"]
        assert row["purpose"] == f"test of {route}"


async def test_release_watch_and_access_log_reads_are_logged_too(stack: Stack, story: Story) -> None:
    probation = await user(stack, Role.PROBATION_OFFICER, [story.caseload])
    admin = await user(stack, Role.ADMIN)
    before = await last_access_id(stack)
    async with client(stack, probation) as http:
        response = await http.get("/v1/releases", params={"as_of": "2026-04-15"})
    assert response.status_code == 200
    rows = await access_rows(stack, before)
    assert [(r["endpoint"], r["subjects"], r["purpose"]) for r in rows] == [
        ("GET /v1/releases", [story.subject], "release watch")]
    before = await last_access_id(stack)
    async with client(stack, admin) as http:
        response = await http.get("/v1/access-log", params={"subject": story.subject})
    assert response.status_code == 200
    logged = response.json()["items"]
    assert logged and all(story.subject in item["subjects"] for item in logged)
    assert {"GET /v1/releases", "GET /v1/subjects/{pseudonym}/identity"} <= {item["endpoint"] for item in logged}
    rows = await access_rows(stack, before)
    # The reading is logged with every subject the rows it showed name (a list read names others too).
    shown = sorted({subject for item in logged for subject in item["subjects"]})
    assert [(r["endpoint"], sorted(r["subjects"])) for r in rows] == [("GET /v1/access-log", shown)]


async def test_endpoints_without_personal_data_log_nothing(stack: Stack) -> None:
    operator = await user(stack, Role.OPERATOR)
    before = await last_access_id(stack)
    async with client(stack, operator) as http:
        assert (await http.get("/v1/me")).status_code == 200
        assert (await http.get("/v1/operations/status")).status_code == 200
        assert (await http.get("/v1/alerts")).status_code == 403
    assert await access_rows(stack, before) == []


async def test_reveal_needs_a_purpose_and_discloses_the_identity_number(
    stack: Stack, story: Story, analyst: str
) -> None:
    before = await last_access_id(stack)
    async with client(stack, analyst) as http:
        refused = await http.get(f"/v1/subjects/{story.subject}/identity")
        revealed = await http.get(f"/v1/subjects/{story.subject}/identity",
                                  params={"purpose": "threat assessment meeting"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "purpose"
    assert revealed.status_code == 200
    assert revealed.json()["identity_number"] == story.person.replace("-", "")
    rows = await access_rows(stack, before)
    assert [(r["action"], r["purpose"]) for r in rows] == [("disclosure", "threat assessment meeting")]


@asynccontextmanager
async def access_log_refusing_writes(stack: Stack) -> AsyncIterator[None]:
    """The access log's table refuses new rows, as a full disk or a lost privilege would."""
    async with database(stack) as pool:
        await pool.execute("ALTER TABLE access_log ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
        try:
            yield
        finally:
            await pool.execute("ALTER TABLE access_log DROP CONSTRAINT refuse_all")


async def test_when_the_log_cannot_be_written_nothing_is_disclosed_or_changed(stack: Stack, analyst: str) -> None:
    story = await released_high_risk_subject(stack)
    async with access_log_refusing_writes(stack), client(stack, analyst, **{"X-Purpose": "check"}) as http:
        view = await http.get(f"/v1/subjects/{story.subject}")
        identity = await http.get(f"/v1/subjects/{story.subject}/identity")
        acknowledged = await http.post(f"/v1/alerts/{story.release_alert}/acknowledge")
        queue = await http.get("/v1/alerts", params={"subject": story.subject})
    for response in (view, identity, acknowledged, queue):
        assert response.status_code == 500
        assert response.json()["detail"] == "access log: the access could not be recorded, so nothing is disclosed"
    async with database(stack) as pool:
        status = await pool.fetchval("SELECT status FROM alert WHERE alert_id = $1::uuid", story.release_alert)
        steps = await pool.fetchval("SELECT count(*) FROM alert_workflow WHERE alert_id = $1::uuid",
                                    story.release_alert)
    assert (status, steps) == ("open", 0)


@pytest.mark.parametrize(("header", "value"), [
    ("X-Purpose", "hotbedömning inför häktning, Åsa".encode()),
    ("X-Purpose*", b"UTF-8''hotbed%C3%B6mning inf%C3%B6r h%C3%A4ktning%2C %C3%85sa"),
], ids=["UTF-8 bytes", "RFC 8187"])
async def test_a_swedish_purpose_is_logged_exactly_as_written(stack: Stack, story: Story, analyst: str,
                                                              header: str, value: bytes) -> None:
    before = await last_access_id(stack)
    async with client(stack, analyst) as http:
        response = await http.get(f"/v1/subjects/{story.subject}", headers={header: value})
    assert response.status_code == 200, response.text
    assert [row["purpose"] for row in await access_rows(stack, before)] == ["hotbedömning inför häktning, Åsa"]


@pytest.mark.parametrize("value", ["hotbedömning".encode("latin-1"), b"UTF-16''x", b"UTF-8''hot%00"],
                         ids=["latin-1 bytes", "unknown charset", "control character"])
async def test_a_purpose_that_cannot_be_read_exactly_is_refused(stack: Stack, story: Story, analyst: str,
                                                                value: bytes) -> None:
    header = "X-Purpose*" if b"''" in value else "X-Purpose"
    before = await last_access_id(stack)
    async with client(stack, analyst) as http:
        response = await http.get(f"/v1/subjects/{story.subject}", headers={header: value})
    assert response.status_code == 400, response.text
    assert header in response.json()["detail"]
    assert await access_rows(stack, before) == []


async def test_an_identity_number_in_any_query_parameter_is_withheld_in_the_log(
    stack: Stack, story: Story, analyst: str
) -> None:
    before = await last_access_id(stack)
    async with client(stack, analyst, **{"X-Purpose": "triage"}) as http:
        answer = await http.get("/v1/alerts", params={"note": "19850312-0001", "subject": story.subject})
    assert answer.status_code == 200, answer.text
    (row,) = await access_rows(stack, before)
    assert row["query"]["subject"] == story.subject
    assert "0312" not in row["query"]["note"] and "withheld" in row["query"]["note"]
