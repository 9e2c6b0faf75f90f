"""The workload's rules: which case an alert joins, what a case takes from its alerts, who is due a review.

Cases are written in the risk batch's unit of work, with the alerts that open or update them:
a crash neither loses an alert's case nor attaches an alert twice. Reviews are opened by the
scheduler; see services/api/reviews.py for completing them and services/api/cases.py for the
case workflow. The storage is behind the ports (projections/ports.py); the SQL is in
services/adapters/postgres/casework.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from projections.alerts import StoredAlert
from projections.events import RISKWATCH_NAMESPACE
from projections.levels import Level
from projections.policy import Policy

REVIEW_BATCH = 10_000
REOPEN_NOTE = "a more urgent alert came in"


def case_id(subject: str, first_alert_id: str) -> str:
    return str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{subject}|case|{first_alert_id}"))


def reopened_event_id(target: str, latest_alert_id: str) -> str:
    """The case_workflow event id of a case reopened by an alert."""
    return str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{target}|reopened|{latest_alert_id}"))


@dataclass(frozen=True, slots=True)
class CaseUpdate:
    """What a subject's paged alerts, newly stored, bring to its open case (or the case they open).

    The case takes the most urgent priority of its alerts and the latest alert's level,
    explanation and audience. An acknowledged case that gets a more urgent alert is open again:
    someone must look at what is new.
    """

    subject: str
    alerts: tuple[StoredAlert, ...]

    @property
    def latest(self) -> StoredAlert:
        return self.alerts[-1]

    @property
    def priority(self) -> int:
        return min(alert.priority for alert in self.alerts)

    @property
    def triggers(self) -> list[str]:
        return sorted({alert.trigger for alert in self.alerts})

    @property
    def new_case_id(self) -> str:
        return case_id(self.subject, self.alerts[0].alert_id)

    def reopens(self, status: str, priority: int) -> bool:
        return status == "acknowledged" and self.priority < priority


def case_updates(alerts: Sequence[StoredAlert]) -> list[CaseUpdate]:
    """Paged alerts grouped by subject, in subject order (the order cases are locked in)."""
    by_subject: dict[str, list[StoredAlert]] = {}
    for alert in alerts:
        by_subject.setdefault(alert.subject, []).append(alert)
    return [CaseUpdate(subject, tuple(by_subject[subject])) for subject in sorted(by_subject)]


@dataclass(frozen=True, slots=True)
class ReviewTerms:
    """The policy's review rules as the scheduler applies them."""

    levels: list[str]  # the levels reviewed
    interval_hours: dict[str, int]  # level -> hours between reviews
    overdue: dt.timedelta  # an item is overdue this long after it was opened


def review_terms(policy: Policy) -> ReviewTerms:
    """One open review item for each subject at the policy's review level whose review has come.

    A subject with an open item gets none, however many reviews fell due while nobody looked
    (downtime, a backfill): catching up yields at most one item per subject. An item is overdue
    the policy's grace after it was opened, not after a due time that passed unseen. A completed
    review sets the next one at its completion plus the level's interval, unless new events
    moved the projection's next review later. The one-open-item index keeps two schedulers from
    opening two.
    """
    return ReviewTerms(
        levels=[level.label for level in Level if level >= policy.review_from_level],
        interval_hours={level.label: policy.review_ms[level] // 3_600_000 for level in Level},
        overdue=dt.timedelta(milliseconds=policy.review_overdue_ms),
    )
