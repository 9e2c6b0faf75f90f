"""Cases, history that does not page, and the review queue, on the shared stack."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.api.auth import Role
from services.runtime.state import child_environment
from services.runtime.stack import Stack
from services.bootstrap import worker_ports
from services.worker import WorkerRuntime, emit_due_reviews
from projections.policy import default_policy
from tests.support.api import alias, client, database, ingest, next_event, comment, released_high_risk_subject, user
from tests.support.scenario import at, event, jsonl, new_person

pytestmark = pytest.mark.integration


def breach(person: str, victim: str, day: int, **changes: str) -> dict:
    document = event("prosecution.contact_ban_breach_reported", person, at(day), {"electronic_monitoring": False},
                     victims=[victim], unit="Åklagarmyndigheten Stockholm")
    document.update(changes)
    return document


async def test_a_subjects_alerts_are_one_case_worked_as_one(stack: Stack) -> None:
    story = await released_high_risk_subject(stack)
    analyst = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    elsewhere = await user(stack, Role.INTELLIGENCE_ANALYST, ["syd"])
    async with database(stack) as pool:
        alerts = await pool.fetch("SELECT alert_id::text, trigger, priority, explanation, case_id::text FROM alert "
                                  "WHERE subject = $1 AND paged ORDER BY seq", story.subject)
    [case_id] = {row["case_id"] for row in alerts}
    async with client(stack, analyst) as http:
        listed = (await http.get("/v1/cases", params={"trigger": "release_at_high", "limit": 500})).json()["cases"]
        [case] = [item for item in listed if item["case_id"] == case_id]
        detail = (await http.get(f"/v1/cases/{case_id}")).json()
    assert case["subject"] == story.subject and case["status"] == "open" and case["region"] == "stockholm"
    assert case["priority"] == min(row["priority"] for row in alerts)
    assert case["triggers"] == sorted({row["trigger"] for row in alerts})
    assert case["alert_count"] == len(alerts) and case["explanation"] == alerts[-1]["explanation"]
    assert [item["alert_id"] for item in detail["alerts"]] == [row["alert_id"] for row in alerts]
    async with client(stack, elsewhere) as http:
        assert (await http.get(f"/v1/cases/{case_id}")).status_code == 403
        assert case_id not in {c["case_id"] for c in (await http.get("/v1/cases")).json()["cases"]}

    async with client(stack, analyst) as http, http.stream("GET", "/v1/cases/live") as feed:
        lines = feed.aiter_lines()
        assert (await comment(lines)).startswith("cases after ")
        acknowledged = await http.post(f"/v1/cases/{case_id}/acknowledge", json={"note": "on it"})
        change = await next_event(lines)
        again = await http.post(f"/v1/cases/{case_id}/acknowledge", json={})
        assigned = await http.post(f"/v1/cases/{case_id}/assign", json={"assignee": "kommissarie-a"})
        closed = await http.post(f"/v1/cases/{case_id}/close", json={"note": "measures in place"})
        after_close = await http.post(f"/v1/cases/{case_id}/assign", json={"assignee": "kommissarie-b"})
        detail = (await http.get(f"/v1/cases/{case_id}")).json()
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged"
    assert change.event == "case" and change.data["case_id"] == case_id and change.data["status"] == "acknowledged"
    assert change.id == str(change.data["seq"]) and change.data["seq"] > case["seq"]
    assert again.status_code == 409 and after_close.status_code == 409
    assert assigned.json()["assignee"] == "kommissarie-a" and closed.json()["status"] == "closed"
    assert {alert["status"] for alert in detail["alerts"]} == {"closed"}
    assert [step["action"] for step in detail["workflow"]] == ["acknowledged", "assigned", "closed"]

    # a new alert after the case is closed opens a new case
    await ingest(stack, breach(story.person, new_person(), 60))
    async with client(stack, analyst) as http:
        open_cases = (await http.get("/v1/cases", params={"status": "open", "limit": 500})).json()["cases"]
    [new_case] = [item for item in open_cases if item["subject"] == story.subject]
    assert new_case["case_id"] != case_id and "contact_ban_breach" in new_case["triggers"]


async def test_bulk_acknowledge_is_all_or_nothing(stack: Stack) -> None:
    analyst = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    people = [(new_person(), new_person()) for _ in range(2)]
    await ingest(stack, *(breach(person, victim, 20) for person, victim in people))
    async with database(stack) as pool:
        case_ids = [await pool.fetchval("SELECT case_id::text FROM alert_case WHERE subject = $1",
                                        alias(stack, person)) for person, _ in people]
    async with client(stack, analyst) as http:
        unknown = await http.post("/v1/cases/acknowledge",
                                  json={"case_ids": [*case_ids, "00000000-0000-0000-0000-000000000000"]})
        still = [(await http.get(f"/v1/cases/{case_id}")).json()["status"] for case_id in case_ids]
        done = await http.post("/v1/cases/acknowledge",
                               json={"case_ids": case_ids, "note": "seen at the morning brief"})
        empty = await http.post("/v1/cases/acknowledge", json={"case_ids": []})
    assert unknown.status_code == 404 and still == ["open", "open"]
    assert done.status_code == 200
    assert sorted(c["case_id"] for c in done.json()["cases"]) == sorted(case_ids)
    assert {c["status"] for c in done.json()["cases"]} == {"acknowledged"}
    assert empty.status_code == 422


async def test_history_does_not_page(stack: Stack, tmp_path: Path) -> None:
    analyst = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    late_person, backfilled_person = new_person(), new_person()
    # recorded ten days after it happened: beyond the 72-hour paging window when processed
    await ingest(stack, breach(late_person, new_person(), 30, recorded_time=at(40).isoformat()))
    history = tmp_path / "history.jsonl"
    history.write_bytes(jsonl(breach(backfilled_person, new_person(), 30)))
    loaded = subprocess.run([sys.executable, "-m", "services.cli", "ingest", "--backfill", "--as-operator",
                             str(history)],
                            capture_output=True, text=True, env=child_environment(stack.settings), timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert "accepted 1" in loaded.stdout and "backfill: " in loaded.stdout
    await stack.wait_until_idle()
    subjects = [alias(stack, late_person), alias(stack, backfilled_person)]
    async with database(stack) as pool:
        stored = await pool.fetch("SELECT subject, paged, case_id FROM alert WHERE subject = ANY($1::text[])", subjects)
        projections = await pool.fetchval("SELECT count(*) FROM risk_projection WHERE subject = ANY($1::text[])",
                                          subjects)
    assert {row["subject"] for row in stored} == set(subjects) and projections == 2
    assert {(row["paged"], row["case_id"]) for row in stored} == {(False, None)}
    async with client(stack, analyst) as http:
        queue = (await http.get("/v1/alerts", params={"limit": 500})).json()["items"]
        recorded = (await http.get("/v1/alerts", params={"history": "true", "limit": 500})).json()["items"]
        cases = (await http.get("/v1/cases", params={"limit": 500})).json()["cases"]
    assert not {item["subject"] for item in queue} & set(subjects)
    assert {item["subject"] for item in recorded} >= set(subjects)
    assert not {item["subject"] for item in cases} & set(subjects)


async def test_reviews_are_a_work_queue(stack: Stack) -> None:
    person, victim = new_person(), new_person()
    await ingest(stack, event("police.crime_report", person, at(100),
                              {"offence": "attempted_murder", "strangulation": True}, victims=[victim]))
    subject = alias(stack, person)
    async with database(stack) as pool:
        due = await pool.fetchval("SELECT next_review_at FROM risk_projection WHERE subject = $1", subject)
    runtime = await WorkerRuntime(stack.settings, default_policy(), worker_ports).ready()
    try:
        await emit_due_reviews(runtime, now=due + dt.timedelta(days=30))
    finally:
        await runtime.close()
    analyst = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    supervisor = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"], supervisor=True)
    async with client(stack, analyst) as http:
        queue = (await http.get("/v1/reviews", params={"limit": 1000})).json()["reviews"]
        [item] = [review for review in queue if review["subject"] == subject]
        # opened months ago by the scheduler's clock, the grace of a day has long passed
        assert item["overdue"] is True and item["level"] in ("high", "extreme")
        assert [r["due_at"] for r in queue] == sorted(r["due_at"] for r in queue)
        overdue = (await http.get("/v1/reviews", params={"overdue": "true", "limit": 1000})).json()["reviews"]
        not_overdue = (await http.get("/v1/reviews", params={"overdue": "false", "limit": 1000})).json()["reviews"]
        refused = await http.get("/v1/reviews/overdue-counts")
    assert item["review_id"] not in {review["review_id"] for review in not_overdue}
    async with client(stack, supervisor) as http:
        counts = (await http.get("/v1/reviews/overdue-counts")).json()["units"]
    assert item["review_id"] in {review["review_id"] for review in overdue}
    assert refused.status_code == 403
    assert any(unit["region"] == "stockholm" and unit["overdue"] >= 1 for unit in counts)
    async with client(stack, analyst) as http:
        completed = await http.post(f"/v1/reviews/{item['review_id']}/complete",
                                    json={"decision": "level_confirmed", "note": "no change since"})
        twice = await http.post(f"/v1/reviews/{item['review_id']}/complete", json={"decision": "level_confirmed"})
        wrong = await http.post(f"/v1/reviews/{item['review_id']}/complete", json={"decision": "shrug"})
    assert completed.status_code == 200, completed.text
    body = completed.json()
    assert body["status"] == "completed" and body["decision"] == "level_confirmed"
    assert body["reviewer"].startswith("intelligence_analyst-") and body["next_due_at"] is not None
    assert twice.status_code == 409 and wrong.status_code == 422
    async with database(stack) as pool:
        decision = await pool.fetchrow("SELECT reviewer, decision, note FROM review_decision WHERE review_id = $1",
                                       item["review_id"])
    assert dict(decision) == {"reviewer": body["reviewer"], "decision": "level_confirmed", "note": "no change since"}
    # completed: the next review waits for its interval, however late the scheduler runs now
    runtime = await WorkerRuntime(stack.settings, default_policy(), worker_ports).ready()
    try:
        await emit_due_reviews(runtime, now=dt.datetime.now(dt.UTC))
    finally:
        await runtime.close()
    async with database(stack) as pool:
        assert await pool.fetchval("SELECT count(*) FROM review WHERE subject = $1 AND status = 'open'", subject) == 0


async def test_the_live_risk_stage_judges_paging_by_the_wall_clock(stack: Stack) -> None:
    """The worker's own clock: an event from an hour ago pages, one from a month ago is history."""
    from projections.events import RiskEvent, Victim
    from services.adapters.postgres.pool import create_pool
    from services.adapters.postgres.store import Store
    from schemas.codec import encode_risk_event
    from streams.consume import Record
    from streams.risk import RiskProcessor

    now_ms = 1_790_000_000_000  # the processor's clock, fixed
    subjects = {f"ps_wallclock_{uuid.uuid4().hex}": age for age in (1, 24 * 30)}  # hours before the clock
    records = []
    for offset, (subject, age_hours) in enumerate(sorted(subjects.items())):
        happened = now_ms - age_hours * 3_600_000
        event = RiskEvent(
            event_id=str(uuid.uuid4()), subject=subject,
            source_type="prosecution.contact_ban_breach_reported", event_time=happened, recorded_time=happened,
            agency="prosecution", region="stockholm", unit="Åklagarmyndigheten Stockholm",
            offence="contact_ban_breach", markers=frozenset({"breach_of_conditions"}),
            victims=(Victim(f"ps_victim_{offset}", False),), attributes={},
        )
        records.append(Record("wall-clock-test", 0, offset, encode_risk_event(event.to_record()), None))
    assert stack.settings.database_url
    pool = await create_pool(stack.settings.database_url)
    try:
        processor = RiskProcessor(Store(pool), default_policy(), "wall-clock-test", clock=lambda: now_ms / 1000)
        await processor.process(records)
        paged = {row["subject"]: row["paged"] for row in await pool.fetch(
            "SELECT subject, paged FROM alert WHERE subject = ANY($1::text[]) AND trigger = 'contact_ban_breach'",
            list(subjects))}
    finally:
        await pool.close()
    assert paged == {subject: age == 1 for subject, age in subjects.items()}
