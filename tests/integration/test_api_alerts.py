"""The alert queue, the alert workflow and the live feed, on the running stack."""

from __future__ import annotations

import datetime as dt

import pytest
import pytest_asyncio

from schemas.codec import decode_published
from services.api.auth import Role
from services.runtime.stack import Stack
from streams.topology import ALERT_WORKFLOW
from tests.support.api import (
    ServerSentEvent,
    alias,
    client,
    comment,
    database,
    ingest,
    next_event,
    read_topic,
    released_high_risk_subject,
    user,
)
from tests.support.scenario import at, event, new_person

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def analyst(stack: Stack) -> str:
    return await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])


async def test_queue_is_sorted_by_priority_then_time_and_filters_and_pages(stack: Stack, analyst: str) -> None:
    story = await released_high_risk_subject(stack)
    async with client(stack, analyst) as http:
        everything = (await http.get("/v1/alerts", params={"subject": story.subject})).json()
        items = everything["items"]
        assert everything["total"] == len(items) >= 3
        order = [(item["priority"], -dt.datetime.fromisoformat(item["raised_at"]).timestamp(), -item["seq"])
                 for item in items]
        assert order == sorted(order)
        assert {item["trigger"] for item in items} >= {"release_at_high", "red_flag_separation"}
        releases = (await http.get("/v1/alerts", params={"subject": story.subject, "trigger": "release_at_high"}))
        assert [item["alert_id"] for item in releases.json()["items"]] == [story.release_alert]
        second = (await http.get("/v1/alerts", params={"subject": story.subject, "limit": 1, "offset": 1})).json()
        assert second["items"] == items[1:2] and second["total"] == everything["total"]
        urgent = (await http.get("/v1/alerts", params={"subject": story.subject, "level": items[0]["level_after"]}))
        assert all(item["level_after"] == items[0]["level_after"] for item in urgent.json()["items"])
        future = (await http.get("/v1/alerts", params={"subject": story.subject, "since": "2100-01-01T00:00:00Z"}))
        assert future.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
        closed = (await http.get("/v1/alerts", params={"subject": story.subject, "status": "closed"}))
        assert closed.json()["items"] == []
        assert (await http.get("/v1/alerts", params={"region": "syd"})).status_code == 403


async def test_acknowledge_assign_close_are_recorded_and_published_without_notes(stack: Stack, analyst: str) -> None:
    story = await released_high_risk_subject(stack)
    path = f"/v1/alerts/{story.release_alert}"
    async with client(stack, analyst) as http:
        acknowledged = await http.post(f"{path}/acknowledge", json={"note": "calling the victim's officer"})
        assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged"
        assert (await http.post(f"{path}/acknowledge")).status_code == 409
        assigned = await http.post(f"{path}/assign", json={"assignee": "Insp. Lind"})
        assert assigned.json()["assignee"] == "Insp. Lind" and assigned.json()["status"] == "acknowledged"
        assert (await http.post(f"{path}/close", json={"note": ""})).status_code == 422
        assert (await http.post(f"{path}/close", json={"note": "   "})).status_code == 422
        closed = await http.post(f"{path}/close", json={"note": "victim moved to a protected address"})
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        assert (await http.post(f"{path}/assign", json={"assignee": "someone"})).status_code == 409
        detail = (await http.get(path)).json()
    steps = [(step["action"], step["actor"], step["assignee"], step["note"]) for step in detail["workflow"]]
    analyst_name = steps[0][1]
    assert steps == [
        ("acknowledged", analyst_name, None, "calling the victim's officer"),
        ("assigned", analyst_name, "Insp. Lind", None),
        ("closed", analyst_name, None, "victim moved to a protected address"),
    ]
    await stack.wait_until_idle()
    published = [decode_published(ALERT_WORKFLOW, record.value) for record in await read_topic(stack, ALERT_WORKFLOW)
                 if record.key == story.subject.encode()]
    assert [(m["action"], m["status"], m["has_note"]) for m in published] == [
        ("acknowledged", "acknowledged", True), ("assigned", "acknowledged", False), ("closed", "closed", True)]
    assert all("note" not in message for message in published)
    assert all(m["alert_id"] == story.release_alert and m["actor"] == analyst_name for m in published)


async def test_workflow_steps_cannot_be_rewritten(stack: Stack) -> None:
    async with database(stack) as pool:
        with pytest.raises(Exception, match="append-only"):
            await pool.execute("UPDATE alert_workflow SET note = 'rewritten'")
        with pytest.raises(Exception, match="append-only"):
            await pool.execute("DELETE FROM access_log")


def breach(person: str, victim: str, day: int, region: str = "stockholm") -> dict[str, object]:
    return event("prosecution.contact_ban_breach_reported", person, at(day), {"electronic_monitoring": True},
                 victims=[victim], region=region, unit="Åklagarmyndigheten")


async def test_live_feed_delivers_new_alerts_and_resumes_after_a_reconnect(stack: Stack, analyst: str) -> None:
    person, victim = new_person(), new_person()
    subject = alias(stack, person)
    async with client(stack, analyst) as http:
        async with http.stream("GET", "/v1/alerts/live") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert (await comment(lines)).startswith("alerts after ")
            await ingest(stack, breach(person, victim, 60))
            first = await next_event(lines)
            while first.data["subject"] != subject:  # alerts raised by other tests meanwhile
                first = await next_event(lines)
        assert first.event == "alert" and first.id == str(first.data["seq"])
        assert first.data["trigger"] in {"contact_ban_breach", "level_rose"}
        # while disconnected: two more breaches
        await ingest(stack, breach(person, victim, 61), breach(person, victim, 62))
        async with database(stack) as pool:
            missed = [row["seq"] for row in await pool.fetch(
                "SELECT seq FROM alert WHERE subject = $1 AND seq > $2 ORDER BY seq", subject, int(first.id or 0))]
        assert len(missed) >= 2
        async with http.stream("GET", "/v1/alerts/live", headers={"Last-Event-ID": first.id or ""}) as response:
            lines = response.aiter_lines()
            resumed: list[ServerSentEvent] = []
            while len([e for e in resumed if e.data["subject"] == subject]) < len(missed):
                resumed.append(await next_event(lines))
        mine = [int(e.id or 0) for e in resumed if e.data["subject"] == subject]
        assert mine == missed, "every alert missed while away, in order, none twice, none seen before"


async def test_live_feed_shows_only_the_users_scope(stack: Stack) -> None:
    south = await user(stack, Role.INTELLIGENCE_ANALYST, ["syd"])
    stockholm_person, south_person, victim = new_person(), new_person(), new_person()
    async with database(stack) as pool:
        start = int(await pool.fetchval("SELECT coalesce(max(seq), 0) FROM alert"))
    await ingest(stack, breach(stockholm_person, victim, 70), breach(south_person, victim, 70, region="syd"))
    async with (client(stack, south) as http,
                http.stream("GET", "/v1/alerts/live", params={"after": start}) as response):
        lines = response.aiter_lines()
        seen = await next_event(lines)
        while seen.data["subject"] != alias(stack, south_person):
            assert seen.data["region"] == "syd"
            seen = await next_event(lines)
    assert seen.data["region"] == "syd"
    async with client(stack, south) as http:
        bad = await http.get("/v1/alerts/live", headers={"Last-Event-ID": "not-a-number"})
    assert bad.status_code == 422
