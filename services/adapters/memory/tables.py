"""The tables the in-memory twins share: alerts, cases, reviews, their workflow, the outbox and the
access log, as dicts and lists. The risk stage writes cases, alerts and reviews in production; here
tests seed them with the `add_*` methods, which keep the same uniqueness as the database."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.workflow.ports import ALERT_FIELDS, CASE_FIELDS

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Conflict(Exception):
    """A row would break a uniqueness the database keeps (one open case, one open review per subject)."""


@dataclass
class MemoryTables:
    clock: Clock = utc_now
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)  # with overdue_at, interval_hours
    alert_steps: list[dict[str, Any]] = field(default_factory=list)  # with alert_id
    case_steps: list[dict[str, Any]] = field(default_factory=list)  # with case_id
    review_decisions: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # topic, key, message
    access_log: list[dict[str, Any]] = field(default_factory=list)
    projections: dict[str, dict[str, Any]] = field(default_factory=dict)  # by subject
    history: list[dict[str, Any]] = field(default_factory=list)  # with subject
    archive: dict[str, dict[str, Any]] = field(default_factory=dict)  # by event id
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)  # by pseudonym
    accepted: dict[str, dt.datetime] = field(default_factory=dict)  # event id -> when the gateway accepted it
    dead_letters: list[dt.datetime] = field(default_factory=list)  # when each was received
    _alert_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _case_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _access_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one unit of work at a time

    # -- what a transaction saves and restores
    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy({name: getattr(self, name) for name in _STATE})

    def restore(self, saved: dict[str, Any]) -> None:
        for name in _STATE:
            setattr(self, name, saved[name])

    def next_alert_seq(self) -> int:
        return next(self._alert_seq)

    def next_case_seq(self) -> int:
        return next(self._case_seq)

    def next_access_id(self) -> int:
        return next(self._access_id)

    # -- seeding, as the risk stage would write
    def add_alert(self, **values: Any) -> dict[str, Any]:
        now = self.clock()
        alert: dict[str, Any] = {
            "alert_id": str(uuid.uuid4()), "trigger": "level_crossed", "priority": 2, "status": "open",
            "level_before": "moderate", "level_after": "high", "score": 10.0, "explanation": "an alert",
            "factors": [], "region": None, "caseload": None, "event_time": now, "created_at": now,
            "causing_event_id": str(uuid.uuid4()), "policy_version": "test", "assignee": None,
            "for_supervisor": False, "escalated_from": None, "status_changed_at": None, "paged": True,
            "case_id": None, **values, "seq": self.next_alert_seq(),
        }
        unknown = set(alert) - set(ALERT_FIELDS)
        assert not unknown, f"not alert fields: {unknown}"
        if alert["alert_id"] in self.alerts:
            raise Conflict(f"alert {alert['alert_id']} exists")
        self.alerts[alert["alert_id"]] = alert
        return dict(alert)

    def add_case(self, **values: Any) -> dict[str, Any]:
        now = self.clock()
        case: dict[str, Any] = {
            "case_id": str(uuid.uuid4()), "status": "open", "priority": 2, "level": "high", "region": None,
            "caseload": None, "triggers": [], "alert_count": 0, "explanation": "a case", "assignee": None,
            "opened_at": now, "updated_at": now, "escalated": False, **values, "seq": self.next_case_seq(),
        }
        unknown = set(case) - set(CASE_FIELDS)
        assert not unknown, f"not case fields: {unknown}"
        if case["status"] != "closed" and any(other["subject"] == case["subject"] and other["status"] != "closed"
                                              for other in self.cases.values()):
            raise Conflict(f"subject {case['subject']} has an open case")
        self.cases[case["case_id"]] = case
        return dict(case)

    def add_case_step(self, case_id: str, action: str, actor: str, *, at: dt.datetime | None = None,
                      event_id: str | None = None, assignee: str | None = None, note: str | None = None) -> None:
        assert case_id in self.cases, f"no case {case_id}"
        self.case_steps.append({"event_id": event_id or str(uuid.uuid4()), "case_id": case_id, "action": action,
                                "actor": actor, "assignee": assignee, "note": note, "at": at or self.clock()})

    def add_review(self, **values: Any) -> dict[str, Any]:
        now = self.clock()
        review: dict[str, Any] = {
            "review_id": str(uuid.uuid4()), "level": "high", "due_at": now, "overdue_at": now + dt.timedelta(days=1),
            "interval_hours": 24 * 30, "region": None, "caseload": None, "opened_at": now, "status": "open",
            "completed_at": None, "reviewer": None, "decision": None, "next_due_at": None, **values,
        }
        if review["status"] == "open" and any(other["subject"] == review["subject"] and other["status"] == "open"
                                              for other in self.reviews.values()):
            raise Conflict(f"subject {review['subject']} has an open review")
        self.reviews[review["review_id"]] = review
        return dict(review)

    def add_projection(self, subject: str, **values: Any) -> dict[str, Any]:
        projection = {"subject": subject, "assessment": {}, "level": "low", "score": 0.0, "region": None,
                      "caseload": None, "policy_version": "test", "assessed_at": self.clock(),
                      "next_review_at": None, **values}
        self.projections[subject] = projection
        return dict(projection)

    def add_history_point(self, subject: str, event_id: str, **values: Any) -> None:
        if any(p["subject"] == subject and p["event_id"] == event_id for p in self.history):
            raise Conflict(f"history point {subject} {event_id} exists")
        self.history.append({"subject": subject, "event_id": event_id, "event_time": self.clock(), "level": "low",
                             "score": 0.0, "explanation": "", **values})

    def add_archived_event(self, event_id: str, subject: str, source_type: str, **values: Any) -> None:
        if event_id in self.archive:
            raise Conflict(f"event {event_id} is archived")
        self.archive[event_id] = {"event_id": event_id, "subject": subject, "source_type": source_type,
                                  "agency": "police", "region": "stockholm", "event_time": self.clock(),
                                  "body": b"", **values}

    def add_identity(self, pseudonym: str, identity_number: str, kind: str) -> None:
        if pseudonym in self.identities or any(i["identity_number"] == identity_number
                                               for i in self.identities.values()):
            raise Conflict("identity known already")
        self.identities[pseudonym] = {"identity_number": identity_number, "kind": kind}

    # -- views
    def review_view(self, review: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        view = {name: value for name, value in review.items() if name not in ("overdue_at", "interval_hours")}
        view["overdue"] = review["overdue_at"] <= now
        return view


def as_json(message: Any) -> Any:
    """The message as the outbox keeps it (JSON): what goes in must be JSON."""
    return json.loads(json.dumps(message, sort_keys=True))


_STATE = ("alerts", "cases", "reviews", "alert_steps", "case_steps", "review_decisions", "outbox", "access_log")
