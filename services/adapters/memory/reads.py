"""The query API's reads in memory, on the twins' shared tables; `memory_query_ports` gives every
port of the query API on one set of tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.adapters.memory.access_log import MemoryAccessLog
from services.adapters.memory.reads_subjects import MemoryStreamStatusReads, MemorySubjectReads, MemoryWatchReads
from services.adapters.memory.tables import MemoryTables
from services.adapters.memory.workflow import MemoryWorkflowStore
from services.api.ports import AlertFilter, CaseFilter, QueryPorts, Row, Scope

LEVEL_ORDER = ("extreme", "high", "moderate", "low")


def _desc(moment: Any) -> float:
    return -float(moment.timestamp())


class MemoryCaseReads:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    async def queue(self, scope: Scope, filters: CaseFilter, limit: int) -> list[Row]:
        found = [
            case for case in self.tables.cases.values()
            if scope.covers(case)
            and (case["status"] != "closed" if filters.status is None else case["status"] == filters.status)
            and (filters.region is None or case["region"] == filters.region)
            and (filters.priority is None or case["priority"] == filters.priority)
            and (filters.trigger is None or filters.trigger in case["triggers"])
        ]
        if filters.sort == "priority":
            found.sort(key=lambda c: (c["priority"], _desc(c["updated_at"]), -c["seq"]))
        else:
            found.sort(key=lambda c: (_desc(c["updated_at"]), -c["seq"]))
        return [dict(case) for case in found[:limit]]

    async def case(self, case_id: str) -> Row | None:
        case = self.tables.cases.get(case_id)
        return None if case is None else dict(case)

    async def alerts(self, case_id: str) -> list[Row]:
        return _by_seq(alert for alert in self.tables.alerts.values() if alert["case_id"] == case_id)

    async def steps(self, case_id: str) -> list[Row]:
        return _steps(step for step in self.tables.case_steps if step["case_id"] == case_id)

    async def last_seq(self) -> int:
        return max((case["seq"] for case in self.tables.cases.values()), default=0)

    async def changed_after(self, seq: int, scope: Scope, limit: int) -> list[Row]:
        return _by_seq((case for case in self.tables.cases.values() if case["seq"] > seq and scope.covers(case)),
                       limit)


class MemoryAlertReads:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    async def queue(self, scope: Scope, filters: AlertFilter, limit: int, offset: int) -> tuple[list[Row], int]:
        found = [
            alert for alert in self.tables.alerts.values()
            if scope.shows_alert(alert) and alert["paged"] != filters.history
            and all(value is None or alert[column] == value for column, value in (
                ("region", filters.region), ("level_after", filters.level), ("trigger", filters.trigger),
                ("status", filters.status), ("subject", filters.subject)))
            and (filters.since is None or alert["created_at"] >= filters.since)
            and (filters.until is None or alert["created_at"] < filters.until)
        ]
        found.sort(key=lambda a: (a["priority"], _desc(a["created_at"]), -a["seq"]))
        return [dict(alert) for alert in found[offset:offset + limit]], len(found)

    async def alert(self, alert_id: str) -> Row | None:
        alert = self.tables.alerts.get(alert_id)
        return None if alert is None else dict(alert)

    async def steps(self, alert_id: str) -> list[Row]:
        return _steps(step for step in self.tables.alert_steps if step["alert_id"] == alert_id)

    async def last_seq(self) -> int:
        return max((alert["seq"] for alert in self.tables.alerts.values()), default=0)

    async def paged_after(self, seq: int, scope: Scope, limit: int) -> list[Row]:
        return _by_seq((alert for alert in self.tables.alerts.values()
                        if alert["seq"] > seq and alert["paged"] and scope.shows_alert(alert)), limit)


class MemoryReviewReads:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    async def queue(self, scope: Scope, overdue: bool | None, limit: int) -> list[Row]:
        now = self.tables.clock()
        found = [self.tables.review_view(review, now) for review in self.tables.reviews.values()
                 if review["status"] == "open" and scope.covers(review)]
        found = [review for review in found if overdue is None or review["overdue"] == overdue]
        found.sort(key=lambda r: (r["due_at"], _level_rank(r["level"]), r["review_id"]))
        return list(found[:limit])

    async def overdue_counts(self, scope: Scope) -> list[Row]:
        now = self.tables.clock()
        counts: dict[tuple[str | None, str | None], int] = {}
        for review in self.tables.reviews.values():
            if review["status"] == "open" and review["overdue_at"] <= now and scope.covers(review):
                unit = (review["region"], review["caseload"])
                counts[unit] = counts.get(unit, 0) + 1
        ordered = sorted(counts.items(), key=lambda item: (-item[1], _nulls_last(item[0][0]), _nulls_last(item[0][1])))
        return [{"region": region, "caseload": caseload, "overdue": count} for (region, caseload), count in ordered]


def _level_rank(level: str) -> int:
    return LEVEL_ORDER.index(level) if level in LEVEL_ORDER else len(LEVEL_ORDER)  # array_position: NULL last


def _nulls_last(value: str | None) -> tuple[bool, str]:
    return (value is None, value or "")


def _by_seq(found: Iterable[dict[str, Any]], limit: int | None = None) -> list[Row]:
    ordered = sorted(found, key=lambda row: row["seq"])
    return [dict(row) for row in (ordered if limit is None else ordered[:limit])]


def _steps(found: Iterable[dict[str, Any]]) -> list[Row]:
    ordered = sorted(found, key=lambda step: (step["at"], step["event_id"]))
    return [{name: step[name] for name in ("event_id", "action", "actor", "assignee", "note", "at")}
            for step in ordered]


def memory_query_ports(tables: MemoryTables | None = None) -> QueryPorts:
    """Every port of the query API on one set of tables (new ones if none are given)."""
    tables = tables if tables is not None else MemoryTables()
    return QueryPorts(cases=MemoryCaseReads(tables), alerts=MemoryAlertReads(tables),
                      reviews=MemoryReviewReads(tables), access_log=MemoryAccessLog(tables),
                      workflow=MemoryWorkflowStore(tables), subjects=MemorySubjectReads(tables),
                      watch=MemoryWatchReads(tables), status=MemoryStreamStatusReads(tables))
