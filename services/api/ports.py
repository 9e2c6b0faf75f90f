"""What the query endpoints need of storage: the reads of cases, alerts and reviews, the access
log, and the workflow's store (services/workflow/ports.py) for the steps.

Rows are plain mappings of column name to value, as services/workflow/ports.py describes them
(ALERT_FIELDS, CASE_FIELDS, REVIEW_FIELDS, STEP_FIELDS). No port carries a driver type.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from services.workflow.ports import AccessEntry, Row, StoreUnavailable, WorkflowStore

__all__ = [
    "AccessEntry", "AccessLog", "AccessQuery", "AlertFilter", "AlertReads", "CaseFilter", "CaseReads",
    "QueryPorts", "ReviewReads", "Row", "Scope", "StoreUnavailable",
]


@dataclass(frozen=True, slots=True)
class Scope:
    """The rows a user may see: every one (`field` None, a national scope) or those whose `field`
    is one of `units`; alerts meant for supervisors only if `supervisor`."""

    field: Literal["region", "caseload"] | None
    units: frozenset[str] = frozenset()
    supervisor: bool = False

    def covers(self, row: Row) -> bool:
        return self.field is None or row[self.field] in self.units

    def shows_alert(self, row: Row) -> bool:
        return self.covers(row) and (self.supervisor or not row["for_supervisor"])


@dataclass(frozen=True, slots=True)
class CaseFilter:
    status: str | None = None  # None: every case not closed
    region: str | None = None
    trigger: str | None = None  # one of the case's triggers
    priority: int | None = None
    sort: Literal["priority", "updated"] = "priority"


@dataclass(frozen=True, slots=True)
class AlertFilter:
    history: bool = False  # the alerts recorded as history instead of the paged ones
    region: str | None = None
    level: str | None = None  # level after
    trigger: str | None = None
    status: str | None = None
    subject: str | None = None
    since: dt.datetime | None = None  # raised at or after
    until: dt.datetime | None = None  # raised before


@dataclass(frozen=True, slots=True)
class AccessQuery:
    actor: str | None = None
    subject: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


class CaseReads(Protocol):
    async def queue(self, scope: Scope, filters: CaseFilter, limit: int) -> list[Row]:
        """Cases in scope; `sort=priority`: priority, then most recently updated (then seq) first;
        `sort=updated`: most recently updated (then seq) first."""
        ...

    async def case(self, case_id: str) -> Row | None: ...

    async def alerts(self, case_id: str) -> list[Row]:
        """The case's alerts in `seq` order."""
        ...

    async def steps(self, case_id: str) -> list[Row]:
        """The case's workflow, by time then event id."""
        ...

    async def last_seq(self) -> int:
        """The highest case `seq`, 0 without cases: the live feed starts after it."""
        ...

    async def changed_after(self, seq: int, scope: Scope, limit: int) -> list[Row]:
        """Cases in scope whose `seq` is above `seq`, in `seq` order."""
        ...


class AlertReads(Protocol):
    async def queue(self, scope: Scope, filters: AlertFilter, limit: int, offset: int) -> tuple[list[Row], int]:
        """Alerts in scope by priority, then newest first (then seq); and how many match in all."""
        ...

    async def alert(self, alert_id: str) -> Row | None: ...

    async def steps(self, alert_id: str) -> list[Row]:
        """The alert's workflow, by time then event id."""
        ...

    async def last_seq(self) -> int: ...

    async def paged_after(self, seq: int, scope: Scope, limit: int) -> list[Row]:
        """Paged alerts in scope whose `seq` is above `seq`, in `seq` order."""
        ...


class ReviewReads(Protocol):
    async def queue(self, scope: Scope, overdue: bool | None, limit: int) -> list[Row]:
        """Open reviews in scope by due time, then level (extreme first), then id; `overdue` filters
        on being past `overdue_at` now."""
        ...

    async def overdue_counts(self, scope: Scope) -> list[Row]:
        """Per (region, caseload) in scope, the open reviews overdue now (`overdue`): most first, then
        region and caseload with None last."""
        ...


class AccessLog(Protocol):
    async def record(self, entry: AccessEntry) -> None: ...

    def recorded(self, entry: AccessEntry) -> AbstractAsyncContextManager[None]:
        """The row written on entering and committed only if the block ends normally."""
        ...

    async def read(self, query: AccessQuery, limit: int, offset: int) -> tuple[list[Row], int]:
        """The matching rows newest first (by id), with id, at, actor, role, action, endpoint, subjects,
        purpose, query; and how many match in all."""
        ...


@dataclass(frozen=True, slots=True)
class QueryPorts:
    cases: CaseReads
    alerts: AlertReads
    reviews: ReviewReads
    access_log: AccessLog
    workflow: WorkflowStore


