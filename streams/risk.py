"""The risk processor: a batch of canonical events in, one PostgreSQL transaction out.

Thin on purpose: decode, skip what was already applied, call the pure core (fold, assess,
evaluate_alerts), hand the effects to the store.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Sequence

import asyncpg

from projections.alerts import Alert, evaluate_arrival
from projections.events import TICKS, RiskEvent
from projections.model import Assessment, SubjectState, assess, compact, empty_state, fold
from projections.policy import Policy
from projections.store import AlertRow, ArchivedEvent, BatchEffects, HistoryRow, ProjectionRow, Store
from schemas.codec import decode_risk_event
from schemas.errors import ContractError
from streams.consume import Record
from streams.topology import ALERTS, RISK_CHANGES

log = logging.getLogger(__name__)

STATE_CACHE_SUBJECTS = 1024  # states kept between batches: a subject's next events usually come soon


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: int
    duplicates: int
    refused: int
    alerts: tuple[Alert, ...]
    accepted_ms: dict[str, int] = field(default_factory=dict)  # applied event id -> broker timestamp, for latency


class RiskProcessor:
    def __init__(self, store: Store, policy: Policy, cluster_id: str) -> None:
        self.store = store
        self.policy = policy
        self.cluster_id = cluster_id
        self.states = StateCache(STATE_CACHE_SUBJECTS)

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
                touched.update(event.subject for event in new_events)
                stored = await self._load(connection, sorted(touched))
                alerts = self._apply(new_events, sources, stored, effects, written)
            else:
                alerts = []
            stamps = {e.event_id: sources[e.event_id].timestamp_ms for e in new_events}
            accepted_ms = {event_id: stamp for event_id, stamp in stamps.items() if stamp is not None}
            outcome = BatchOutcome(len(new_events), len(events) - len(new_events), refused, tuple(alerts), accepted_ms)
            return effects

        touched: set[str] = set()
        written: dict[str, tuple[int, SubjectState]] = {}  # subject -> (state version, state) once committed
        try:
            effects = await self.store.apply_batch(self.cluster_id, offsets, compute)
        except BaseException:
            self.states.forget(touched)
            raise
        if effects is None:
            self.states.forget(touched)
        else:
            self.states.keep(written)
        if effects is not None and outcome.alerts:
            # only alerts this batch raised first: a late event re-checks alerts raised before
            outcome = replace(outcome, alerts=tuple(a for a in outcome.alerts if a.alert_id in effects.new_alert_ids))
        return outcome

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

    async def _load(self, connection: asyncpg.Connection,
                    subjects: Sequence[str]) -> dict[str, tuple[SubjectState, int, int]]:
        """subject -> (state, assessed at, state version), rows locked; only states not kept are read."""
        rows = await self.store.lock_projections(connection, subjects)
        stale = [subject for subject, (version, _) in rows.items() if self.states.get(subject, version) is None]
        read = await self.store.load_state_events(connection, stale) if stale else {}
        loaded = {}
        for subject, (version, assessed_at) in rows.items():
            state = self.states.get(subject, version) or SubjectState.from_compact(subject, read.get(subject, ()))
            loaded[subject] = (state, assessed_at, version)
        return loaded

    def _apply(
        self,
        events: Sequence[RiskEvent],
        sources: dict[str, Record],
        stored: dict[str, tuple[SubjectState, int, int]],
        effects: BatchEffects,
        written: dict[str, tuple[int, SubjectState]],
    ) -> list[Alert]:
        states: dict[str, SubjectState] = {}
        as_of: dict[str, int] = {}
        versions: dict[str, int] = {}
        for subject, (state, assessed_at, version) in stored.items():
            states[subject] = state
            as_of[subject] = assessed_at
            versions[subject] = version
        folded: dict[str, list[RiskEvent]] = {}  # subject -> events the batch added to its state
        alerts: list[Alert] = []
        raised: set[str] = set()  # a late event re-checks later ones: the same alert may come again
        latest: dict[str, tuple[Assessment, RiskEvent]] = {}
        for event in events:
            subject = event.subject
            before = states.get(subject) or empty_state(subject)
            after = before if event.source_type in TICKS else fold(before, event)
            if after is not before:
                folded.setdefault(subject, []).append(event)
            at = max(as_of.get(subject, event.event_time), event.event_time)
            as_of[subject] = at
            states[subject] = after
            fired, assessment = evaluate_arrival(before, after, event, self.policy)
            fired = [alert for alert in fired if alert.alert_id not in raised]
            raised.update(alert.alert_id for alert in fired)
            alerts.extend(fired)
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
            effects.alerts.extend(_alert_row(alert) for alert in fired)
        for subject, (assessment, event) in latest.items():
            state = states[subject]
            written[subject] = (versions.get(subject, 0) + 1, state)
            effects.projections.append(ProjectionRow(
                subject=subject,
                state_added=[(added.event_time, added.event_id, compact(added)) for added in folded.get(subject, ())
                             if added.event_id in state.event_ids],
                state_from=_dropped_before(stored.get(subject), state),
                assessment=assessment.to_dict(),
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


class StateCache:
    """Subjects' states between batches, least recently used first out, each with its stored version.

    A state is reused only while the projection row still has the version this worker wrote, so
    a subject another worker has since written (after a rebalance) is read again.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._states: OrderedDict[str, tuple[int, SubjectState]] = OrderedDict()

    def get(self, subject: str, version: int) -> SubjectState | None:
        kept = self._states.get(subject)
        if kept is None or kept[0] != version:
            return None
        self._states.move_to_end(subject)
        return kept[1]

    def keep(self, states: dict[str, tuple[int, SubjectState]]) -> None:
        for subject, kept in states.items():
            self._states[subject] = kept
            self._states.move_to_end(subject)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def forget(self, subjects: set[str]) -> None:
        for subject in subjects:
            self._states.pop(subject, None)


def _dropped_before(stored: tuple[SubjectState, int, int] | None, state: SubjectState) -> int | None:
    """The first kept event's time when the batch dropped stored events behind retention, else None.

    Events drop from the front only, so stored ones dropped exactly when the first stored one did.
    """
    if stored is None or not stored[0].events or stored[0].events[0].event_id in state.event_ids:
        return None
    return state.events[0].event_time


def _alert_row(alert: Alert) -> AlertRow:
    document = alert.to_dict()
    return AlertRow(
        alert_id=alert.alert_id, subject=alert.subject, trigger=alert.trigger.value, priority=alert.priority,
        level_before=alert.level_before.label, level_after=alert.level_after.label, score=alert.score,
        explanation=alert.explanation, factors=document["factors"], region=alert.audience.region,
        caseload=alert.audience.caseload, event_time=alert.event_time, causing_event_id=alert.causing_event_id,
        policy_version=alert.policy_version, topic=ALERTS,
        message=json.dumps(document, sort_keys=True).encode(),
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
