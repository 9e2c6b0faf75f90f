"""Subject view, analyst override, release watch and priority list, on the running stack."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio

from services.api.auth import Role
from services.runtime.stack import Stack
from streams.topology import SUBJECT_EVENTS
from tests.support.api import (
    Story,
    alias,
    client,
    database,
    ingest,
    read_topic,
    released_high_risk_subject,
    unique_unit,
    user,
)
from tests.support.scenario import at, event, new_person

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def story(stack: Stack) -> Story:
    return await released_high_risk_subject(stack)


@pytest_asyncio.fixture(scope="module")
async def analyst(stack: Stack) -> str:
    return await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])


async def test_subject_view_explains_the_assessment_with_its_events(stack: Stack, story: Story, analyst: str) -> None:
    async with client(stack, analyst) as http:
        view = (await http.get(f"/v1/subjects/{story.subject}")).json()
    async with database(stack) as pool:
        projection = await pool.fetchrow("SELECT level, score, assessment FROM risk_projection WHERE subject = $1",
                                         story.subject)
    assert (view["level"], view["score"]) == (projection["level"], projection["score"])
    assert view["explanation"] == projection["assessment"]["explanation"] and view["explanation"]
    assert view["caseload"] == story.caseload and view["region"] == "stockholm"
    assert {"gravity", "recency", "frequency", "victims"} <= set(view["components"])
    assert {c["factor"] for c in view["contributions"]} >= {"gravity", "recency", "frequency", "victims"}
    assert len(view["history"]) == 4, "one point per event"
    times = [point["event_time"] for point in view["history"]]
    assert times == sorted(times)
    types = {e["event_type"]: e for e in view["events"]}
    assert "police.crime_report" in types and types["police.crime_report"]["agency"] == "police"
    assert "gravity" in types["police.crime_report"]["factors"]
    referenced = {event_id for c in view["contributions"] for event_id in c["event_ids"]}
    assert {e["event_id"] for e in view["events"]} == referenced
    text = json.dumps(view)
    assert story.person not in text and story.person.replace("-", "") not in text
    assert "unit" not in view["events"][0], "contributing events carry no unit: it could locate a victim"


async def test_override_reaches_the_projection_and_needs_a_reason(stack: Stack, analyst: str) -> None:
    story = await released_high_risk_subject(stack)
    async with client(stack, analyst) as http:
        missing = await http.post(f"/v1/subjects/{story.subject}/override", json={"level": "low", "reason": " "})
        unknown = await http.post(f"/v1/subjects/{story.subject}/override", json={"level": "severe", "reason": "x"})
        accepted = await http.post(f"/v1/subjects/{story.subject}/override",
                                   json={"level": "low", "reason": "victim relocated abroad, no contact possible"})
    assert missing.status_code == 422 and unknown.status_code == 422
    assert accepted.status_code == 202, accepted.text
    event_id = accepted.json()["event_id"]
    on_topic = [r for r in await read_topic(stack, SUBJECT_EVENTS) if r.key == story.subject.encode()]
    assert any(event_id.encode() in record.value for record in on_topic), "on the broker when answered"
    await stack.wait_until_idle()
    async with client(stack, analyst) as http:
        view = (await http.get(f"/v1/subjects/{story.subject}")).json()
    assert view["level"] == "low" and view["computed_level"] != "low"
    assert view["override"]["reason"] == "victim relocated abroad, no contact possible"
    assert view["override"]["event_id"] == event_id and view["override"]["analyst"].startswith("intelligence_analyst")


async def test_release_watch_lists_upcoming_and_recent_releases_and_furloughs(stack: Stack) -> None:
    person, caseload = new_person(), unique_unit()
    victim = new_person()
    await ingest(
        stack,
        event("police.crime_report", person, at(1), {"offence": "rape", "threat_to_kill": True}, victims=[victim]),
        event("prison_probation.custody_started", person, at(2), {"facility": "Anstalten Kumla"}, unit=caseload),
        event("prison_probation.furlough_granted", person, at(10), {"start_date": "2026-03-25",
                                                                    "end_date": "2026-03-26"}, unit=caseload),
        event("prison_probation.release_scheduled", person, at(12), {"release_date": "2026-04-10",
                                                                     "release_kind": "conditional"}, unit=caseload),
        event("prison_probation.furlough_started", person, at(24), {"expected_return_date": "2026-03-26"},
              unit=caseload),
    )
    subject = alias(stack, person)
    officer = await user(stack, Role.PROBATION_OFFICER, [caseload])
    async with client(stack, officer) as http:
        before_furlough = (await http.get("/v1/releases", params={"as_of": "2026-03-15"})).json()
        after_furlough = (await http.get("/v1/releases", params={"as_of": "2026-03-28"})).json()
        short = (await http.get("/v1/releases", params={"as_of": "2026-03-28", "ahead_days": 7})).json()
    assert [(i["kind"], i["date"]) for i in before_furlough["upcoming"]] == [
        ("furlough", "2026-03-25"), ("release", "2026-04-10")]
    assert before_furlough["recent"] == []
    assert [(i["kind"], i["date"]) for i in after_furlough["upcoming"]] == [("release", "2026-04-10")]
    assert [(i["kind"], i["date"]) for i in after_furlough["recent"]] == [("furlough", "2026-03-25")]
    assert short["upcoming"] == []
    item = after_furlough["upcoming"][0]
    async with database(stack) as pool:
        level = await pool.fetchval("SELECT level FROM risk_projection WHERE subject = $1", subject)
    assert (item["subject"], item["level"], item["caseload"], item["release_kind"]) == (
        subject, level, caseload, "conditional")


async def test_release_watch_drops_a_release_once_it_happened(stack: Stack, story: Story) -> None:
    officer = await user(stack, Role.PROBATION_OFFICER, [story.caseload])
    async with client(stack, officer) as http:
        watch = (await http.get("/v1/releases", params={"as_of": "2026-04-12", "back_days": 5})).json()
    assert watch["upcoming"] == []
    assert [(i["kind"], i["date"], i["event_type"]) for i in watch["recent"]] == [
        ("release", "2026-04-10", "prison_probation.released")]


async def test_priority_list_ranks_the_region_by_score_with_components(stack: Stack, story: Story) -> None:
    admin = await user(stack, Role.ADMIN)
    async with client(stack, admin) as http:
        ranked = (await http.get("/v1/priority", params={"region": "stockholm", "limit": 500})).json()
        page = (await http.get("/v1/priority", params={"region": "stockholm", "limit": 2, "offset": 1})).json()
    items = ranked["items"]
    assert [item["rank"] for item in items] == list(range(1, len(items) + 1))
    assert [item["score"] for item in items] == sorted((item["score"] for item in items), reverse=True)
    assert story.subject in {item["subject"] for item in items}
    assert all({"recency", "frequency", "gravity", "victims"} <= set(item) for item in items)
    assert [item["subject"] for item in page["items"]] == [item["subject"] for item in items[1:3]]
    assert page["items"][0]["rank"] == 2 and page["total"] == ranked["total"]
