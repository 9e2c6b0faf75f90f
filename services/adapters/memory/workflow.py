"""The workflow's store in memory: one unit of work at a time; a unit that raises is undone."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from services.adapters.memory.access_log import append_access
from services.adapters.memory.tables import MemoryTables, as_json
from projections.store import ms_to_datetime
from schemas.codec import decode_published, encode_published
from services.workflow.ports import AccessEntry, NewAlert, Row

ALERT_ACTIONS = ("acknowledged", "assigned", "closed", "escalated")
CASE_ACTIONS = (*ALERT_ACTIONS, "reopened")


class MemoryWorkflowUnit:
    def __init__(self, tables: MemoryTables) -> None:
        self._tables = tables
        self._now = tables.clock()  # as now() in a transaction: its start

    def _alert(self, alert_id: str) -> dict[str, Any] | None:
        return self._tables.alerts.get(alert_id)

    async def alert_for_update(self, alert_id: str) -> Row | None:
        alert = self._alert(alert_id)
        return None if alert is None else dict(alert)

    async def case_for_update(self, case_id: str) -> Row | None:
        case = self._tables.cases.get(case_id)
        return None if case is None else dict(case)

    async def cases_for_update(self, case_ids: Sequence[str]) -> dict[str, Row]:
        return {case_id: dict(self._tables.cases[case_id]) for case_id in sorted(set(case_ids))
                if case_id in self._tables.cases}

    async def open_case_alerts_for_update(self, case_id: str) -> list[Row]:
        return [dict(alert) for alert in sorted(self._tables.alerts.values(), key=lambda a: a["seq"])
                if alert["case_id"] == case_id and alert["status"] != "closed"]

    def _step(self, steps: list[dict[str, Any]], actions: tuple[str, ...], key: str, owner: str, event_id: str,
              action: str, actor: str, assignee: str | None, note: str | None) -> dt.datetime:
        if action not in actions:
            raise ValueError(f"action: {action!r} is not a workflow step")
        if any(step["event_id"] == event_id for step in steps):  # the primary key
            raise ValueError(f"event_id: {event_id} recorded already")
        steps.append({"event_id": event_id, key: owner, "action": action, "actor": actor, "assignee": assignee,
                      "note": note, "at": self._now})
        return self._now

    async def record_alert_step(self, alert_id: str, event_id: str, action: str, actor: str,
                                assignee: str | None, note: str | None, status: str) -> Row:
        alert = self._alert(alert_id)
        assert alert is not None, "the row is locked by this unit"
        at = self._step(self._tables.alert_steps, ALERT_ACTIONS, "alert_id", alert_id, event_id, action, actor,
                        assignee, note)
        alert.update(status=status, assignee=assignee if assignee is not None else alert["assignee"],
                     status_changed_at=at)
        return dict(alert)

    async def record_case_step(self, case_id: str, event_id: str, action: str, actor: str,
                               assignee: str | None, note: str | None, status: str) -> Row:
        case = self._tables.cases.get(case_id)
        assert case is not None, "the row is locked by this unit"
        at = self._step(self._tables.case_steps, CASE_ACTIONS, "case_id", case_id, event_id, action, actor,
                        assignee, note)
        case.update(status=status, assignee=assignee if assignee is not None else case["assignee"], updated_at=at,
                    seq=self._tables.next_case_seq())
        return dict(case)

    async def add_alert(self, alert: NewAlert) -> None:
        if alert.alert_id in self._tables.alerts:
            return
        self._tables.add_alert(
            alert_id=alert.alert_id, subject=alert.subject, trigger=alert.trigger, priority=alert.priority,
            level_before=alert.level_before, level_after=alert.level_after, score=alert.score,
            explanation=alert.explanation, factors=as_json(list(alert.factors)), region=alert.region,
            caseload=alert.caseload, event_time=ms_to_datetime(alert.event_time), created_at=self._now,
            causing_event_id=alert.causing_event_id, policy_version=alert.policy_version,
            for_supervisor=alert.for_supervisor, escalated_from=alert.escalated_from,
        )

    async def publish(self, topic: str, key: str, message: Mapping[str, Any]) -> None:
        # kept as a reader of the topic gets it: what does not fit the topic's contract is refused
        self._tables.outbox.append((topic, key, decode_published(topic, encode_published(topic, dict(message)))))

    async def record_access(self, entry: AccessEntry) -> None:
        append_access(self._tables, entry)

    async def claim_escalation(self) -> bool:
        return True  # units run one at a time: no other one escalates meanwhile

    async def overdue_cases(self, timeout: dt.timedelta, limit: int) -> list[Row]:
        def since(case: dict[str, Any]) -> dt.datetime:
            reopened = [step["at"] for step in self._tables.case_steps
                        if step["case_id"] == case["case_id"] and step["action"] == "reopened"]
            return max(reopened) if reopened else case["opened_at"]  # type: ignore[no-any-return]
        due = [case for case in self._tables.cases.values()
               if case["status"] == "open" and not case["escalated"] and since(case) <= self._now - timeout]
        return [dict(case) for case in sorted(due, key=lambda c: c["seq"])[:limit]]

    async def most_urgent_open_alert(self, case_id: str) -> Row | None:
        open_alerts = [alert for alert in self._tables.alerts.values()
                       if alert["case_id"] == case_id and alert["status"] == "open"]
        if not open_alerts:
            return None
        return dict(min(open_alerts, key=lambda a: (a["priority"], -a["seq"])))

    async def mark_case_escalated(self, case_id: str, event_id: str, actor: str) -> None:
        if not any(step["event_id"] == event_id for step in self._tables.case_steps):
            self._tables.case_steps.append({"event_id": event_id, "case_id": case_id, "action": "escalated",
                                            "actor": actor, "assignee": None, "note": None, "at": self._now})
        case = self._tables.cases.get(case_id)
        if case is not None:
            case.update(escalated=True, updated_at=self._now, seq=self._tables.next_case_seq())

    async def overdue_alerts(self, timeout: dt.timedelta, limit: int, *, except_trigger: str) -> list[Row]:
        due = [alert for alert in self._tables.alerts.values()
               if alert["status"] == "open" and alert["paged"] and alert["case_id"] is None
               and alert["trigger"] != except_trigger and alert["created_at"] <= self._now - timeout]
        return [dict(alert) for alert in sorted(due, key=lambda a: a["seq"])[:limit]]

    async def review_for_update(self, review_id: str) -> Row | None:
        review = self._tables.reviews.get(review_id)
        return None if review is None else self._tables.review_view(review, self._now)

    async def complete_review(self, review_id: str, event_id: str, reviewer: str, decision: str,
                              note: str | None) -> Row:
        review = self._tables.reviews.get(review_id)
        assert review is not None, "the row is locked by this unit"
        if any(made["review_id"] == review_id for made in self._tables.review_decisions):
            raise ValueError(f"review_id: {review_id} has a decision already")  # the UNIQUE of review_decision
        self._tables.review_decisions.append({"event_id": event_id, "review_id": review_id, "reviewer": reviewer,
                                              "decision": decision, "note": note, "at": self._now})
        review.update(status="completed", completed_at=self._now, reviewer=reviewer, decision=decision,
                      next_due_at=self._now + dt.timedelta(hours=review["interval_hours"]))
        return self._tables.review_view(review, self._now)


class MemoryWorkflowStore:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    @contextlib.asynccontextmanager
    async def unit(self) -> AsyncIterator[MemoryWorkflowUnit]:
        async with self.tables.lock:
            saved = self.tables.snapshot()
            try:
                yield MemoryWorkflowUnit(self.tables)
            except BaseException:
                self.tables.restore(saved)
                raise
