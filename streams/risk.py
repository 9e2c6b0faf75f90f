"""The risk processor: a batch of canonical events in, one unit of work of the risk store out.

Thin on purpose: decode, skip what was already applied, call the pure core (each subject's
events of the batch arriving together: projections.arrival), hand the effects to the store
(projections.ports.RiskStore: PostgreSQL in the worker, the in-memory twin in unit tests).
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from collections.abc import Awaitable, Callable, Sequence

from projections.alerts import Alert, StoredAlert, pages
from projections.arrival import arrive_together
from projections.events import RISKWATCH_AGENCY, RiskEvent
from projections.model import SubjectState, compact, empty_state
from projections.policy import Policy
from projections.ports import ArchivedEvent, BatchEffects, HistoryRow, ProjectionRow, RiskStore, RiskUnit
from projections.quarantine import Quarantined, content_reason, describe
from schemas.codec import decode_risk_event, encode_published
from schemas.errors import ContractError
from streams.consume import TRANSIENT, Record, StageDefect
from streams.topology import ALERTS, RISK_CHANGES

log = logging.getLogger(__name__)
STATE_CACHE_SUBJECTS = 1024  # states kept between batches: a subject's next events usually come soon
# ... and the events in them all: a kept state's memory goes with its events (about 0.5 KB each,
# 0.9 KB once scored with what scoring keeps on it, more once the state has a ledger), so a
# count of subjects alone bounds nothing
STATE_CACHE_EVENTS = 2048
_EVENT_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: int
    duplicates: int
    quarantined: tuple[Quarantined, ...]
    alerts: tuple[Alert, ...]
    accepted_ms: dict[str, int] = field(default_factory=dict)  # applied event id -> broker timestamp, for latency


class RiskProcessor:
    def __init__(self, store: RiskStore, policy: Policy, cluster_id: str, *,
                 clock: Callable[[], float] | None = time.time) -> None:
        """`clock` gives the processing time for the paging window; None: each alert is judged
        as if processed when its causing event was recorded (a batch replaying a log)."""
        self.store = store
        self.policy = policy
        self.cluster_id = cluster_id
        self.clock = clock
        self.states = StateCache(STATE_CACHE_SUBJECTS)

    async def process(self, batch: Sequence[Record]) -> BatchOutcome:
        """Apply the batch in one transaction; if that fails, set aside the records that fail alone.

        The second attempt is the slow path: each record in a savepoint of its own, a record that
        fails alone because of its content quarantined in the same transaction that applies the
        rest and tracks every offset. A failure no single record explains, or one that every
        record of the batch shares, is the stage's defect: it propagates and nothing is committed.
        """
        offsets: dict[tuple[str, int], list[int]] = {}
        for record in batch:
            offsets.setdefault((record.topic, record.partition), []).append(record.offset)
        attempt = _Attempt(batch, {tp: max(offs) for tp, offs in offsets.items()})
        try:
            try:
                new_alert_ids = await self._run(offsets, attempt, self._apply_whole)
            except TRANSIENT:
                raise
            except Exception as error:
                log.warning("risk batch of %d records failed (%s); applying its records one by one",
                            len(batch), type(error).__name__)
                attempt.failure = error
                attempt.written.clear()  # the one-by-one path keeps no state between batches
                new_alert_ids = await self._run(offsets, attempt, self._apply_one_by_one)
        except BaseException:
            self.states.forget(attempt.touched)
            raise
        self.states.keep(attempt.written)
        outcome = attempt.outcome
        for entry in outcome.quarantined:
            log.error("quarantined %s[%d]@%d (%s): %s", entry.topic, entry.partition, entry.offset,
                      entry.reason_class, entry.reason)
        if outcome.alerts:
            # only alerts this batch raised first: a late event re-checks alerts raised before
            outcome = replace(outcome, alerts=tuple(a for a in outcome.alerts if a.alert_id in new_alert_ids))
        return outcome

    async def _run(self, offsets: dict[tuple[str, int], list[int]], attempt: _Attempt, path: BatchPath) -> set[str]:
        """`path` over the records not applied yet (per the tracked offsets), committed in one unit of work."""
        async with self.store.batch(self.cluster_id, offsets) as unit:
            wanted = {(tp, offset) for tp, offs in unit.fresh.items() for offset in offs}
            records = [r for r in attempt.batch if ((r.topic, r.partition), r.offset) in wanted]
            attempt.new_alert_ids = set()
            effects = await path(unit, attempt, records)
            return attempt.new_alert_ids | await unit.commit(effects)

    async def _apply_whole(self, unit: RiskUnit, attempt: _Attempt, records: Sequence[Record]) -> BatchEffects:
        """The fast path: every new event of the batch folded and written at once."""
        events, sources, unreadable = self._decode(records)
        _refuse_if_all_failed(unreadable, len(records))
        already = await unit.archived([event.event_id for event in events])
        new_events: list[RiskEvent] = []
        for event in events:
            if event.event_id not in already:
                already.add(event.event_id)
                new_events.append(event)
        effects = BatchEffects(offsets=attempt.last_offsets, quarantined=list(unreadable))
        alerts: list[Alert] = []
        if new_events:
            attempt.touched.update(event.subject for event in new_events)
            stored = await self._load(unit, sorted({e.subject for e in new_events}))
            arrivals: list[int] = []
            alerts = self._apply(new_events, sources, stored, effects, arrivals, attempt.written)
            effects.alerts.extend(await self._alert_rows(unit, alerts, arrivals))
        attempt.outcome = BatchOutcome(len(new_events), len(events) - len(new_events), tuple(unreadable),
                                       tuple(alerts), _accepted_ms(new_events, sources))
        return effects

    async def _apply_one_by_one(self, unit: RiskUnit, attempt: _Attempt, records: Sequence[Record]) -> BatchEffects:
        """The slow path, after the batch failed: each new event in a part of the unit of its own."""
        events, sources, unreadable = self._decode(records)
        already = await unit.archived([event.event_id for event in events])
        applied: list[RiskEvent] = []
        alerts: list[Alert] = []
        failed: list[Quarantined] = []
        for event in events:
            if event.event_id in already:
                continue
            already.add(event.event_id)
            one = BatchEffects()
            try:
                async with unit.part():  # a record failing alone leaves no trace
                    attempt.touched.add(event.subject)
                    stored = await self._load(unit, [event.subject])
                    arrivals: list[int] = []
                    fired = self._apply([event], sources, stored, one, arrivals, {})
                    one.alerts.extend(await self._alert_rows(unit, fired, arrivals))
                    attempt.new_alert_ids |= await unit.write(one)
            except TRANSIENT:
                raise
            except Exception as error:
                if content_reason(error) is None:
                    raise  # not about this record's content: a defect, found on this record
                failed.append(_quarantined(sources[event.event_id], event.event_id, error))
                continue
            applied.append(event)
            alerts.extend(fired)
        if not failed:
            assert attempt.failure is not None
            raise attempt.failure  # every record applies alone: the batch's failure is no record's
        _refuse_if_all_failed(failed + unreadable, len(applied) + len(failed) + len(unreadable), cause=attempt.failure)
        attempt.outcome = BatchOutcome(len(applied), len(events) - len(applied) - len(failed),
                                       tuple(unreadable + failed), tuple(alerts), _accepted_ms(applied, sources))
        # the events' own effects are written one by one: what is left are the offsets and the quarantine
        return BatchEffects(offsets=attempt.last_offsets, quarantined=unreadable + failed)

    async def _alert_rows(self, unit: RiskUnit, alerts: Sequence[Alert], arrivals: Sequence[int]) -> list[StoredAlert]:
        """The batch's alerts as stored, each paged or history (projections.alerts.pages).

        `arrivals` holds, for each alert, the recorded time of the event whose arrival raised it:
        the processing time when a batch replays a log as it happened.
        """
        if not alerts:
            return []
        history = await unit.backfilled(sorted({alert.causing_event_id for alert in alerts}))
        now = None if self.clock is None else int(self.clock() * 1000)
        return [
            StoredAlert.of(alert, topic=ALERTS, paged=pages(alert, recorded if now is None else now, self.policy,
                                                            backfill=alert.causing_event_id in history))
            for alert, recorded in zip(alerts, arrivals, strict=True)
        ]

    def _decode(self, records: Sequence[Record]) -> tuple[list[RiskEvent], dict[str, Record], list[Quarantined]]:
        events: list[RiskEvent] = []
        sources: dict[str, Record] = {}
        unreadable: list[Quarantined] = []
        for record in records:
            try:
                event = RiskEvent.from_record(decode_risk_event(record.value))
                if not _EVENT_ID.fullmatch(event.event_id):  # the archive's key: else every query of the batch fails
                    raise ValueError(f"event_id: {event.event_id[:60]!r} is not a UUID")
            except (ContractError, KeyError, TypeError, ValueError) as error:
                # Only Riskwatch writes this topic: a record it cannot read is kept, never folded or dropped.
                unreadable.append(_quarantined(record, None, error))
                continue
            events.append(event)
            sources[event.event_id] = record
        return events, sources, unreadable

    async def _load(self, unit: RiskUnit, subjects: Sequence[str]) -> dict[str, tuple[SubjectState, int, int]]:
        """subject -> (state, assessed at, state version), rows locked; only states not kept are read."""
        rows = await unit.lock_states(subjects)
        stale = [subject for subject, (version, _) in rows.items() if self.states.get(subject, version) is None]
        read = await unit.state_events(stale) if stale else {}
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
        arrivals: list[int],
        written: dict[str, tuple[int, SubjectState]],
    ) -> list[Alert]:
        """`written` receives each subject's state as it will be stored, with its new version.

        Each subject's events arrive together (projections.arrival): folded in the batch's order,
        a late event's re-checks made once on the state the batch ends with.
        """
        by_subject: dict[str, list[RiskEvent]] = {}
        for event in events:
            by_subject.setdefault(event.subject, []).append(event)
        alerts: list[Alert] = []
        for subject, arriving in by_subject.items():
            before, assessed_at, version = stored.get(subject) or (empty_state(subject), None, 0)
            batch = arrive_together(before, assessed_at, arriving, self.policy)
            for alert, recorded in batch.alerts:
                alerts.append(alert)
                arrivals.append(recorded)
            for arrived in batch.arrived:
                event, assessment = arrived.event, arrived.assessment
                effects.archive.append(ArchivedEvent(
                    event.event_id, subject, event.source_type, event.agency, event.region,
                    event.event_time, event.recorded_time, sources[event.event_id].value,
                ))
                effects.history.append(HistoryRow(
                    subject, event.event_id, event.event_time, assessment.level.label, assessment.score,
                    assessment.explanation, assessment.policy_version,
                ))
            state, (event, assessment) = batch.state, (batch.arrived[-1].event, batch.arrived[-1].assessment)
            written[subject] = (version + 1, state)
            effects.projections.append(ProjectionRow(
                subject=subject,
                state_added=[(added.event_time, added.event_id, compact(added)) for added in batch.folded
                             if added.event_id in state.event_ids],
                state_from=_dropped_before(stored.get(subject), state),
                assessment=assessment.to_dict(),
                level=assessment.level.label, score=assessment.score, region=_home_region(state),
                caseload=_caseload(state), policy_version=assessment.policy_version,
                assessed_at=assessment.at, next_review_at=assessment.next_review_at,
            ))
            effects.risk_changes.append((RISK_CHANGES, subject, encode_published(RISK_CHANGES, {
                "subject": subject, "level": assessment.level.label, "score": assessment.score,
                "explanation": assessment.explanation, "policy_version": assessment.policy_version,
                "assessed_at": assessment.at, "causing_event_id": event.event_id,
            }, checked=True)))
        return alerts


BatchPath = Callable[[RiskUnit, "_Attempt", Sequence[Record]], Awaitable[BatchEffects]]


@dataclass
class _Attempt:
    """One batch on its way through the store: what it did, and why the fast path failed."""

    batch: Sequence[Record]
    last_offsets: dict[tuple[str, int], int]
    outcome: BatchOutcome = field(default_factory=lambda: BatchOutcome(0, 0, (), ()))
    failure: BaseException | None = None
    touched: set[str] = field(default_factory=set)  # subjects whose kept states may be stale if this fails
    written: dict[str, tuple[int, SubjectState]] = field(default_factory=dict)  # subject -> (version, state)
    new_alert_ids: set[str] = field(default_factory=set)  # alerts stored by the attempt's unit, not before


def _accepted_ms(events: Sequence[RiskEvent], sources: dict[str, Record]) -> dict[str, int]:
    stamps = {e.event_id: sources[e.event_id].timestamp_ms for e in events}
    return {event_id: stamp for event_id, stamp in stamps.items() if stamp is not None}


def _quarantined(record: Record, event_id: str | None, error: BaseException) -> Quarantined:
    return Quarantined("risk", record.topic, record.partition, record.offset, record.key, record.value, event_id,
                       content_reason(error) or "malformed", describe(error))


def _refuse_if_all_failed(failed: Sequence[Quarantined], records: int, cause: BaseException | None = None) -> None:
    """Several records that all fail are not several poison records: the stage itself is wrong."""
    if records > 1 and len(failed) == records:
        raise StageDefect(f"all {records} records of the batch failed; first: {failed[0].reason}") from cause


class StateCache:
    """Subjects' states between batches, least recently used first out, each with its stored version.

    A state is reused only while the projection row still has the version this worker wrote, so
    a subject another worker has since written (after a rebalance) is read again. At most
    `capacity` states and `events` events in all are kept; the state kept last always stays, so
    a long-known subject whose events keep coming is not read again for each batch.
    """

    def __init__(self, capacity: int, events: int = STATE_CACHE_EVENTS) -> None:
        self.capacity = capacity
        self.max_events = events
        self.events = 0  # events in the kept states
        self._states: OrderedDict[str, tuple[int, SubjectState]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def get(self, subject: str, version: int) -> SubjectState | None:
        kept = self._states.get(subject)
        if kept is None or kept[0] != version:
            return None
        self._states.move_to_end(subject)
        return kept[1]

    def keep(self, states: dict[str, tuple[int, SubjectState]]) -> None:
        for subject, kept in states.items():
            self.forget({subject})
            self._states[subject] = kept
            self.events += len(kept[1].events)
        while len(self._states) > 1 and (len(self._states) > self.capacity or self.events > self.max_events):
            _, (_, state) = self._states.popitem(last=False)
            self.events -= len(state.events)

    def forget(self, subjects: set[str]) -> None:
        for subject in subjects:
            kept = self._states.pop(subject, None)
            if kept is not None:
                self.events -= len(kept[1].events)


def _dropped_before(stored: tuple[SubjectState, int, int] | None, state: SubjectState) -> int | None:
    """The first kept event's time when the batch dropped stored events behind retention, else None.

    Events drop from the front only, so stored ones dropped exactly when the first stored one did.
    """
    if stored is None or not stored[0].events or stored[0].events[0].event_id in state.event_ids:
        return None
    return state.events[0].event_time


def _home_region(state: SubjectState) -> str | None:
    """The region of the subject's latest agency event that names no protected victim, if any.

    The same rule as an alert's audience (projections/alerts.py): an event about a protected
    victim may have been recorded where she lives or was treated, so its region is never the
    subject's; with no other region the projection names none and only a national scope sees
    it. Riskwatch's own events (overrides) carry a copy of the projection's region, not a new one.
    """
    for candidate in reversed(state.events):
        if candidate.agency != RISKWATCH_AGENCY and not _names_protected_victim(candidate):
            return candidate.region
    return None


def _caseload(state: SubjectState) -> str | None:
    """The probation caseload: the unit of the latest prison and probation event naming no protected victim."""
    for candidate in reversed(state.events):
        if candidate.agency == "prison_probation" and not _names_protected_victim(candidate):
            return candidate.unit
    return None


def _names_protected_victim(event: RiskEvent) -> bool:
    return any(victim.protected_identity for victim in event.victims)
