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
from services.adapters.postgres.directory import PostgresClientDirectory
from services.api.auth import Role, add_client, token_hash
from services.runtime.stack import Stack
from streams.topology import AGENCY_TOPICS, ALL_TOPICS, DEADLETTER
from tests.support.api import agency_token, database, read_topic, sender_headers, user
from tests.support.scenario import at, event, jsonl, new_person

pytestmark = pytest.mark.integration


async def post(stack: Stack, body: bytes | dict, content_type: str = "application/json",
               token: str | None = None) -> httpx.Response:
    """Post as the given client, or as a client allowed to send the body (police for an unreadable one)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    if token is not None:
        headers = {"Authorization": f"Bearer {token}"}
    else:
        headers = await sender_headers(stack, *_documents(data))
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        return await client.post("/v1/events", content=data, headers={"content-type": content_type, **headers})


def _documents(data: bytes) -> list[dict]:
    documents = []
    for line in data.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if (isinstance(document, dict) and isinstance(document.get("agency"), str)
                and isinstance(document.get("unit"), str)):
            documents.append(document)
    return documents


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
    ("bad identity number", "set:subject.personal_identity_number=19700101-0001", "subject.personal_identity_number",
     "check digit"),
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
    dead = [r for r in await read_topic(stack, DEADLETTER)
            if dict(r.headers).get("__connect.errors.exception.message", b"").decode() == kept[-1]["reason"]]
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


def _ingest_file(stack: Stack, path, *options: str, **environment: str) -> subprocess.CompletedProcess[str]:
    from services.runtime.state import child_environment

    return subprocess.run([sys.executable, "-m", "services.cli", "ingest", str(path), *options], capture_output=True,
                          text=True, env={**child_environment(stack.settings), **environment}, timeout=120)


async def _clients_of(stack: Stack, documents: list[dict]) -> list[str | None]:
    connection = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await connection.fetch("SELECT event_id::text AS event_id, client FROM ingested_event "
                                      "WHERE event_id = ANY($1::uuid[])", [e["event_id"] for e in documents])
    finally:
        await connection.close()
    clients = {row["event_id"]: row["client"] for row in rows}
    return [clients.get(e["event_id"]) for e in documents]


async def test_file_ingest_reports_each_bad_line_and_publishes_the_good(stack: Stack, tmp_path) -> None:
    good = [event("police.domestic_callout", new_person(), at(5 + n), {"injuries": False}) for n in range(3)]
    foreign = event("prosecution.contact_ban_breach_reported", new_person(), at(5), {"electronic_monitoring": False},
                    unit="Åklagarmyndigheten Stockholm")
    lines = (jsonl(good[0]) + b"not json\n" + jsonl(good[1]) + b'{"event_type": "prosecution.nope"}\n' + jsonl(good[2])
             + jsonl(foreign))
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines)
    token = await agency_token(stack, "police", ["Polisen Region Stockholm"])

    refused = _ingest_file(stack, path)
    assert refused.returncode == 2 and "--token" in refused.stderr, "no credential, no ingest"
    result = _ingest_file(stack, path, RISKWATCH_CLIENT_TOKEN=token)
    assert result.returncode == 1, result.stderr
    assert "accepted 3, duplicates 0, rejected 3" in result.stdout
    assert "events.jsonl:2: event: is not valid JSON" in result.stderr
    assert "events.jsonl:4: event_type:" in result.stderr
    assert "events.jsonl:6: event_type: prosecution.contact_ban_breach_reported is not a police event" in result.stderr
    clients = await _clients_of(stack, [*good, foreign])
    assert clients[:3] == [clients[0]] * 3 and clients[0].startswith("police-") and clients[3] is None


async def test_file_ingest_as_the_local_operator_is_recorded_under_the_login_name(stack: Stack, tmp_path) -> None:
    documents = [event("police.domestic_callout", new_person(), at(9), {"injuries": False}),
                 event("prison_probation.released", new_person(), at(9), {"release_kind": "conditional"},
                       unit="Kriminalvården Frivård Umeå")]
    path = tmp_path / "operator.jsonl"
    path.write_bytes(jsonl(*documents))
    result = _ingest_file(stack, path, "--as-operator")
    assert result.returncode == 0, result.stderr
    assert "ingesting as local-operator:" in result.stderr
    clients = await _clients_of(stack, documents)
    assert clients[0] == clients[1] and clients[0].startswith("local-operator:")
    elsewhere = _ingest_file(stack, path, "--as-operator", RISKWATCH_DATABASE_URL=stack.settings.database_url + "?x=1")
    assert elsewhere.returncode == 2 and "only against the embedded stack" in elsewhere.stderr


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


async def test_events_need_an_agency_client_token(stack: Stack) -> None:
    document = event("police.domestic_callout", new_person(), at(10), {"injuries": False})
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        anonymous = await client.post("/v1/events", json=document)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    problem = anonymous.json()
    assert problem["status"] == 401 and problem["errors"] == [{"field": "authorization", "reason": "missing"}]
    assert anonymous.headers["content-type"] == "application/problem+json"
    person = await user(stack, Role.ADMIN)
    assert (await post(stack, document, token=person)).status_code == 401, "a user's token is not a client's"
    async with database(stack) as pool:
        token = await add_client(PostgresClientDirectory(pool), f"revoked-{uuid.uuid4().hex[:6]}", "police",
                                 ["Polisen Region Stockholm"])
        assert (await post(stack, document, token=token)).status_code == 202
        await pool.execute("UPDATE agency_client SET revoked_at = now() WHERE token_hash = $1", token_hash(token))
    assert (await post(stack, dict(document, event_id=str(uuid.uuid4())), token=token)).status_code == 401


async def test_a_client_submits_only_its_agency_events_for_its_units(stack: Stack) -> None:
    token = await agency_token(stack, "police", ["Polisen Region Syd"])
    own = event("police.domestic_callout", new_person(), at(11), {"injuries": False}, unit="Polisen Region Syd",
                region="syd")
    other_agency = event("prison_probation.released", new_person(), at(11), {"release_kind": "conditional"},
                         unit="Polisen Region Syd")
    other_unit = event("police.domestic_callout", new_person(), at(11), {"injuries": False})
    response = await post(stack, jsonl(own, other_agency, other_unit), "application/x-ndjson", token=token)
    assert response.status_code == 403, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert results[1]["errors"][0]["field"] == "event_type"
    assert "not a police event" in results[1]["errors"][0]["reason"]
    assert results[2]["errors"][0]["field"] == "unit"
    assert results[2]["errors"][0]["reason"].startswith("'Polisen Region Stockholm' is not one of the units")
    async with database(stack) as pool:
        client = await pool.fetchval("SELECT name FROM agency_client WHERE token_hash = $1", token_hash(token))
        recorded = await pool.fetch("SELECT event_id::text AS event_id, client FROM ingested_event "
                                    "WHERE event_id = ANY($1::uuid[])", [own["event_id"], other_agency["event_id"],
                                                                         other_unit["event_id"]])
        kept = await pool.fetchval("SELECT count(*) FROM dead_letter WHERE original = ANY($1::bytea[])",
                                   [json.dumps(d).encode() for d in (other_agency, other_unit)])
    assert [(r["event_id"], r["client"]) for r in recorded] == [(own["event_id"], client)]
    assert kept == 2, "forbidden events are kept in the dead letters"
    single = await post(stack, other_unit, token=token)
    assert single.status_code == 403 and single.json()["errors"][0]["field"] == "unit"


async def test_one_event_id_sent_twice_at_once_is_accepted_once(stack: Stack) -> None:
    """100 pairs of different events sharing an id, all sent at the same moment: one 202 and one 409 each."""
    pairs = []
    for _ in range(100):
        first = event("police.domestic_callout", new_person(), at(12), {"injuries": False})
        pairs.append((first, dict(first, payload={"injuries": True})))
    token = await agency_token(stack, "police", ["Polisen Region Stockholm"])
    # a connection each: a kept-alive one may be closed by the server as it is reused, which is no answer at all
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:

        async def send(document: dict) -> httpx.Response:
            """As an agency system would: a 503 (the gateway's database bound, on a busy machine) is sent again."""
            for _ in range(50):
                response = await client.post("/v1/events", json=document)
                if response.status_code != 503:
                    return response
                await asyncio.sleep(0.1)  # the client's back-off; it synchronises nothing
            return response

        answers = await asyncio.gather(*(send(document) for pair in pairs for document in pair))
    statuses = [answer.status_code for answer in answers]
    assert all(sorted(statuses[2 * n:2 * n + 2]) == [202, 409] for n in range(100)), statuses
    accepted = {answer.json()["event_id"]: answer.json() for answer in answers if answer.status_code == 202}
    on_topic = [r for r in await read_topic(stack, AGENCY_TOPICS["police"])
                if decode_event(r.value).record["event_id"] in accepted]
    assert len(on_topic) == 100, "each id is published once"
    for record in on_topic:
        decoded = decode_event(record.value).record
        assert (record.partition, record.offset) == (accepted[decoded["event_id"]]["partition"],
                                                     accepted[decoded["event_id"]]["offset"])
