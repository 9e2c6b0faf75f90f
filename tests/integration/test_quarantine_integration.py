"""No poison record: a record a stage cannot process because of its content is quarantined with
its reason, every other record of its batch is applied, and the stage keeps running.

Records are produced straight onto the topics, as a faulty or hostile producer would: the
gateway in front refuses such input, but the stages must not depend on that.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from projections.policy import default_policy
from projections.ports import BatchEffects
from services.adapters.postgres.store import Store
from services.runtime.metrics import QUARANTINED
from services.runtime.rebuild import live_digest, rebuild
from services.runtime.state import child_environment
from services.bootstrap import started_stack, worker_ports
from services.runtime.stack import Stack
from services.worker import WorkerRuntime, build_stages
from streams.consume import Record, StageDefect, run_stage
from streams.kafka import new_producer
from streams.risk import RiskProcessor
from streams.topology import SUBJECT_EVENTS
from tests.support.api import database, ingest
from tests.conftest import stack_settings
from tests.support.polling import until
from tests.support.scenario import agency_record, at, event, new_person, risk_record

pytestmark = pytest.mark.integration

POISON_TOPIC = "test.poison.v1"  # records handed to the processor directly: positions of their own


async def produce(stack: Stack, *records: tuple[str, bytes, str]) -> None:
    """(topic, value, key) onto the broker, acknowledged by all replicas."""
    producer = new_producer(stack.settings)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, value, key=key.encode()) for topic, value, key in records])
    finally:
        await producer.stop()


async def quarantined(stack: Stack, event_id: str) -> list[Any]:
    async with database(stack) as pool:
        return list(await pool.fetch("SELECT * FROM quarantine WHERE event_id = $1::uuid ORDER BY id", event_id))


async def archived(stack: Stack, event_ids: Sequence[str]) -> set[str]:
    async with database(stack) as pool:
        rows = await pool.fetch("SELECT event_id::text FROM event_archive WHERE event_id = ANY($1::uuid[])",
                                list(event_ids))
    return {row["event_id"] for row in rows}


async def test_a_nul_in_a_record_is_quarantined_and_every_later_event_is_archived(stack: Stack) -> None:
    worker = stack.workers[0]
    poisoned_subject, other_subject = "ps_" + uuid.uuid4().hex, "ps_" + uuid.uuid4().hex
    nul_risk_event, nul_risk_id = risk_record(poisoned_subject, 1, unit="a\u0000b")
    good_risk_event, good_risk_id = risk_record(other_subject, 2)
    nul_topic, nul_agency_record, nul_agency_id = agency_record(poisoned_subject, 3, unit="a\u0000b")
    await produce(stack, (SUBJECT_EVENTS, nul_risk_event, poisoned_subject),
                  (SUBJECT_EVENTS, good_risk_event, other_subject),
                  (nul_topic, nul_agency_record, poisoned_subject))

    async def risk_event_quarantined() -> bool:
        return bool(await quarantined(stack, nul_risk_id))

    await until(risk_event_quarantined, what="the risk event quarantined")
    [row] = await quarantined(stack, nul_risk_id)
    assert (row["stage"], row["topic"], row["reason_class"]) == ("risk", SUBJECT_EVENTS, "text_encoding")
    assert row["record"] == nul_risk_event and row["retried_at"] is None
    # The agency record with the same NUL is refused at normalize or quarantined at a stage: never lost.
    async with database(stack) as pool:
        async def agency_record_kept() -> bool:
            dead = await pool.fetchval("SELECT count(*) FROM dead_letter WHERE original = $1", nul_agency_record)
            return bool(dead or await quarantined(stack, nul_agency_id))

        await until(agency_record_kept, what="the agency record dead-lettered or quarantined")

    # later events, through the gateway, are archived; the worker never stopped
    later = [event("police.crime_report", new_person(), at(4), {"offence": "unlawful_threat"}) for _ in range(3)]
    await ingest(stack, *later)
    assert await archived(stack, [good_risk_id, *(e["event_id"] for e in later)]) == {
        good_risk_id, *(e["event_id"] for e in later)}
    assert nul_risk_id not in await archived(stack, [nul_risk_id])
    assert worker.poll() is None and stack.workers[0] is worker, "the worker ran on, never restarted"

    output = await riskwatch(stack, "quarantine", "list")
    assert nul_risk_id in output and "text_encoding" in output


async def riskwatch(stack: Stack, *arguments: str) -> str:
    """The command line against the stack; its output, once it succeeded."""
    command = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.cli", *arguments,
                                                   env=child_environment(stack.settings),
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await command.communicate())[0].decode()
    assert command.returncode == 0, output
    return output


class FaultyProcessor(RiskProcessor):
    """The risk stage with a fault injected for one chosen event id, until `fixed`."""

    def __init__(self, *arguments: Any, chosen: str) -> None:
        super().__init__(*arguments)
        self.chosen = chosen
        self.fixed = False

    def _apply(self, events: Any, sources: Any, stored: Any, effects: BatchEffects, arrivals: Any,
               written: Any) -> Any:
        if not self.fixed and any(e.event_id == self.chosen for e in events):
            raise ValueError("injected fault for the chosen event")
        return super()._apply(events, sources, stored, effects, arrivals, written)


@pytest.fixture(scope="module")
def bare_stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Broker and PostgreSQL with no worker: the test runs the stages in its own process."""
    with started_stack(stack_settings(tmp_path_factory.mktemp("bare")), workers=0, api=False) as running:
        yield running


async def test_a_record_failing_alone_is_quarantined_the_rest_applied_and_retry_applies_it(bare_stack: Stack) -> None:
    from services.adapters.kafka import KafkaEventPublisher
    from services.adapters.postgres.ingest import PostgresIngestRecords
    from services.ingest.clients import local_operator
    from services.ingest.gateway import IngestGateway, Submission
    from services.runtime.state import pseudonym_key
    from streams.kafka import cluster_id

    stack = bare_stack
    runtime = await WorkerRuntime(stack.settings, default_policy(), worker_ports).ready()
    people = [new_person() for _ in range(6)]
    documents = [event("police.crime_report", person, at(day), {"offence": "aggravated_assault"})
                 for day in range(3) for person in people]
    chosen = documents[7]["event_id"]
    runtime.processor = processor = FaultyProcessor(runtime.store, runtime.policy, runtime.cluster_id, chosen=chosen)
    stages = build_stages(runtime)
    stopping = False
    # a failing batch raises here instead of ending the test process as `until_done` would
    tasks = [asyncio.create_task(run_stage(stage, stack.settings, lambda: stopping, lambda _, work: work()))
             for stage in stages]
    before = QUARANTINED.labels("risk", "invalid_value")._value.get()
    try:
        gateway = IngestGateway(PostgresIngestRecords(runtime.store.pool), KafkaEventPublisher(runtime.producer),
                                pseudonym_key(stack.settings),
                                await cluster_id(stack.settings), client=local_operator())
        outcomes = await gateway.submit([Submission(json.dumps(d).encode(), "json", f"line {n}")
                                         for n, d in enumerate(documents)])
        assert {o.status for o in outcomes} == {"accepted"}
        others = [d["event_id"] for d in documents if d["event_id"] != chosen]

        async def settled() -> bool:  # (no outbox relay runs here: wait for the archive itself)
            return await archived(stack, others) == set(others) and bool(await quarantined(stack, chosen))

        await until(settled, what="the others archived, the chosen one quarantined")
        [row] = await quarantined(stack, chosen)
        assert (row["stage"], row["reason_class"]) == ("risk", "invalid_value")
        assert "injected fault" in row["reason"]
        assert QUARANTINED.labels("risk", "invalid_value")._value.get() == before + 1
        store = Store(runtime.store.pool)
        assert (await rebuild(store, runtime.policy)).digest == await live_digest(store)

        processor.fixed = True
        output = await riskwatch(stack, "quarantine", "retry", str(row["id"]))
        assert f"{row['id']}  sent back to {SUBJECT_EVENTS}  event {chosen}" in output

        async def applied() -> bool:
            return chosen in await archived(stack, [chosen])

        await until(applied, what="the retried event archived")
        [row] = await quarantined(stack, chosen)
        assert row["retried_at"] is not None, "retried once, not quarantined again"
        assert (await rebuild(store, runtime.policy)).digest == await live_digest(store)
    finally:
        stopping = True
        await asyncio.gather(*tasks)
        await runtime.close()


async def test_a_batch_whose_every_record_fails_stops_the_stage_before_it_commits(bare_stack: Stack) -> None:
    stack = bare_stack
    runtime = await WorkerRuntime(stack.settings, default_policy(), worker_ports).ready()
    try:
        batch = []
        for offset in range(3):
            value, _ = risk_record("ps_" + uuid.uuid4().hex, offset, unit="a\u0000b")
            batch.append(Record(POISON_TOPIC, 0, offset, value, None))
        with pytest.raises(StageDefect):
            await runtime.processor.process(batch)
        async with database(stack) as pool:
            tracked = await pool.fetchval("SELECT max(kafka_offset) FROM tracking WHERE topic = $1", POISON_TOPIC)
            kept = await pool.fetchval("SELECT count(*) FROM quarantine WHERE topic = $1", POISON_TOPIC)
        assert (tracked if tracked is not None else -1) < 0 and kept == 0, "nothing of the batch committed"

        # one poison record beside good ones is the record's fault, not the stage's
        good, good_id = risk_record("ps_" + uuid.uuid4().hex, 5)
        batch = [batch[0], Record(POISON_TOPIC, 0, 10, good, None)]
        outcome = await runtime.processor.process(batch)
        assert outcome.applied == 1 and [q.reason_class for q in outcome.quarantined] == ["text_encoding"]
        assert await archived(stack, [good_id]) == {good_id}

        # an event id that is no UUID would fail every query of the batch: the record is set aside
        unkeyed, _ = risk_record("ps_" + uuid.uuid4().hex, 6, event_id="not-a-uuid")
        good, good_id = risk_record("ps_" + uuid.uuid4().hex, 7)
        outcome = await runtime.processor.process([Record(POISON_TOPIC, 0, 20, unkeyed, None),
                                                   Record(POISON_TOPIC, 0, 21, good, None)])
        assert outcome.applied == 1 and [(q.event_id, q.reason_class) for q in outcome.quarantined] == [
            (None, "invalid_value")]
        assert await archived(stack, [good_id]) == {good_id}
    finally:
        await runtime.close()


async def test_normalize_quarantines_a_record_it_cannot_forward_and_forwards_the_rest(
        bare_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.normalize
    from services.worker import normalize as normalize_stage
    from tests.support.api import read_topic

    stack = bare_stack
    subject = "ps_" + uuid.uuid4().hex
    records = [agency_record(subject, day) for day in range(3)]
    chosen = records[1][2]
    real_normalize = streams.normalize.normalize

    def faulty(event_type: str, record: dict[str, Any]) -> Any:
        if record["event_id"] in failing:
            raise ValueError("injected fault for the chosen event")
        return real_normalize(event_type, record)

    monkeypatch.setattr(streams.normalize, "normalize", faulty)
    batch = [Record(topic, 0, 1_000 + n, value, None, subject.encode()) for n, (topic, value, _) in enumerate(records)]
    runtime = await WorkerRuntime(stack.settings, default_policy(), worker_ports).ready()
    try:
        failing = {event_id for *_, event_id in records}
        with pytest.raises(StageDefect):  # every record fails: the stage, not the records
            await normalize_stage(runtime, batch)
        assert await quarantined(stack, chosen) == []

        failing = {chosen}
        await normalize_stage(runtime, batch)
        [row] = await quarantined(stack, chosen)
        found = (row["stage"], row["reason_class"], row["record_key"])
        assert found == ("normalize", "invalid_value", subject.encode())
        forwarded = {r.value for r in await read_topic(stack, SUBJECT_EVENTS) if r.key == subject.encode()}
        assert len(forwarded) == 2, "the other records of the batch went on"
    finally:
        await runtime.close()
