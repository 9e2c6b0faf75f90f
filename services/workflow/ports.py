"""The workflow's store: what the alert, case and review steps and the escalation need of storage.

A step is done inside one unit of work (`WorkflowStore.unit()`): the rows it changes are locked
when loaded, and the step's rows, its outbox messages and the access-log row commit together,
or none do (an exception inside the unit undoes everything in it).

Rows are plain mappings of column name to value: an alert, a case or a review as the API shows
it (see ALERT_FIELDS, CASE_FIELDS, REVIEW_FIELDS); ids are text, times aware datetimes in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from projections.alerts import AlertRecord

Row = Mapping[str, Any]

ALERT_FIELDS = (
    "alert_id", "seq", "subject", "trigger", "priority", "status", "level_before", "level_after", "score",
    "explanation", "factors", "region", "caseload", "event_time", "created_at", "causing_event_id",
    "policy_version", "assignee", "for_supervisor", "escalated_from", "status_changed_at", "paged", "case_id",
)
CASE_FIELDS = (
    "case_id", "subject", "status", "priority", "level", "region", "caseload", "triggers", "alert_count",
    "explanation", "assignee", "opened_at", "updated_at", "seq", "escalated",
)
REVIEW_FIELDS = (
    "review_id", "subject", "level", "due_at", "overdue", "region", "caseload", "opened_at", "status",
    "completed_at", "reviewer", "decision", "next_due_at",
)
STEP_FIELDS = ("event_id", "action", "actor", "assignee", "note", "at")


# One error for a store that did not answer, whichever port (projections.ports).
from projections.ports import StoreUnavailable as StoreUnavailable  # noqa: E402


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One access-log row: who consulted, disclosed or altered whose personal data, where and why."""

    actor: str
    role: str
    action: str  # consultation, disclosure or alteration
    endpoint: str
    subjects: tuple[str, ...]  # pseudonyms, sorted, each once
    purpose: str
    query: Mapping[str, Any] = field(default_factory=dict)  # JSON values only


@dataclass(frozen=True, slots=True)
class NewAlert(AlertRecord):
    """An alert the workflow raises itself (an escalation): inserted unless its id exists already."""

    for_supervisor: bool
    escalated_from: str | None


class WorkflowUnit(Protocol):
    """One transaction of the workflow. Loads `..._for_update` lock the rows until the unit ends."""

    async def alert_for_update(self, alert_id: str) -> Row | None: ...

    async def case_for_update(self, case_id: str) -> Row | None: ...

    async def cases_for_update(self, case_ids: Sequence[str]) -> dict[str, Row]:
        """The cases of these ids that exist, by id (locked in id order)."""
        ...

    async def open_case_alerts_for_update(self, case_id: str) -> list[Row]:
        """The case's alerts that are not closed, in `seq` order."""
        ...

    async def record_alert_step(self, alert_id: str, event_id: str, action: str, actor: str,
                                assignee: str | None, note: str | None, status: str) -> Row:
        """Append the step to the alert's workflow and give the alert `status` (and `assignee`, if one):
        returns the alert as it is now, its `status_changed_at` the step's time."""
        ...

    async def record_case_step(self, case_id: str, event_id: str, action: str, actor: str,
                               assignee: str | None, note: str | None, status: str) -> Row:
        """As record_alert_step, for a case: its `updated_at` is the step's time (and its `seq` a new one)."""
        ...

    async def add_alert(self, alert: NewAlert) -> None:
        """Insert the alert, numbered after every other; nothing if its id exists already."""
        ...

    async def publish(self, topic: str, key: str, message: Mapping[str, Any]) -> None:
        """Queue the message in the outbox: the relay publishes it once the unit commits."""
        ...

    async def record_access(self, entry: AccessEntry) -> None: ...

    async def claim_escalation(self) -> bool:
        """True if this unit may escalate: no other one escalates at the same time."""
        ...

    async def overdue_cases(self, timeout: dt.timedelta, limit: int) -> list[Row]:
        """Open cases not escalated whose opening (or latest reopening) is `timeout` ago or more, by `seq`;
        rows another unit holds are skipped."""
        ...

    async def most_urgent_open_alert(self, case_id: str) -> Row | None:
        """The case's open alert of the highest priority, the latest of those."""
        ...

    async def mark_case_escalated(self, case_id: str, event_id: str, actor: str) -> None:
        """The case's `escalated` step (once per event id) and its escalated flag."""
        ...

    async def overdue_alerts(self, timeout: dt.timedelta, limit: int, *, except_trigger: str) -> list[Row]:
        """Open paged alerts in no case, raised `timeout` ago or more, by `seq`; rows held elsewhere skipped."""
        ...

    async def review_for_update(self, review_id: str) -> Row | None: ...

    async def complete_review(self, review_id: str, event_id: str, reviewer: str, decision: str,
                              note: str | None) -> Row:
        """Record the decision and complete the review: `completed_at` the decision's time, `next_due_at`
        that plus the review's interval. Returns the review as it is now."""
        ...


class WorkflowStore(Protocol):
    def unit(self) -> AbstractAsyncContextManager[WorkflowUnit]:
        """A unit of work: committed when the block ends normally, undone when it raises."""
        ...
