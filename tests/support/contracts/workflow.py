"""The contract of the workflow's store (services/workflow/ports.py), through the workflow's own steps."""

from __future__ import annotations

import datetime as dt

import pytest

from services.api.ports import AccessEntry, AccessQuery, Scope
from services.workflow.alerts import ESCALATED_TRIGGER, Step, WorkflowAction, WorkflowRefused, record_step
from services.workflow.cases import escalate_overdue, record_case_step
from streams.topology import ALERT_WORKFLOW, ALERTS
from tests.support.contracts.world import World, ago, subject, unit_name

TIMEOUT = dt.timedelta(hours=1)


class Undone(Exception):
    pass


def entry(actor: str, *subjects: str) -> AccessEntry:
    return AccessEntry(actor=actor, role="probation_officer", action="alteration", endpoint="POST /v1/test",
                       subjects=tuple(sorted(subjects)), purpose="contract test")


class WorkflowContract:
    async def test_a_step_changes_the_alert_and_queues_its_message(self, port: World) -> None:
        alert = await port.seed.alert(caseload=unit_name())
        async with port.ports.workflow.unit() as unit:
            locked = await unit.alert_for_update(alert["alert_id"])
            assert locked is not None and locked["status"] == "open"
            updated = await record_step(unit, locked, Step(WorkflowAction.ACKNOWLEDGED, "ann", note="on it"))
        assert updated["status"] == "acknowledged" and updated["status_changed_at"] is not None
        assert updated["alert_id"] == alert["alert_id"] and updated["seq"] == alert["seq"]
        shown = await port.ports.alerts.alert(alert["alert_id"])
        assert shown is not None and shown["status"] == "acknowledged"
        steps = await port.ports.alerts.steps(alert["alert_id"])
        assert [(s["action"], s["actor"], s["note"], s["at"]) for s in steps] == [
            ("acknowledged", "ann", "on it", updated["status_changed_at"])]
        [(topic, message)] = await port.seed.outbox(alert["subject"])
        assert topic == ALERT_WORKFLOW
        assert message == {"event_id": steps[0]["event_id"], "alert_id": alert["alert_id"],
                           "subject": alert["subject"], "action": "acknowledged", "status": "acknowledged",
                           "actor": "ann", "assignee": None, "has_note": True,
                           "at": updated["status_changed_at"].isoformat()}

    async def test_assigning_keeps_the_status_and_names_the_assignee(self, port: World) -> None:
        alert = await port.seed.alert()
        async with port.ports.workflow.unit() as unit:
            locked = await unit.alert_for_update(alert["alert_id"])
            assert locked is not None
            updated = await record_step(unit, locked, Step(WorkflowAction.ASSIGNED, "ann", assignee="bo"))
            again = await record_step(unit, updated, Step(WorkflowAction.ACKNOWLEDGED, "bo"))
        assert updated["status"] == "open" and updated["assignee"] == "bo"
        assert again["status"] == "acknowledged" and again["assignee"] == "bo"

    async def test_a_refused_step_leaves_nothing(self, port: World) -> None:
        alert = await port.seed.alert(status="closed")
        with pytest.raises(WorkflowRefused, match="closed"):
            async with port.ports.workflow.unit() as unit:
                locked = await unit.alert_for_update(alert["alert_id"])
                assert locked is not None
                await unit.record_access(entry("ann", alert["subject"]))
                await record_step(unit, locked, Step(WorkflowAction.ACKNOWLEDGED, "ann"))
        assert await port.ports.alerts.steps(alert["alert_id"]) == []
        assert await port.seed.outbox(alert["subject"]) == []
        assert (await port.ports.access_log.read(AccessQuery(subject=alert["subject"]), 10, 0))[1] == 0

    async def test_a_unit_that_raises_is_undone_entirely(self, port: World) -> None:
        alert = await port.seed.alert()
        with pytest.raises(Undone):
            async with port.ports.workflow.unit() as unit:
                locked = await unit.alert_for_update(alert["alert_id"])
                assert locked is not None
                await record_step(unit, locked, Step(WorkflowAction.CLOSED, "ann", note="done"))
                await unit.record_access(entry("ann", alert["subject"]))
                raise Undone
        shown = await port.ports.alerts.alert(alert["alert_id"])
        assert shown is not None and shown["status"] == "open" and shown["status_changed_at"] is None
        assert await port.ports.alerts.steps(alert["alert_id"]) == []
        assert await port.seed.outbox(alert["subject"]) == []
        assert (await port.ports.access_log.read(AccessQuery(subject=alert["subject"]), 10, 0))[1] == 0

    async def test_the_access_row_commits_with_the_step(self, port: World) -> None:
        alert = await port.seed.alert()
        async with port.ports.workflow.unit() as unit:
            locked = await unit.alert_for_update(alert["alert_id"])
            assert locked is not None
            await record_step(unit, locked, Step(WorkflowAction.ACKNOWLEDGED, "ann"))
            await unit.record_access(entry("ann", alert["subject"]))
        rows, total = await port.ports.access_log.read(AccessQuery(subject=alert["subject"]), 10, 0)
        assert total == 1 and rows[0]["actor"] == "ann" and rows[0]["action"] == "alteration"

    async def test_unknown_rows_load_as_none(self, port: World) -> None:
        unknown = "00000000-0000-4000-8000-000000000000"
        async with port.ports.workflow.unit() as unit:
            assert await unit.alert_for_update(unknown) is None
            assert await unit.case_for_update(unknown) is None
            assert await unit.review_for_update(unknown) is None
            assert await unit.cases_for_update([unknown]) == {}

    async def test_a_case_step_reaches_the_alerts_it_still_fits(self, port: World) -> None:
        case = await port.seed.case(caseload=unit_name())
        first = await port.seed.alert(subject=case["subject"], case_id=case["case_id"])
        done = await port.seed.alert(subject=case["subject"], case_id=case["case_id"], status="acknowledged")
        closed = await port.seed.alert(subject=case["subject"], case_id=case["case_id"], status="closed")
        async with port.ports.workflow.unit() as unit:
            locked = await unit.cases_for_update([case["case_id"], "00000000-0000-4000-8000-000000000000"])
            assert list(locked) == [case["case_id"]]
            updated = await record_case_step(unit, locked[case["case_id"]], Step(WorkflowAction.ACKNOWLEDGED, "ann"))
        assert updated["status"] == "acknowledged" and updated["seq"] > case["seq"]
        statuses = {a["alert_id"]: a["status"] for a in await port.ports.cases.alerts(case["case_id"])}
        assert statuses == {first["alert_id"]: "acknowledged", done["alert_id"]: "acknowledged",
                            closed["alert_id"]: "closed"}
        assert len(await port.ports.alerts.steps(first["alert_id"])) == 1
        assert await port.ports.alerts.steps(done["alert_id"]) == []
        [case_step] = await port.ports.cases.steps(case["case_id"])
        assert case_step["action"] == "acknowledged" and case_step["at"] == updated["updated_at"]
        messages = await port.seed.outbox(case["subject"])
        assert [m.get("case_id", m.get("alert_id")) for _, m in messages] == [first["alert_id"], case["case_id"]]
        with pytest.raises(WorkflowRefused, match="acknowledged already"):
            async with port.ports.workflow.unit() as unit:
                again = await unit.case_for_update(case["case_id"])
                assert again is not None
                await record_case_step(unit, again, Step(WorkflowAction.ACKNOWLEDGED, "bo"))

    async def test_closing_a_case_closes_its_alerts(self, port: World) -> None:
        case = await port.seed.case()
        alert = await port.seed.alert(subject=case["subject"], case_id=case["case_id"])
        async with port.ports.workflow.unit() as unit:
            locked = await unit.case_for_update(case["case_id"])
            assert locked is not None
            assigned = await record_case_step(unit, locked, Step(WorkflowAction.ASSIGNED, "ann", assignee="bo"))
            closed = await record_case_step(unit, assigned, Step(WorkflowAction.CLOSED, "ann", note="moved away"))
        assert assigned["status"] == "open" and assigned["assignee"] == "bo"
        assert closed["status"] == "closed" and closed["assignee"] == "bo"
        shown = await port.ports.alerts.alert(alert["alert_id"])
        assert shown is not None and shown["status"] == "closed"

    async def test_an_overdue_case_escalates_once_with_its_most_urgent_alert(self, port: World) -> None:
        case = await port.seed.case(opened_at=ago(hours=2), caseload=unit_name())
        routine = await port.seed.alert(subject=case["subject"], case_id=case["case_id"], priority=3)
        older = await port.seed.alert(subject=case["subject"], case_id=case["case_id"], priority=1)
        urgent = await port.seed.alert(subject=case["subject"], case_id=case["case_id"], priority=1)
        assert await escalate_overdue(port.ports.workflow, TIMEOUT) == 1
        escalated = await port.ports.alerts.alert(urgent["alert_id"])
        assert escalated is not None and escalated["status"] == "escalated"
        for other in (routine, older):
            shown = await port.ports.alerts.alert(other["alert_id"])
            assert shown is not None and shown["status"] == "open"
        shown_case = await port.ports.cases.case(case["case_id"])
        assert shown_case is not None and shown_case["escalated"] and shown_case["status"] == "open"
        assert [s["action"] for s in await port.ports.cases.steps(case["case_id"])] == ["escalated"]
        messages = await port.seed.outbox(case["subject"])
        assert [topic for topic, _ in messages] == [ALERT_WORKFLOW, ALERTS]
        raised = messages[1][1]
        assert raised["trigger"] == ESCALATED_TRIGGER and raised["escalated_from"] == urgent["alert_id"]
        assert raised["explanation"] == f"Not acknowledged within 1 hour: {urgent['explanation']}"
        assert raised["audience"] == {"region": urgent["region"], "caseload": urgent["caseload"], "supervisor": True}
        new = await port.ports.alerts.alert(raised["alert_id"])
        assert new is not None and new["for_supervisor"] and new["escalated_from"] == urgent["alert_id"]
        assert new["seq"] > urgent["seq"] and new["status"] == "open" and new["case_id"] is None
        assert await escalate_overdue(port.ports.workflow, TIMEOUT) == 0  # once, and not the new alert either

    async def test_what_does_not_escalate(self, port: World) -> None:
        recent = await port.seed.case(opened_at=ago(minutes=10))
        reopened = await port.seed.case(opened_at=ago(hours=5))
        await port.seed.case_step(reopened["case_id"], "reopened", "riskwatch", ago(minutes=5))
        acknowledged = await port.seed.case(opened_at=ago(hours=5), status="acknowledged")
        history = await port.seed.alert(created_at=ago(hours=5), paged=False)
        assert await escalate_overdue(port.ports.workflow, TIMEOUT) == 0
        for case in (recent, reopened, acknowledged):
            shown = await port.ports.cases.case(case["case_id"])
            assert shown is not None and not shown["escalated"]
        shown_alert = await port.ports.alerts.alert(history["alert_id"])
        assert shown_alert is not None and shown_alert["status"] == "open"

    async def test_a_case_reopened_long_ago_escalates_and_one_without_open_alerts_is_flagged(
            self, port: World) -> None:
        case = await port.seed.case(opened_at=ago(hours=9))
        await port.seed.case_step(case["case_id"], "reopened", "riskwatch", ago(hours=3))
        assert await escalate_overdue(port.ports.workflow, TIMEOUT) == 1
        shown = await port.ports.cases.case(case["case_id"])
        assert shown is not None and shown["escalated"]
        assert await port.seed.outbox(case["subject"]) == []  # no open alert: nothing to page

    async def test_a_paged_alert_in_no_case_escalates_on_its_own(self, port: World) -> None:
        alert = await port.seed.alert(created_at=ago(hours=2))
        await port.seed.alert(created_at=ago(hours=2), trigger=ESCALATED_TRIGGER, for_supervisor=True)
        assert await escalate_overdue(port.ports.workflow, TIMEOUT) == 1
        shown = await port.ports.alerts.alert(alert["alert_id"])
        assert shown is not None and shown["status"] == "escalated"

    async def test_completing_a_review(self, port: World) -> None:
        review = await port.seed.review(caseload=unit_name(), interval_hours=48, overdue_at=ago(hours=1))
        async with port.ports.workflow.unit() as unit:
            locked = await unit.review_for_update(review["review_id"])
            assert locked is not None and locked["status"] == "open" and locked["overdue"]
            done = await unit.complete_review(review["review_id"], "00000000-0000-4000-8000-0000000000aa", "ann",
                                              "level_confirmed", None)
        assert done["status"] == "completed" and done["reviewer"] == "ann" and done["decision"] == "level_confirmed"
        assert done["next_due_at"] == done["completed_at"] + dt.timedelta(hours=48)
        assert await port.ports.reviews.queue(Scope(None, supervisor=True), None, 100) == []

    async def test_a_subject_seeded_twice_keeps_one_open_case(self, port: World) -> None:
        person = subject()
        await port.seed.case(subject=person)
        await port.seed.case(subject=person, status="closed")
        with pytest.raises(Exception, match=r"(?i)open case|duplicate key"):
            await port.seed.case(subject=person)

