"""The workload's in-memory twin: cases in the risk batch's unit of work, the scheduler's reviews.

Same rules as services/adapters/postgres/casework.py (projections/casework.py states them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from projections.alerts import StoredAlert
from projections.casework import REOPEN_NOTE, REVIEW_BATCH, case_updates, reopened_event_id, review_terms
from projections.events import RISKWATCH_AGENCY
from projections.policy import Policy
from services.adapters.memory.stage_tables import MemoryCase, MemoryDatabase, MemoryReview, Tables, canonical_uuid


def attach_to_cases(tables: Tables, alerts: Sequence[StoredAlert]) -> None:
    """Paged alerts, newly stored, onto their subject's open case (opened if there is none)."""
    for update in case_updates(alerts):
        latest = update.latest
        case = next((c for c in tables.cases.values() if c.subject == update.subject and c.status != "closed"), None)
        if case is None:
            case = MemoryCase(update.new_case_id, update.subject, "open", update.priority, latest.level_after,
                              latest.region, latest.caseload, update.triggers, len(update.alerts), latest.explanation)
            tables.cases[case.case_id] = case
        else:
            reopen = update.reopens(case.status, case.priority)
            case.priority = min(case.priority, update.priority)
            case.level = latest.level_after
            case.region = latest.region if latest.region is not None else case.region
            case.caseload = latest.caseload if latest.caseload is not None else case.caseload
            case.triggers = sorted(set(case.triggers) | set(update.triggers))
            case.alert_count += len(update.alerts)
            case.explanation = latest.explanation
            if reopen:
                case.status = "open"
                tables.case_workflow.append((reopened_event_id(case.case_id, latest.alert_id), case.case_id,
                                             "reopened", RISKWATCH_AGENCY, REOPEN_NOTE))
        for alert in update.alerts:
            tables.alert_case[canonical_uuid(alert.alert_id)] = case.case_id


def record_backfill(database: MemoryDatabase, event_ids: Iterable[str]) -> None:
    """Mark events as history before they are sent (the gateway's part, for tests)."""
    database.tables.backfill.update(canonical_uuid(event_id) for event_id in event_ids)


class MemoryReviews:
    """projections.ports.Reviews on a MemoryDatabase."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database

    async def open_due(self, policy: Policy, now: dt.datetime) -> int:
        terms = review_terms(policy)
        tables = self.database.tables
        at = now.timestamp()
        latest: dict[str, MemoryReview] = {}
        for review in tables.reviews:
            if review.subject not in latest or review.opened_at >= latest[review.subject].opened_at:
                latest[review.subject] = review
        due = []
        for subject, (row, _) in tables.projections.items():
            if row.next_review_at is None or row.next_review_at / 1000 > at or row.level not in terms.levels:
                continue
            last = latest.get(subject)
            if last is not None and not (last.status == "completed" and last.next_due_at is not None
                                         and last.next_due_at <= at):
                continue
            due_at = row.next_review_at / 1000
            if last is not None and last.next_due_at is not None:
                due_at = max(due_at, last.next_due_at)
            due.append((row.next_review_at, subject, row, due_at))
        due.sort(key=lambda item: item[0])
        for _, subject, row, due_at in due[:REVIEW_BATCH]:
            tables.reviews.append(MemoryReview(subject, row.level, due_at, at + terms.overdue.total_seconds(),
                                               terms.interval_hours[row.level], row.region, row.caseload,
                                               opened_at=self.database.clock()))
        return min(len(due), REVIEW_BATCH)
