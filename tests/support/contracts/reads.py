"""The contract of the query reads (services/api/ports.py): scopes, filters, ordering, paging, feeds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from services.api.ports import AlertFilter, CaseFilter, Row, Scope
from tests.support.contracts.world import World, ago, now, unit_name

NATIONAL = Scope(None, supervisor=True)


def caseload(*names: str, supervisor: bool = False) -> Scope:
    return Scope("caseload", frozenset(names), supervisor)


def ids(rows: Sequence[Row], key: str) -> list[Any]:
    return [row[key] for row in rows]


class CaseReadsContract:
    async def test_the_queue_keeps_to_the_scope(self, port: World) -> None:
        mine, theirs = unit_name(), unit_name()
        a = await port.seed.case(caseload=mine, region="stockholm")
        b = await port.seed.case(caseload=theirs, region="syd")
        c = await port.seed.case(caseload=None, region=None)
        cases = port.ports.cases
        assert ids(await cases.queue(caseload(mine), CaseFilter(), 100), "case_id") == [a["case_id"]]
        assert ids(await cases.queue(Scope("region", frozenset({"syd"})), CaseFilter(), 100), "case_id") == [
            b["case_id"]]
        assert {r["case_id"] for r in await cases.queue(NATIONAL, CaseFilter(), 100)} == {
            a["case_id"], b["case_id"], c["case_id"]}
        assert await cases.queue(caseload(), CaseFilter(), 100) == []

    async def test_the_filters(self, port: World) -> None:
        unit = unit_name()
        scope = caseload(unit)
        open_ = await port.seed.case(caseload=unit, priority=1, triggers=["release_at_high"], region="syd")
        acknowledged = await port.seed.case(caseload=unit, status="acknowledged", triggers=["level_crossed"])
        closed = await port.seed.case(caseload=unit, status="closed", priority=1)
        cases = port.ports.cases
        assert {r["case_id"] for r in await cases.queue(scope, CaseFilter(), 100)} == {
            open_["case_id"], acknowledged["case_id"]}
        assert ids(await cases.queue(scope, CaseFilter(status="closed"), 100), "case_id") == [closed["case_id"]]
        assert ids(await cases.queue(scope, CaseFilter(trigger="release_at_high"), 100), "case_id") == [
            open_["case_id"]]
        assert ids(await cases.queue(scope, CaseFilter(priority=1), 100), "case_id") == [open_["case_id"]]
        assert ids(await cases.queue(scope, CaseFilter(region="syd"), 100), "case_id") == [open_["case_id"]]

    async def test_the_orders_and_the_limit(self, port: World) -> None:
        unit = unit_name()
        scope = caseload(unit)
        old_urgent = await port.seed.case(caseload=unit, priority=1, updated_at=ago(hours=3))
        new_routine = await port.seed.case(caseload=unit, priority=3, updated_at=ago(hours=1))
        new_urgent = await port.seed.case(caseload=unit, priority=1, updated_at=ago(hours=2))
        same_time = ago(hours=4)
        first_tied = await port.seed.case(caseload=unit, priority=2, updated_at=same_time)
        second_tied = await port.seed.case(caseload=unit, priority=2, updated_at=same_time)
        cases = port.ports.cases
        assert ids(await cases.queue(scope, CaseFilter(), 100), "case_id") == [
            new_urgent["case_id"], old_urgent["case_id"], second_tied["case_id"], first_tied["case_id"],
            new_routine["case_id"]]
        assert ids(await cases.queue(scope, CaseFilter(sort="updated"), 100), "case_id") == [
            new_routine["case_id"], new_urgent["case_id"], old_urgent["case_id"], second_tied["case_id"],
            first_tied["case_id"]]
        assert ids(await cases.queue(scope, CaseFilter(sort="updated"), 2), "case_id") == [
            new_routine["case_id"], new_urgent["case_id"]]

    async def test_one_case_its_alerts_and_its_steps(self, port: World) -> None:
        case = await port.seed.case()
        first = await port.seed.alert(subject=case["subject"], case_id=case["case_id"])
        second = await port.seed.alert(subject=case["subject"], case_id=case["case_id"], paged=True)
        await port.seed.alert(subject=case["subject"])
        await port.seed.case_step(case["case_id"], "reopened", "riskwatch", ago(minutes=1))
        await port.seed.case_step(case["case_id"], "assigned", "ann", ago(minutes=5))
        shown = await port.ports.cases.case(case["case_id"])
        assert shown == case
        assert ids(await port.ports.cases.alerts(case["case_id"]), "alert_id") == [first["alert_id"],
                                                                                 second["alert_id"]]
        steps = await port.ports.cases.steps(case["case_id"])
        assert [s["action"] for s in steps] == ["assigned", "reopened"]
        assert set(steps[0]) == {"event_id", "action", "actor", "assignee", "note", "at"}
        assert await port.ports.cases.case("00000000-0000-4000-8000-000000000000") is None

    async def test_the_feed_of_changes(self, port: World) -> None:
        start = await port.ports.cases.last_seq()
        unit = unit_name()
        a = await port.seed.case(caseload=unit)
        await port.seed.case(caseload=unit_name())
        c = await port.seed.case(caseload=unit)
        assert await port.ports.cases.last_seq() > start
        changed = await port.ports.cases.changed_after(start, caseload(unit), 100)
        assert ids(changed, "case_id") == [a["case_id"], c["case_id"]]
        assert ids(await port.ports.cases.changed_after(a["seq"], caseload(unit), 100), "case_id") == [c["case_id"]]
        assert len(await port.ports.cases.changed_after(start, NATIONAL, 2)) == 2


class AlertReadsContract:
    async def test_the_queue_keeps_to_the_scope_and_the_supervisors(self, port: World) -> None:
        unit = unit_name()
        plain = await port.seed.alert(caseload=unit)
        supervised = await port.seed.alert(caseload=unit, for_supervisor=True, trigger="escalated")
        await port.seed.alert(caseload=unit_name())
        alerts = port.ports.alerts
        rows, total = await alerts.queue(caseload(unit), AlertFilter(), 50, 0)
        assert (ids(rows, "alert_id"), total) == ([plain["alert_id"]], 1)
        rows, total = await alerts.queue(caseload(unit, supervisor=True), AlertFilter(), 50, 0)
        assert {r["alert_id"] for r in rows} == {plain["alert_id"], supervised["alert_id"]} and total == 2
        assert rows[0] == plain or rows[1] == plain

    async def test_the_filters(self, port: World) -> None:
        unit = unit_name()
        scope = caseload(unit)
        a = await port.seed.alert(caseload=unit, level_after="extreme", trigger="release_at_high", region="syd",
                                  created_at=ago(hours=3))
        b = await port.seed.alert(caseload=unit, status="acknowledged", created_at=ago(hours=1))
        history = await port.seed.alert(caseload=unit, paged=False)
        alerts = port.ports.alerts

        async def found(filters: AlertFilter) -> list[object]:
            rows, total = await alerts.queue(scope, filters, 50, 0)
            assert total == len(rows)
            return ids(rows, "alert_id")

        assert await found(AlertFilter()) == [b["alert_id"], a["alert_id"]]
        assert await found(AlertFilter(history=True)) == [history["alert_id"]]
        assert await found(AlertFilter(level="extreme")) == [a["alert_id"]]
        assert await found(AlertFilter(trigger="release_at_high")) == [a["alert_id"]]
        assert await found(AlertFilter(region="syd")) == [a["alert_id"]]
        assert await found(AlertFilter(status="acknowledged")) == [b["alert_id"]]
        assert await found(AlertFilter(subject=a["subject"])) == [a["alert_id"]]
        assert await found(AlertFilter(since=ago(hours=2))) == [b["alert_id"]]
        assert await found(AlertFilter(until=ago(hours=2))) == [a["alert_id"]]
        assert await found(AlertFilter(since=b["created_at"], until=b["created_at"] + dt.timedelta(seconds=1))) == [
            b["alert_id"]]

    async def test_the_order_and_the_pages(self, port: World) -> None:
        unit = unit_name()
        scope = caseload(unit)
        moment = ago(hours=1)
        routine = await port.seed.alert(caseload=unit, priority=3, created_at=now())
        old_urgent = await port.seed.alert(caseload=unit, priority=1, created_at=ago(hours=2))
        tied_first = await port.seed.alert(caseload=unit, priority=1, created_at=moment)
        tied_second = await port.seed.alert(caseload=unit, priority=1, created_at=moment)
        order = [tied_second["alert_id"], tied_first["alert_id"], old_urgent["alert_id"], routine["alert_id"]]
        rows, total = await port.ports.alerts.queue(scope, AlertFilter(), 50, 0)
        assert (ids(rows, "alert_id"), total) == (order, 4)
        rows, total = await port.ports.alerts.queue(scope, AlertFilter(), 2, 1)
        assert (ids(rows, "alert_id"), total) == (order[1:3], 4)
        rows, total = await port.ports.alerts.queue(scope, AlertFilter(), 2, 10)
        assert (rows, total) == ([], 4)

    async def test_one_alert_and_its_steps(self, port: World) -> None:
        alert = await port.seed.alert()
        assert await port.ports.alerts.alert(alert["alert_id"]) == alert
        assert await port.ports.alerts.steps(alert["alert_id"]) == []
        assert await port.ports.alerts.alert("00000000-0000-4000-8000-000000000000") is None

    async def test_the_feed_of_paged_alerts(self, port: World) -> None:
        start = await port.ports.alerts.last_seq()
        unit = unit_name()
        a = await port.seed.alert(caseload=unit)
        await port.seed.alert(caseload=unit, paged=False)
        await port.seed.alert(caseload=unit, for_supervisor=True)
        d = await port.seed.alert(caseload=unit)
        assert await port.ports.alerts.last_seq() > start
        assert ids(await port.ports.alerts.paged_after(start, caseload(unit), 100), "alert_id") == [
            a["alert_id"], d["alert_id"]]
        assert len(await port.ports.alerts.paged_after(start, caseload(unit, supervisor=True), 100)) == 3
        assert ids(await port.ports.alerts.paged_after(start, caseload(unit), 1), "alert_id") == [a["alert_id"]]


class ReviewReadsContract:
    async def test_the_queue(self, port: World) -> None:
        unit = unit_name()
        scope = caseload(unit)
        due = ago(hours=5)
        high = await port.seed.review(caseload=unit, due_at=due, level="high")
        extreme = await port.seed.review(caseload=unit, due_at=due, level="extreme")
        later = await port.seed.review(caseload=unit, due_at=ago(hours=1), overdue_at=ago(minutes=1))
        await port.seed.review(caseload=unit, due_at=ago(hours=9), status="completed")
        await port.seed.review(caseload=unit_name(), due_at=ago(hours=9))
        reviews = port.ports.reviews
        assert ids(await reviews.queue(scope, None, 100), "review_id") == [
            extreme["review_id"], high["review_id"], later["review_id"]]
        assert ids(await reviews.queue(scope, True, 100), "review_id") == [later["review_id"]]
        assert ids(await reviews.queue(scope, False, 100), "review_id") == [extreme["review_id"], high["review_id"]]
        assert ids(await reviews.queue(scope, None, 1), "review_id") == [extreme["review_id"]]
        [shown] = await reviews.queue(scope, True, 100)
        assert shown == later and shown["overdue"] is True

    async def test_the_overdue_counts(self, port: World) -> None:
        first, second = "Frivård A " + unit_name(), "Frivård B " + unit_name()
        for _ in range(2):
            await port.seed.review(caseload=second, region="syd", overdue_at=ago(hours=1))
        await port.seed.review(caseload=first, region="syd", overdue_at=ago(hours=1))
        await port.seed.review(caseload=first, region=None, overdue_at=ago(hours=1))
        await port.seed.review(caseload=first, region="syd", overdue_at=now() + dt.timedelta(hours=1))
        await port.seed.review(caseload=first, region="syd", overdue_at=ago(hours=1), status="completed")
        counts = await port.ports.reviews.overdue_counts(caseload(first, second))
        assert [dict(row) for row in counts] == [
            {"region": "syd", "caseload": second, "overdue": 2},
            {"region": "syd", "caseload": first, "overdue": 1},
            {"region": None, "caseload": first, "overdue": 1},
        ]
        assert await port.ports.reviews.overdue_counts(caseload(unit_name())) == []
