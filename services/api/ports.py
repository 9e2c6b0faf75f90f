"""What the query endpoints need of storage: the reads of cases, alerts and reviews, the access
log, and the workflow's store (services/workflow/ports.py) for the steps.

Rows are plain mappings of column name to value, as services/workflow/ports.py describes them
(ALERT_FIELDS, CASE_FIELDS, REVIEW_FIELDS, STEP_FIELDS). No port carries a driver type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from services.workflow.ports import AccessEntry, Row, StoreUnavailable, WorkflowStore

__all__ = [
    "AccessEntry", "AccessLog", "AccessQuery", "AlertFilter", "AlertReads", "CaseFilter", "CaseReads",
    "QueryPorts", "ReviewReads", "Row", "Scope", "StoreUnavailable", "StreamStatusReads", "SubjectReads",
    "WatchReads",
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


class SubjectReads(Protocol):
    async def projection(self, subject: str) -> Row | None:
        """The subject's current projection: subject, assessment (the assessment document), level, score,
        region, caseload, policy_version, assessed_at, next_review_at."""
        ...

    async def history(self, subject: str, limit: int) -> list[Row]:
        """The latest `limit` points of the risk timeline (event_id, event_time, level, score, explanation),
        newest first (by event time, then event id)."""
        ...

    async def archived_events(self, event_ids: Sequence[str]) -> list[Row]:
        """Those of these events that are archived (event_id, source_type, agency, event_time), by event
        time then id."""
        ...

    async def identity(self, subject: str) -> Row | None:
        """The subject's clear identity (identity_number, kind), if known."""
        ...


class WatchReads(Protocol):
    async def watch_events(self, source_types: Sequence[str], start: dt.datetime, end: dt.datetime,
                           caseloads: Sequence[str] | None) -> list[Row]:
        """Archived events of these types with start <= event_time < end, of subjects with a projection
        (and, unless `caseloads` is None, whose current caseload is one of them): event_id, subject,
        source_type, event_time, body (the archived event's bytes) and the projection's level, score,
        caseload; by event time then event id."""
        ...

    async def priority(self, region: str | None, limit: int, offset: int) -> tuple[list[Row], int]:
        """Projections of the region (None: those without one) by score, highest first, then subject: subject,
        level, score, caseload, assessed_at, components (the assessment's), overridden; and how many in all."""
        ...


class StreamStatusReads(Protocol):
    async def alert_latency(self) -> Row:
        """Alerts committed in the last hour (escalations aside) whose causing event the gateway accepted:
        alerts (how many) and p50_seconds, p95_seconds, max_seconds from acceptance to commit (None
        without any)."""
        ...

    async def backlogs(self) -> Row:
        """outbox_backlog, dead_letters, dead_letters_last_hour, unacknowledged_alerts, escalated_alerts."""
        ...


@dataclass(frozen=True, slots=True)
class QueryPorts:
    cases: CaseReads
    alerts: AlertReads
    reviews: ReviewReads
    access_log: AccessLog
    workflow: WorkflowStore
    subjects: SubjectReads
    watch: WatchReads
    status: StreamStatusReads


