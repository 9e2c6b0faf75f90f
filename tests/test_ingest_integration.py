"""The ingest gateway against the real embedded broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest

from schemas.codec import decode_event, encode_event
from schemas.json_format import event_from_json
from services.stack import Stack
from streams.topology import AGENCY_TOPICS, ALL_TOPICS, DEADLETTER
from tests.api_support import read_topic
from tests.scenario import at, event, jsonl, new_person

pytestmark = pytest.mark.integration


async def post(stack: Stack, body: bytes | dict, content_type: str = "application/json") -> httpx.Response:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        return await client.post("/v1/events", content=data, headers={"content-type": content_type})


async def test_accepted_event_is_on_its_agency_topic_keyed_by_pseudonym(stack: Stack) -> None:
    subject = new_person()
    document = event("police.domestic_callout", subject, at(1), {"injuries": True})
    response = await post(stack, document)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "accepted" and answer["topic"] == AGENCY_TOPICS["police"]
    records = [r for r in await read_topic(stack, AGENCY_TOPICS["police"])
               if r.partition == answer["partition"] and r.offset == answer["offset"]]
    assert len(records) == 1
    decoded = decode_event(records[0].value)
    assert decoded.record["event_id"] == document["event_id"]
    assert decoded.record["subject"]["kind"] == "pseudonym"
    assert records[0].key.decode() == decoded.record["subject"]["value"]
    assert subject.encode() not in records[0].value


async def test_duplicate_event_id_is_recognised_and_conflicts_are_refused(stack: Stack) -> None:
    document = event("police.arrest", new_person(), at(2), {"offence": "assault"})
    first, second = await post(stack, document), await post(stack, document)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["status"] == "duplicate"
    changed = dict(document, payload={"offence": "rape"})
    conflict = await post(stack, changed)
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["field"] == "event_id"


BAD_INPUTS = [
    ("malformed json", b'{"event_id": ', "event", "not valid JSON"),
    ("not an object", b"[1, 2]", "event", "expected a JSON object"),
    ("unknown type", {"event_type": "police.teleport"}, "event_type", "not a known event type"),
    ("missing field", "drop:region", "region", "missing"),
    ("wrong type", "set:payload.injuries=yes", "payload.injuries", "true or false"),
    ("impossible date", "set:event_time=2026-02-30T10:00:00+01:00", "event_time", ""),
    ("bad identity number", "set:subject.personal_identity_number=19700101-0001", "subject.personal_identity_number", "check digit"),
    ("healthcare without basis", "healthcare", "legal_basis", "osl_10_18c"),
]


def _bad_document(spec: object) -> bytes:
    if isinstance(spec, bytes):
        return spec
    if isinstance(spec, dict):
        return json.dumps(spec).encode()
    document = event("police.domestic_callout", new_person(), at(3), {"injuries": False})
    if spec == "healthcare":
        document = event("healthcare.suicide_threat", new_person(), at(3), {"attempt": False})
        document["legal_basis"] = None
    elif isinstance(spec, str) and spec.startswith("drop:"):
        del document[spec[5:]]
    elif isinstance(spec, str) and spec.startswith("set:"):
        path, value = spec[4:].split("=", 1)
        target = document
        *parents, leaf = path.split(".")
        for name in parents:
            target = target[name]
        target[leaf] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(("name", "spec", "field", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_input_is_named_and_kept_in_the_dead_letters(stack: Stack, name: str, spec: object,
                                                               field: str, reason: str) -> None:
    raw = _bad_document(spec)
    marker = str(uuid.uuid4())
    response = await post(stack, raw)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and reason in e["reason"] for e in errors), errors
    connection = await asyncpg.connect(stack.settings.database_url)
    try:
        kept = await connection.fetch("SELECT reason, original FROM dead_letter WHERE original = $1", raw)
    finally:
        await connection.close()
    assert kept and field in kept[-1]["reason"], (marker, kept)
    dead = [r for r in await read_topic(stack, DEADLETTER) if dict(r.headers).get("__connect.errors.exception.message", b"").decode() == kept[-1]["reason"]]
    assert dead, "the refused event is on the dead-letter topic with its reason"


async def test_avro_single_object_body_is_accepted_and_unknown_fingerprints_refused(stack: Stack) -> None:
    document = event("police.em_alarm", new_person(), at(4), {"alarm": "tamper"})
    event_type, record = event_from_json(document, today=at(300).date())
    body = encode_event(event_type, record)
    accepted = await post(stack, body, "application/vnd.apache.avro+binary")
    assert accepted.status_code == 202, accepted.text
    forged = body[:2] + bytes(8) + body[10:]
    refused = await post(stack, forged, "application/vnd.apache.avro+binary")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "fingerprint"


async def test_file_ingest_reports_each_bad_line_and_publishes_the_good(stack: Stack, tmp_path) -> None:
    good = [event("police.domestic_callout", new_person(), at(5 + n), {"injuries": False}) for n in range(3)]
    lines = jsonl(good[0]) + b"not json\n" + jsonl(good[1]) + b'{"event_type": "prosecution.nope"}\n' + jsonl(good[2])
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines)
    from services.runtime import child_environment

    result = subprocess.run([sys.executable, "-m", "services.cli", "ingest", str(path)], capture_output=True,
                            text=True, env=child_environment(stack.settings), timeout=120)
    assert result.returncode == 1, result.stderr
    assert "accepted 3, duplicates 0, rejected 2" in result.stdout
    assert "events.jsonl:2: event: is not valid JSON" in result.stderr
    assert "events.jsonl:4: event_type:" in result.stderr
    connection = await asyncpg.connect(stack.settings.database_url)
    try:
        accepted = await connection.fetchval(
            "SELECT count(*) FROM ingested_event WHERE event_id = ANY($1::uuid[])", [e["event_id"] for e in good])
    finally:
        await connection.close()
    assert accepted == 3


async def test_an_independent_librdkafka_client_producing_avro_is_accepted(stack: Stack) -> None:
    """An agency system with its own Kafka client writes a valid Avro event straight to its topic."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    document = event("prosecution.contact_ban_breach_reported", new_person(), at(6), {"electronic_monitoring": True})
    document["subject"] = {"pseudonym": "ps_" + uuid.uuid4().hex}
    event_type, record = event_from_json(document, today=at(300).date())
    producer = confluent_kafka.Producer({"bootstrap.servers": stack.settings.kafka_bootstrap_servers, "acks": "all"})
    delivered: list = []
    producer.produce(AGENCY_TOPICS["prosecution"], encode_event(event_type, record),
                     key=record["subject"]["value"], on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(30)
    del producer
    assert delivered == [None]
    await stack.wait_until_idle()
    connection = await asyncpg.connect(stack.settings.database_url)
    try:
        archived = await connection.fetchval("SELECT source_type FROM event_archive WHERE event_id = $1::uuid",
                                             document["event_id"])
        alerts = await connection.fetch("SELECT trigger FROM alert WHERE causing_event_id = $1::uuid",
                                        document["event_id"])
    finally:
        await connection.close()
    assert archived == "prosecution.contact_ban_breach_reported"
    assert "contact_ban_breach" in {a["trigger"] for a in alerts}


async def test_no_clear_identity_number_reaches_any_topic(stack: Stack) -> None:
    numbers = [new_person() for _ in range(4)]
    victim = new_person()
    documents = [event("police.crime_report", n, at(7), {"offence": "assault"}, victims=[victim]) for n in numbers]
    for document in documents:
        assert (await post(stack, document)).status_code == 202
    bad = event("police.crime_report", numbers[0], at(7), {"offence": "no-such-offence"}, victims=[victim])
    assert (await post(stack, bad)).status_code == 422
    await stack.wait_until_idle()
    forms = set()
    for number in [*numbers, victim]:
        digits = number.replace("-", "")
        forms |= {number.encode(), digits.encode(), digits[2:].encode(), f"{digits[2:8]}-{digits[8:]}".encode()}
    seen = 0
    for topic in ALL_TOPICS:
        for record in await read_topic(stack, topic):
            seen += 1
            for form in forms:
                assert form not in (record.value or b"") and form not in (record.key or b""), topic
                assert all(form not in value for _, value in record.headers), topic
    assert seen > len(documents)


async def test_concurrent_events_about_the_same_new_person_are_all_accepted(stack: Stack) -> None:
    subject = new_person()
    documents = [event("police.domestic_callout", subject, at(8 + n), {"injuries": False}) for n in range(6)]
    answers = await asyncio.gather(*(post(stack, document) for document in documents))
    assert [answer.status_code for answer in answers] == [202] * len(documents), [a.text for a in answers]
