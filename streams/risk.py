"""The risk processor: a batch of canonical events in, one PostgreSQL transaction out.

Thin on purpose: decode, skip what was already applied, call the pure core (fold, assess,
evaluate_alerts), hand the effects to the store.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import asyncpg

from projections.alerts import Alert, evaluate_arrival, pages
from projections.casework import backfilled
from projections.events import TICKS, RiskEvent
from projections.model import Assessment, SubjectState, assess, empty_state, fold
from projections.policy import Policy
from projections.store import AlertRow, ArchivedEvent, BatchEffects, HistoryRow, ProjectionRow, Store
from schemas.codec import decode_risk_event
from schemas.errors import ContractError
from streams.consume import Record
from streams.topology import ALERTS, RISK_CHANGES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: int
    duplicates: int
    refused: int
    alerts: tuple[Alert, ...]
    accepted_ms: dict[str, int] = field(default_factory=dict)  # applied event id -> broker timestamp, for latency


class RiskProcessor:
    def __init__(self, store: Store, policy: Policy, cluster_id: str, *,
                 clock: Callable[[], float] | None = time.time) -> None:
        """`clock` gives the processing time for the paging window; None: each alert is judged
        as if processed when its causing event was recorded (a batch replaying a log)."""
        self.store = store
        self.policy = policy
        self.cluster_id = cluster_id
        self.clock = clock

    async def process(self, batch: Sequence[Record]) -> BatchOutcome:
        offsets: dict[tuple[str, int], list[int]] = {}
        for record in batch:
            offsets.setdefault((record.topic, record.partition), []).append(record.offset)
        outcome = BatchOutcome(0, 0, 0, ())

        async def compute(connection: asyncpg.Connection, fresh: dict[tuple[str, int], list[int]]) -> BatchEffects:
            nonlocal outcome
            wanted = {(tp, offset) for tp, offs in fresh.items() for offset in offs}
            events, sources, refused = self._decode([r for r in batch if ((r.topic, r.partition), r.offset) in wanted])
            already = await self.store.archived_ids(connection, [event.event_id for event in events])
            new_events: list[RiskEvent] = []
            for event in events:
                if event.event_id not in already:
                    already.add(event.event_id)
                    new_events.append(event)
            effects = BatchEffects(offsets={tp: max(offs) for tp, offs in offsets.items()})
            if new_events:
                stored = await self.store.load_states(connection, sorted({e.subject for e in new_events}))
                arrivals: list[int] = []
                alerts = self._apply(new_events, sources, stored, effects, arrivals)
                effects.alerts.extend(await self._alert_rows(connection, alerts, arrivals))
            else:
                alerts = []
            stamps = {e.event_id: sources[e.event_id].timestamp_ms for e in new_events}
            accepted_ms = {event_id: stamp for event_id, stamp in stamps.items() if stamp is not None}
            outcome = BatchOutcome(len(new_events), len(events) - len(new_events), refused, tuple(alerts), accepted_ms)
            return effects

        effects = await self.store.apply_batch(self.cluster_id, offsets, compute)
        if effects is not None and outcome.alerts:
            # only alerts this batch raised first: a late event re-checks alerts raised before
            outcome = replace(outcome, alerts=tuple(a for a in outcome.alerts if a.alert_id in effects.new_alert_ids))
        return outcome

    async def _alert_rows(self, connection: asyncpg.Connection, alerts: Sequence[Alert],
                          arrivals: Sequence[int]) -> list[AlertRow]:
        """The batch's alerts as stored, each paged or history (projections.alerts.pages).

        `arrivals` holds, for each alert, the recorded time of the event whose arrival raised it:
        the processing time when a batch replays a log as it happened.
        """
        if not alerts:
            return []
        history = await backfilled(connection, sorted({alert.causing_event_id for alert in alerts}))
        now = None if self.clock is None else int(self.clock() * 1000)
        return [
            _alert_row(alert, pages(alert, recorded if now is None else now, self.policy,
                                    backfill=alert.causing_event_id in history))
            for alert, recorded in zip(alerts, arrivals, strict=True)
        ]

    def _decode(self, records: Sequence[Record]) -> tuple[list[RiskEvent], dict[str, Record], int]:
        events: list[RiskEvent] = []
        sources: dict[str, Record] = {}
        refused = 0
        for record in records:
            try:
                event = RiskEvent.from_record(decode_risk_event(record.value))
            except (ContractError, KeyError, TypeError, ValueError) as error:
                # Only Riskwatch writes this topic; a bad record is a defect, never silently folded.
                log.error("refused record %s[%d]@%d: %s", record.topic, record.partition, record.offset, error)
                refused += 1
                continue
            events.append(event)
            sources[event.event_id] = record
        return events, sources, refused

    def _apply(
        self,
        events: Sequence[RiskEvent],
        sources: dict[str, Record],
        stored: dict[str, tuple[dict[str, Any], int]],
        effects: BatchEffects,
        arrivals: list[int],
    ) -> list[Alert]:
        states: dict[str, SubjectState] = {}
        as_of: dict[str, int] = {}
        for subject, (state, assessed_at) in stored.items():
            states[subject] = SubjectState.from_dict(state)
            as_of[subject] = assessed_at
        alerts: list[Alert] = []
        raised: set[str] = set()  # a late event re-checks later ones: the same alert may come again
        latest: dict[str, tuple[Assessment, RiskEvent]] = {}
        for event in events:
            subject = event.subject
            before = states.get(subject) or empty_state(subject)
            after = before if event.source_type in TICKS else fold(before, event)
            at = max(as_of.get(subject, event.event_time), event.event_time)
            as_of[subject] = at
            states[subject] = after
            fired, assessment = evaluate_arrival(before, after, event, self.policy)
            fired = [alert for alert in fired if alert.alert_id not in raised]
            raised.update(alert.alert_id for alert in fired)
            alerts.extend(fired)
            arrivals.extend(event.recorded_time for _ in fired)
            if at != event.event_time:  # a late event: the projection stays at the subject's latest time
                assessment = assess(after, at, self.policy)
            latest[subject] = (assessment, event)
            effects.archive.append(ArchivedEvent(
                event.event_id, subject, event.source_type, event.agency, event.region,
                event.event_time, event.recorded_time, sources[event.event_id].value,
            ))
            effects.history.append(HistoryRow(
                subject, event.event_id, event.event_time, assessment.level.label, assessment.score,
                assessment.explanation, assessment.policy_version,
            ))
        for subject, (assessment, event) in latest.items():
            effects.projections.append(ProjectionRow(
                subject=subject, state=states[subject].to_dict(), assessment=assessment.to_dict(),
                level=assessment.level.label, score=assessment.score, region=_home_region(states[subject], event),
                caseload=_caseload(states[subject]), policy_version=assessment.policy_version,
                assessed_at=assessment.at, next_review_at=assessment.next_review_at,
            ))
            effects.risk_changes.append((RISK_CHANGES, subject, json.dumps({
                "subject": subject, "level": assessment.level.label, "score": assessment.score,
                "explanation": assessment.explanation, "policy_version": assessment.policy_version,
                "assessed_at": assessment.at, "causing_event_id": event.event_id,
            }, sort_keys=True).encode()))
        return alerts


def _alert_row(alert: Alert, paged: bool) -> AlertRow:
    document = {**alert.to_dict(), "paged": paged}  # alerts.v1 carries history too, marked
    return AlertRow(
        alert_id=alert.alert_id, subject=alert.subject, trigger=alert.trigger.value, priority=alert.priority,
        level_before=alert.level_before.label, level_after=alert.level_after.label, score=alert.score,
        explanation=alert.explanation, factors=document["factors"], region=alert.audience.region,
        caseload=alert.audience.caseload, event_time=alert.event_time, causing_event_id=alert.causing_event_id,
        policy_version=alert.policy_version, topic=ALERTS,
        message=json.dumps(document, sort_keys=True).encode(), paged=paged,
    )


def _home_region(state: SubjectState, event: RiskEvent) -> str:
    """The region of the subject's latest event that names no protected victim."""
    for candidate in reversed(state.events):
        if not any(victim.protected_identity for victim in candidate.victims):
            return candidate.region
    return event.region


def _caseload(state: SubjectState) -> str | None:
    """The probation caseload: the unit of the latest prison and probation event."""
    for candidate in reversed(state.events):
        if candidate.agency == "prison_probation":
            return candidate.unit
    return None
