"""Every query endpoint against every role, in and out of scope, on the running stack."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from services.api.auth import Role
from services.runtime.stack import Stack
from tests.support.api import client, released_high_risk_subject, unique_unit, user

pytestmark = pytest.mark.integration


@dataclass
class World:
    subject: str
    alert_id: str
    caseload: str
    tokens: dict[str, str]


@pytest_asyncio.fixture(scope="module")
async def world(stack: Stack) -> World:
    """A high-risk subject released from a caseload, and one user of each kind."""
    story = await released_high_risk_subject(stack)
    tokens = {
        "analyst_in": await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"]),
        "analyst_out": await user(stack, Role.INTELLIGENCE_ANALYST, ["syd", "vast"]),
        "analyst_national": await user(stack, Role.INTELLIGENCE_ANALYST, ["national"]),
        "probation_in": await user(stack, Role.PROBATION_OFFICER, [story.caseload]),
        "probation_out": await user(stack, Role.PROBATION_OFFICER, [unique_unit()]),
        "operator": await user(stack, Role.OPERATOR),
        "admin": await user(stack, Role.ADMIN),
    }
    return World(story.subject, story.release_alert, story.caseload, tokens)


ANALYSTS_IN = {"analyst_in", "analyst_national"}
PROBATION_IN = {"probation_in"}
PERSONAL_IN = ANALYSTS_IN | PROBATION_IN | {"admin"}

# (endpoint, method, path, JSON body, the users it answers, its success status)
MATRIX: list[tuple[str, str, str, dict[str, str] | None, set[str], int]] = [
    ("alert queue of a region", "GET", "/v1/alerts?region=stockholm", None,
     ANALYSTS_IN | {"probation_in", "probation_out", "admin"}, 200),
    ("one alert", "GET", "/v1/alerts/{alert}", None, PERSONAL_IN, 200),
    ("live alerts", "GET", "/v1/alerts/live", None,
     ANALYSTS_IN | {"analyst_out", "probation_in", "probation_out", "admin"}, 200),
    ("assign", "POST", "/v1/alerts/{alert}/assign", {"assignee": "Duty officer"}, PERSONAL_IN, 200),
    ("acknowledge", "POST", "/v1/alerts/{alert}/acknowledge", {"note": "on it"}, PERSONAL_IN, 200),
    ("close", "POST", "/v1/alerts/{alert}/close", {"note": "visited"}, PERSONAL_IN, 200),
    ("subject view", "GET", "/v1/subjects/{subject}", None, PERSONAL_IN, 200),
    ("identity reveal", "GET", "/v1/subjects/{subject}/identity?purpose=case+conference", None,
     ANALYSTS_IN | {"admin"}, 200),
    ("override", "POST", "/v1/subjects/{subject}/override", {"level": "high", "reason": "matrix check"},
     ANALYSTS_IN, 202),
    ("release watch of a caseload", "GET", "/v1/releases?caseload={caseload}", None, PROBATION_IN | {"admin"}, 200),
    ("priority list", "GET", "/v1/priority?region=stockholm", None, ANALYSTS_IN | {"admin"}, 200),
    ("access log", "GET", "/v1/access-log", None, {"admin"}, 200),
    ("stream status", "GET", "/v1/operations/status", None, {"operator", "admin"}, 200),
    ("who am I", "GET", "/v1/me", None,
     {"analyst_in", "analyst_out", "analyst_national", "probation_in", "probation_out", "operator", "admin"}, 200),
]
# Acknowledge and close change the alert for good: the first permitted user does it, the others find it done.
ONCE = {"acknowledge", "close"}


async def _call(http: httpx.AsyncClient, method: str, path: str, body: dict[str, str] | None) -> int:
    if path.endswith("/live"):
        async with http.stream(method, path) as response:
            return response.status_code
    return (await http.request(method, path, json=body)).status_code


@pytest.mark.parametrize(("name", "method", "path", "body", "answered", "success"), MATRIX,
                         ids=[row[0] for row in MATRIX])
async def test_role_matrix(stack: Stack, world: World, name: str, method: str, path: str,
                           body: dict[str, str] | None, answered: set[str], success: int) -> None:
    path = path.format(alert=world.alert_id, subject=world.subject, caseload=world.caseload)
    seen: dict[str, int] = {}
    for role, token in world.tokens.items():
        async with client(stack, token) as http:
            seen[role] = await _call(http, method, path, body)
    expected: dict[str, int] = {}
    done = False
    for role in world.tokens:
        if role not in answered:
            expected[role] = 403
        elif name in ONCE and done:
            expected[role] = 409
        else:
            expected[role], done = success, True
    assert seen == expected
    async with client(stack) as anonymous, client(stack, "rw_not-a-token") as forged:
        assert await _call(anonymous, method, path, body) == 401
        assert await _call(forged, method, path, body) == 401


async def test_unknown_subject_and_alert_are_not_found(stack: Stack, world: World) -> None:
    async with client(stack, world.tokens["admin"]) as http:
        assert (await http.get("/v1/subjects/ps_unknown")).status_code == 404
        assert (await http.get("/v1/alerts/00000000-0000-4000-8000-000000000000")).status_code == 404


async def test_scope_narrows_the_queue_to_the_users_own_alerts(stack: Stack, world: World) -> None:
    async with client(stack, world.tokens["probation_in"]) as http:
        mine = (await http.get("/v1/alerts", params={"limit": 500})).json()["items"]
    async with client(stack, world.tokens["probation_out"]) as http:
        theirs = (await http.get("/v1/alerts", params={"limit": 500})).json()["items"]
    assert {item["caseload"] for item in mine} == {world.caseload}
    assert world.alert_id in {item["alert_id"] for item in mine}
    assert theirs == []
    async with client(stack, world.tokens["analyst_out"]) as http:
        regions = {item["region"] for item in (await http.get("/v1/alerts", params={"limit": 500})).json()["items"]}
    assert regions <= {"syd", "vast"}
