"""The whole pipeline on the embedded broker and PostgreSQL: gateway, normalize, risk, outbox."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
import subprocess
import sys

import asyncpg
import pytest

from projections.model import SubjectState
from projections.policy import default_policy
from schemas.codec import decode_published
from schemas.identity import parse_identity_number, pseudonym
from services.runtime.state import child_environment, pseudonym_key
from services.runtime.stack import Stack
from services.bootstrap import worker_ports
from services.worker import WorkerRuntime, emit_due_reviews
from streams.kafka import new_producer
from streams.topology import SUBJECT_EVENTS
from tests.support.api import post_documents
from tests.support.scenario import at, escalating_story, event, new_person

pytestmark = pytest.mark.integration


def alias(stack: Stack, number: str) -> str:
    return pseudonym(parse_identity_number(number, today=dt.date(2026, 11, 1)), pseudonym_key(stack.settings))


async def fetch(stack: Stack, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(stack.settings.database_url)
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def test_escalating_case_raises_levels_and_alerts_with_explanations(stack: Stack) -> None:
    subject, victim = new_person(), new_person()
    story = escalating_story(subject, victim)
    for document in story:  # as the agencies would report it, day by day
        await post_documents(stack, document)
        await stack.wait_until_idle()
    ps = alias(stack, subject)
    history = await fetch(stack, "SELECT level, explanation FROM risk_history WHERE subject = $1 ORDER BY event_time",
                          ps)
    levels = [row["level"] for row in history]
    order = ["low", "moderate", "high", "extreme"]
    assert len(levels) == len(story)
    assert order.index(levels[1]) > order.index(levels[0]), levels
    assert order.index(levels[1]) >= order.index("high")
    alerts = await fetch(stack, "SELECT trigger, explanation, factors, caseload, region FROM alert WHERE subject = $1 "
                                "ORDER BY event_time, trigger", ps)
    triggers = {row["trigger"] for row in alerts}
    assert {"red_flag_separation", "level_rose", "contact_ban_breach", "release_at_high"} <= triggers, triggers
    for row in alerts:
        assert row["explanation"] and row["factors"], row
    release = next(row for row in alerts if row["trigger"] == "release_at_high")
    assert release["caseload"] == "Kriminalvården Frivård Stockholm"
    red_flag = next(row for row in alerts if row["trigger"] == "red_flag_separation")
    assert "strangulation" in red_flag["explanation"] and "separation" in red_flag["explanation"]


async def test_late_and_duplicate_events_give_the_in_order_projection(stack: Stack) -> None:
    """Two subjects with the same story: one in order, one shuffled with a duplicate sent straight to Kafka."""
    in_order, shuffled, victim = new_person(), new_person(), new_person()

    def story(subject: str) -> list[dict]:
        return [
            event(kind, subject, at(20 + n), payload, victims=[victim])
            for n, (kind, payload) in enumerate([
                ("police.domestic_callout", {"injuries": True}),
                ("police.crime_report", {"offence": "unlawful_threat", "threat_to_kill": True}),
                ("healthcare.suicide_threat", {"attempt": False}),
                ("police.crime_report", {"offence": "assault", "victim_fear": True}),
                ("social_services.separation_reported", {"imminent": True}),
            ])
        ]

    ordered_story, shuffled_story = story(in_order), story(shuffled)
    for document in ordered_story:
        await post_documents(stack, document)
    late_first = shuffled_story[:]
    random.Random(7).shuffle(late_first)
    for document in late_first:
        await post_documents(stack, document)
    await stack.wait_until_idle()
    # the same canonical event again, straight onto subject-events.v1, past the gateway's duplicate check
    ps_shuffled = alias(stack, shuffled)
    archived = await fetch(stack, "SELECT body FROM event_archive WHERE subject = $1 LIMIT 1", ps_shuffled)
    producer = new_producer(stack.settings)
    await producer.start()
    try:
        await producer.send_and_wait(SUBJECT_EVENTS, bytes(archived[0]["body"]), key=ps_shuffled.encode())
    finally:
        await producer.stop()
    await stack.wait_until_idle()

    rows = {row["subject"]: row for row in await fetch(
        stack, "SELECT subject, state, assessment FROM risk_projection WHERE subject = ANY($1::text[])",
        [alias(stack, in_order), ps_shuffled])}
    first, second = rows[alias(stack, in_order)], rows[ps_shuffled]
    assert len(SubjectState.from_dict(second["state"]).events) == len(shuffled_story)
    same_keys = ("level", "computed_level", "score", "components", "explanation", "next_review_at", "at")
    assert {k: first["assessment"][k] for k in same_keys} == {k: second["assessment"][k] for k in same_keys}
    counts = await fetch(stack, "SELECT count(*) AS n FROM event_archive WHERE subject = $1", ps_shuffled)
    assert counts[0]["n"] == len(shuffled_story)


async def test_scheduler_opens_one_review_item_per_subject_however_late(stack: Stack) -> None:
    subject, victim = new_person(), new_person()
    await post_documents(stack, event("police.crime_report", subject, at(60),
                                      {"offence": "attempted_murder", "strangulation": True, "weapon": True},
                                      victims=[victim]))
    await stack.wait_until_idle()
    ps = alias(stack, subject)
    [projection] = await fetch(stack, "SELECT level, next_review_at FROM risk_projection WHERE subject = $1", ps)
    assert projection["level"] in ("high", "extreme") and projection["next_review_at"] is not None
    runtime = await WorkerRuntime(stack.settings, default_policy(), worker_ports).ready()
    try:
        # catching up after a long downtime: many cycles fell due, twice over
        late = projection["next_review_at"] + dt.timedelta(days=90)
        await emit_due_reviews(runtime, now=late)
        await emit_due_reviews(runtime, now=late)
    finally:
        await runtime.close()
    reviews = await fetch(stack, "SELECT due_at, status FROM review WHERE subject = $1", ps)
    assert [(row["due_at"], row["status"]) for row in reviews] == [(projection["next_review_at"], "open")]
    await stack.wait_until_idle()
    ticks = await fetch(stack, "SELECT 1 FROM event_archive WHERE subject = $1 AND source_type = $2",
                        ps, "riskwatch.review_due")
    assert ticks == []
    assert await fetch(stack, "SELECT 1 FROM alert WHERE subject = $1 AND trigger = 'review_due'", ps) == []


async def test_alerts_reach_the_alerts_topic_once_per_alert(stack: Stack) -> None:
    from tests.support.api import read_topic

    await stack.wait_until_idle()
    stored = {str(row["alert_id"]) for row in await fetch(stack, "SELECT alert_id FROM alert")}
    records = await read_topic(stack, "alerts.v1")
    published = [decode_published("alerts.v1", record.value)["alert_id"] for record in records]
    assert set(published) == stored
    assert len(published) == len(stored)
    # CloudEvents headers: the record's name as the type, the alert's id as the id
    assert [(dict(r.headers)["ce_id"].decode(), dict(r.headers)["content-type"]) for r in records] == [
        (alert_id, b"application/vnd.apache.avro+binary") for alert_id in published]
    assert {dict(r.headers)["ce_type"] for r in records} <= {b"riskwatch.Alert", b"riskwatch.EscalatedAlert"}


def test_rebuild_from_the_archive_equals_the_live_projections(stack: Stack) -> None:
    import asyncio

    asyncio.run(stack.wait_until_idle())
    result = subprocess.run([sys.executable, "-m", "services.cli", "rebuild"], capture_output=True, text=True,
                            env=child_environment(stack.settings), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identical" in result.stdout
    digests = [line.split()[-1] for line in result.stdout.splitlines() if "digest" in line]
    assert len(digests) == 2 and digests[0] == digests[1]


async def test_normalize_forwards_one_batch_in_event_time_order(stack: Stack) -> None:
    """A fetch holds a subject's events in topic order; they go on to the risk stage by event time."""
    from schemas.codec import decode_risk_event, encode_event
    from schemas.json_format import event_from_json
    from streams.consume import Record
    from streams.normalize import normalize_batch
    from streams.topology import agency_topic
    from tests.support.api import read_topic

    subject = "ps_" + uuid.uuid4().hex
    documents = [
        event("prison_probation.custody_started", new_person(), at(9), {"facility": "Anstalten Hall"}),
        event("police.crime_report", new_person(), at(2), {"offence": "unlawful_threat"}),
        event("prison_probation.released", new_person(), at(30), {"release_kind": "conditional"}),
        event("police.arrest", new_person(), at(5), {"offence": "unlawful_threat"}),
    ]
    records = []
    for offset, document in enumerate(documents):
        document["subject"] = {"pseudonym": subject}
        event_type, record = event_from_json(document, today=dt.date(2026, 11, 1))
        value = encode_event(event_type, record, checked=True)
        records.append(Record(agency_topic(event_type), 0, offset, value, None))
    producer = new_producer(stack.settings)
    await producer.start()
    try:
        outcome = await normalize_batch(records, producer)
    finally:
        await producer.stop()
    assert (outcome.forwarded, outcome.refused) == (4, ())

    forwarded = [decode_risk_event(r.value) for r in await read_topic(stack, SUBJECT_EVENTS)
                 if r.key == subject.encode()]
    assert [e["event_id"] for e in forwarded] == [documents[i]["event_id"] for i in (1, 3, 0, 2)]
