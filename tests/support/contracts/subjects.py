"""The contract of the subject, watch-list and stream-status reads (services/api/ports.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from services.api.ports import AlertFilter, Scope
from services.workflow.alerts import Step, WorkflowAction, record_step
from tests.support.contracts.world import World, ago, now, subject, unit_name


def event_id() -> str:
    return str(uuid.uuid4())


class SubjectReadsContract:
    async def test_a_projection_and_its_identity(self, port: World) -> None:
        person = subject()
        await port.seed.projection(person, level="extreme", score=42.5, caseload="Frivård X",
                                   assessment={"components": {"recency": 2.0}, "override": None, "explanation": "x"})
        shown = await port.ports.subjects.projection(person)
        assert shown is not None
        assert (shown["subject"], shown["level"], shown["score"], shown["caseload"]) == (
            person, "extreme", 42.5, "Frivård X")
        assert shown["assessment"]["components"] == {"recency": 2.0}
        assert set(shown) == {"subject", "assessment", "level", "score", "region", "caseload", "policy_version",
                              "assessed_at", "next_review_at"}
        assert await port.ports.subjects.projection(subject()) is None
        await port.seed.identity(person, "19811218-9876", "personal_identity_number")
        assert await port.ports.subjects.identity(person) == {"identity_number": "19811218-9876",
                                                              "kind": "personal_identity_number"}
        assert await port.ports.subjects.identity(subject()) is None

    async def test_the_history_latest_points_newest_first(self, port: World) -> None:
        person = subject()
        points = [(event_id(), ago(days=days)) for days in (3, 2, 1)]
        for identifier, moment in points:
            await port.seed.history_point(person, identifier, event_time=moment)
        await port.seed.history_point(subject(), event_id())
        history = await port.ports.subjects.history(person, 2)
        assert [p["event_id"] for p in history] == [points[2][0], points[1][0]]
        assert set(history[0]) == {"event_id", "event_time", "level", "score", "explanation"}

    async def test_the_archived_events_asked_for(self, port: World) -> None:
        person = subject()
        later, earlier, missing = event_id(), event_id(), event_id()
        await port.seed.archived_event(later, person, "police.crime_report", event_time=ago(days=1))
        await port.seed.archived_event(earlier, person, "social_services.separation_reported",
                                       agency="social_services", event_time=ago(days=2))
        events = await port.ports.subjects.archived_events([later, earlier, missing])
        assert [(e["event_id"], e["source_type"], e["agency"]) for e in events] == [
            (earlier, "social_services.separation_reported", "social_services"),
            (later, "police.crime_report", "police")]
        assert await port.ports.subjects.archived_events([]) == []


class WatchReadsContract:
    async def test_watch_events_of_the_caseloads_in_the_window(self, port: World) -> None:
        mine, theirs = unit_name(), unit_name()
        inside, other, outside = subject(), subject(), subject()
        await port.seed.projection(inside, caseload=mine, level="high", score=7.0)
        await port.seed.projection(other, caseload=theirs)
        first, second = event_id(), event_id()
        await port.seed.archived_event(second, inside, "prison_probation.released", event_time=ago(days=1),
                                       body=b"two")
        await port.seed.archived_event(first, inside, "prison_probation.release_scheduled", event_time=ago(days=3),
                                       body=b"one")
        await port.seed.archived_event(event_id(), inside, "police.crime_report", event_time=ago(days=1))
        await port.seed.archived_event(event_id(), inside, "prison_probation.released", event_time=ago(days=40))
        await port.seed.archived_event(event_id(), other, "prison_probation.released", event_time=ago(days=1))
        await port.seed.archived_event(event_id(), outside, "prison_probation.released", event_time=ago(days=1))
        types = ["prison_probation.release_scheduled", "prison_probation.released"]
        found = await port.ports.watch.watch_events(types, ago(days=30), now(), [mine])
        assert [(e["event_id"], e["body"], e["level"], e["score"], e["caseload"]) for e in found] == [
            (first, b"one", "high", 7.0, mine), (second, b"two", "high", 7.0, mine)]
        everyone = await port.ports.watch.watch_events(types, ago(days=30), now(), None)
        assert {e["subject"] for e in everyone} >= {inside, other} and outside not in {e["subject"] for e in everyone}

    async def test_the_priority_list(self, port: World) -> None:
        low, high, tied_b, tied_a = subject(), subject(), "ps_b" + uuid.uuid4().hex, "ps_a" + uuid.uuid4().hex
        await port.seed.projection(low, region="syd", score=1.0)
        await port.seed.projection(high, region="syd", score=9.0,
                                   assessment={"components": {"gravity": 3.0}, "override": {"level": "high"}})
        await port.seed.projection(tied_b, region="syd", score=5.0)
        await port.seed.projection(tied_a, region="syd", score=5.0)
        await port.seed.projection(subject(), region=None, score=3.0)
        rows, total = await port.ports.watch.priority("syd", 10, 0)
        assert total == 4 and [r["subject"] for r in rows] == [high, tied_a, tied_b, low]
        assert rows[0]["overridden"] is True and rows[1]["overridden"] is False
        assert rows[0]["components"] == {"gravity": 3.0}
        rows, total = await port.ports.watch.priority("syd", 2, 1)
        assert total == 4 and [r["subject"] for r in rows] == [tied_a, tied_b]
        rows, total = await port.ports.watch.priority(None, 10, 0)
        assert total == 1 and rows[0]["score"] == 3.0


class StreamStatusContract:
    async def test_the_alert_latency_of_the_last_hour(self, port: World) -> None:
        empty = await port.ports.status.alert_latency()
        assert empty == {"alerts": 0, "p50_seconds": None, "p95_seconds": None, "max_seconds": None}
        moment = now()
        for seconds in (1.0, 2.0, 3.0, 10.0):
            cause = event_id()
            await port.seed.accepted(cause, moment - dt.timedelta(seconds=seconds))
            await port.seed.alert(causing_event_id=cause, created_at=moment)
        early = event_id()
        await port.seed.accepted(early, moment + dt.timedelta(seconds=5))  # clocks apart: counted as 0
        await port.seed.alert(causing_event_id=early, created_at=moment)
        old = event_id()
        await port.seed.accepted(old, ago(hours=3))
        await port.seed.alert(causing_event_id=old, created_at=ago(hours=2))
        await port.seed.alert(created_at=moment)  # not through the gateway
        latency = await port.ports.status.alert_latency()
        assert latency["alerts"] == 5
        assert latency["p50_seconds"] == pytest.approx(2.0)
        assert latency["p95_seconds"] == pytest.approx(3.0 + 0.8 * 7.0)
        assert latency["max_seconds"] == pytest.approx(10.0)

    async def test_the_backlogs(self, port: World) -> None:
        assert await port.ports.status.backlogs() == {
            "outbox_backlog": 0, "dead_letters": 0, "dead_letters_last_hour": 0, "unacknowledged_alerts": 0,
            "escalated_alerts": 0}
        alert = await port.seed.alert()
        await port.seed.alert(status="escalated")
        await port.seed.alert(status="closed")
        async with port.ports.workflow.unit() as unit:
            locked = await unit.alert_for_update(alert["alert_id"])
            assert locked is not None
            await record_step(unit, locked, Step(WorkflowAction.ASSIGNED, "ann", assignee="bo"))
        await port.seed.dead_letter(ago(hours=2))
        await port.seed.dead_letter(ago(minutes=2))
        assert await port.ports.status.backlogs() == {
            "outbox_backlog": 1, "dead_letters": 2, "dead_letters_last_hour": 1, "unacknowledged_alerts": 1,
            "escalated_alerts": 1}
        rows, total = await port.ports.alerts.queue(Scope(None, supervisor=True), AlertFilter(), 10, 0)
        assert total == 3 and len(rows) == 3
