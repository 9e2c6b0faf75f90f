"""The risk processor on the in-memory twin of its store: fast, no broker, no database.

The same processor runs on PostgreSQL in tests/integration (test_quarantine_integration.py,
test_pipeline_integration.py, test_crash_integration.py); the twin passes the store's contract
(tests/support/contracts/risk.py), so what is shown here holds there too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest

from projections.normalize import normalize
from projections.policy import default_policy
from schemas.codec import encode_risk_event
from schemas.json_format import event_from_json
from services.adapters.memory.risk import MemoryRiskUnit
from services.adapters.memory.stage_tables import Tables
from streams.consume import Record, StageDefect
from streams.risk import RiskProcessor
from tests.support.contracts import StoragePorts
from tests.support.memory import memory_ports
from tests.support.scenario import at, event, new_person

TOPIC = "subject-events.v1"
TODAY = dt.date(2026, 11, 1)
THREAT = {"offence": "unlawful_threat"}
ATTEMPTED_MURDER = {"offence": "attempted_murder", "strangulation": True, "weapon": True}


def new_subject() -> str:
    return "ps_" + uuid.uuid4().hex


def risk_record(subject: str, day: int, payload: dict[str, Any], offset: int, partition: int = 0,
                **changes: Any) -> tuple[Record, str]:
    """A canonical police report about `subject` on subject-events.v1 at `offset`; its event id."""
    document = event("police.crime_report", new_person(), at(day), payload)
    document["subject"] = {"pseudonym": subject}
    event_type, record = event_from_json(document, today=TODAY)
    risk_event = dataclasses.replace(normalize(event_type, record), **changes)
    value = encode_risk_event(risk_event.to_record())
    return Record(TOPIC, partition, offset, value, 1_000 + offset, subject.encode()), risk_event.event_id


def tables(ports: StoragePorts) -> Tables:
    return ports.risk.database.tables  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def ports() -> StoragePorts:
    return memory_ports()


def processor(ports: StoragePorts, **options: Any) -> RiskProcessor:
    return RiskProcessor(ports.risk, default_policy(), "cluster-1", clock=options.pop("clock", None), **options)


async def test_a_batch_is_applied_in_one_unit_with_its_offsets_alerts_and_case(ports: StoragePorts) -> None:
    subject = new_subject()
    first, first_id = risk_record(subject, 0, THREAT, 0)
    second, second_id = risk_record(subject, 1, ATTEMPTED_MURDER, 1)
    outcome = await processor(ports).process([first, second])

    assert (outcome.applied, outcome.duplicates, outcome.quarantined) == (2, 0, ())
    assert outcome.accepted_ms == {first_id: 1_000, second_id: 1_001}
    [raised] = outcome.alerts
    assert (raised.subject, raised.causing_event_id, raised.trigger.value) == (subject, second_id, "level_rose")
    stored = tables(ports)
    assert set(stored.archive) == {first_id, second_id}
    assert stored.projections[subject][1] == 1, "one state row write for the batch"
    assert set(stored.state_events[subject]) == {first_id, second_id}
    assert stored.alerts[raised.alert_id].paged
    [case] = stored.cases.values()
    assert (case.subject, case.alert_count, stored.alert_case[raised.alert_id]) == (subject, 1, case.case_id)
    assert await ports.risk.applied_positions("cluster-1", [(TOPIC, 0)]) == {(TOPIC, 0): 2}
    assert [row.topic for row in stored.outbox] == ["risk-changes.v1", "alerts.v1"]


async def test_events_already_applied_are_skipped_by_offset_and_by_event_id(ports: StoragePorts) -> None:
    subject = new_subject()
    records = [risk_record(subject, day, ATTEMPTED_MURDER if day else THREAT, day)[0] for day in range(2)]
    risk = processor(ports)
    await risk.process(records)
    outbox = len(tables(ports).outbox)

    replayed = await risk.process(records)  # the same offsets: tracked as applied
    assert (replayed.applied, replayed.duplicates, replayed.alerts) == (0, 0, ())
    elsewhere = [dataclasses.replace(r, partition=1) for r in records]  # the same events at other positions
    again = await risk.process(elsewhere)
    assert (again.applied, again.duplicates, again.alerts) == (0, 2, ())
    assert len(tables(ports).outbox) == outbox, "nothing new to publish"
    assert await ports.risk.applied_positions("cluster-1", [(TOPIC, 1)]) == {(TOPIC, 1): 2}


async def test_a_poison_record_is_quarantined_and_the_rest_of_its_batch_applied(ports: StoragePorts) -> None:
    subject = new_subject()
    good, good_id = risk_record(subject, 0, THREAT, 0)
    poison, poison_id = risk_record(new_subject(), 0, THREAT, 1, unit="a\x00b")  # text PostgreSQL refuses
    unreadable = Record(TOPIC, 0, 2, b"\x00not avro", None)
    later, later_id = risk_record(subject, 1, ATTEMPTED_MURDER, 3)
    outcome = await processor(ports).process([good, poison, unreadable, later])

    assert outcome.applied == 2
    assert [(q.offset, q.event_id, q.reason_class) for q in outcome.quarantined] == [
        (2, None, "malformed"), (1, poison_id, "text_encoding")]
    assert len(outcome.alerts) == 1
    assert set(tables(ports).archive) == {good_id, later_id}
    assert [(e.offset, e.stage, e.record) for e in await ports.quarantine.entries()] == [
        (2, "risk", unreadable.value), (1, "risk", poison.value)]
    assert await ports.risk.applied_positions("cluster-1", [(TOPIC, 0)]) == {(TOPIC, 0): 4}, "every offset tracked"


async def test_a_batch_whose_every_record_fails_is_the_stages_defect_and_commits_nothing(ports: StoragePorts) -> None:
    batch = [risk_record(new_subject(), 0, THREAT, offset, unit="a\x00b")[0] for offset in range(3)]
    with pytest.raises(StageDefect):
        await processor(ports).process(batch)
    assert await ports.risk.applied_positions("cluster-1", [(TOPIC, 0)]) == {}
    assert await ports.quarantine.entries(include_retried=True) == []
    assert tables(ports).archive == {}

    unreadable = [Record(TOPIC, 0, offset, b"garbage", None) for offset in range(3, 5)]
    with pytest.raises(StageDefect):
        await processor(ports).process(unreadable)
    assert await ports.quarantine.entries(include_retried=True) == []


async def test_a_failure_no_record_explains_propagates_and_commits_nothing(ports: StoragePorts,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("a defect of the stage")

    risk = processor(ports)
    monkeypatch.setattr(risk, "_apply", broken)
    with pytest.raises(RuntimeError, match="defect"):
        await risk.process([risk_record(new_subject(), 0, THREAT, n)[0] for n in range(2)])
    assert await ports.risk.applied_positions("cluster-1", [(TOPIC, 0)]) == {}


async def test_kept_states_are_reused_only_while_their_version_is_the_one_written(
        ports: StoragePorts, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    real = MemoryRiskUnit.state_events

    async def counting(unit: MemoryRiskUnit, subjects: Any) -> Any:
        read.extend(subjects)
        return await real(unit, subjects)

    monkeypatch.setattr(MemoryRiskUnit, "state_events", counting)
    subject = new_subject()
    mine, other = processor(ports), processor(ports)
    await mine.process([risk_record(subject, 0, THREAT, 0)[0]])
    assert read == [], "a new subject has no stored state to read"
    await mine.process([risk_record(subject, 1, THREAT, 1)[0]])
    assert read == [], "the state this worker wrote is kept"

    await other.process([risk_record(subject, 2, THREAT, 2)[0]])  # another worker (after a rebalance)
    assert read == [subject]
    await mine.process([risk_record(subject, 3, THREAT, 3)[0]])
    assert read == [subject, subject], "the kept state is stale: read again"
    assert len(tables(ports).state_events[subject]) == 4
    assert tables(ports).projections[subject][1] == 4


async def test_alerts_page_or_are_history_by_backfill_and_paging_window(ports: StoragePorts) -> None:
    backfilled_subject, late_subject, live_subject = new_subject(), new_subject(), new_subject()
    backfill, backfill_id = risk_record(backfilled_subject, 0, ATTEMPTED_MURDER, 0)
    await ports.mark_backfilled([backfill_id])
    live, _ = risk_record(live_subject, 0, ATTEMPTED_MURDER, 1)
    replaying = await processor(ports).process([backfill, live])  # processed as if when recorded
    late, _ = risk_record(late_subject, 0, ATTEMPTED_MURDER, 2)
    now = at(200).timestamp()  # processed long after the event: past the paging window
    processed_late = await processor(ports, clock=lambda: now).process([late])

    stored = tables(ports)
    paged = {stored.alerts[a.alert_id].subject: stored.alerts[a.alert_id].paged
             for a in replaying.alerts + processed_late.alerts}
    assert paged == {backfilled_subject: False, live_subject: True, late_subject: False}
    assert [case.subject for case in stored.cases.values()] == [live_subject], "history opens no case"
    published = [row.message for row in stored.outbox if row.topic == "alerts.v1"]
    assert len(published) == 3, "history is published too, marked"
