"""The reproductions of what got past the boundary: each is now a 4xx naming the field, in problem
details, kept in the dead letters when it was ingest input; no identity number in any spelling
reaches a topic, a log or /metrics."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from schemas.codec import encode_event
from schemas.json_format import event_from_json
from schemas.text import normalised
from services.api.auth import Role
from services.runtime.stack import Stack
from streams.topology import ALL_TOPICS
from tests.support.api import (
    agency_token,
    client,
    database,
    read_topic,
    released_high_risk_subject,
    sender_headers,
    user,
)
from tests.support.scenario import at, event, new_person, spellings

pytestmark = pytest.mark.integration


def _crime_report(**changes: Any) -> dict[str, Any]:
    document = event("police.crime_report", new_person(), at(3), {"offence": "assault"}, victims=[new_person()])
    document.update(changes)
    return document


async def _police(stack: Stack) -> str:
    """An agency client that may send the scenario's police events."""
    return await agency_token(stack, "police", ["Polisen Region Stockholm"])


def _raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


REPRODUCTIONS: list[tuple[str, bytes, str, str]] = [
    ("NUL in unit", _raw(_crime_report(unit="a\x00b")), "unit", "U+0000"),
    ("lone surrogate", _raw(_crime_report(unit="\ud800")), "unit", "lone surrogate"),
    ("UTF-16", json.dumps(_crime_report()).encode("utf-16"), "event", "UTF-16"),
    ("UTF-32", json.dumps(_crime_report()).encode("utf-32-be"), "event", "UTF-16 or UTF-32"),
    ("invalid UTF-8", _raw(_crime_report())[:-2] + b"\xff}", "event", "not UTF-8"),
    ("nesting", b'{"event_type": "police.crime_report", "payload": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     "event", "nests deeper"),
    ("4,301 digits", _raw(_crime_report()).replace(b'"assault"', b'"assault", "x": ' + b"9" * 4301),
     "payload.x", "unknown field"),
    ("year 0001", _raw(_crime_report(event_time="0001-01-01T00:00:00+01:00")), "event_time", "outside"),
    ("year 9999", _raw(_crime_report(recorded_time="9999-12-31T23:30:00-01:00")), "recorded_time", "outside"),
    ("full-width digits", _raw(_crime_report(subject={"personal_identity_number": "１９８５０３１２－０００１"})),
     "subject.personal_identity_number", "0-9"),
    ("string of 2 MB", _raw(_crime_report(unit="x" * 2_000_000)), "unit", "longer than 200"),
    ("number in offence_code", _raw(_crime_report(payload={"offence": "assault", "offence_code": "19850312-0001"})),
     "payload.offence_code", "identity number"),
]


async def _dead_letters(stack: Stack, original: bytes) -> list[Any]:
    async with database(stack) as pool:
        return list(await pool.fetch("SELECT source, reason FROM dead_letter WHERE original = $1", original))


@pytest.mark.parametrize(("name", "raw", "field", "reason"), REPRODUCTIONS, ids=[r[0] for r in REPRODUCTIONS])
async def test_each_reproduction_is_refused_naming_the_field_and_dead_lettered(
        stack: Stack, name: str, raw: bytes, field: str, reason: str) -> None:
    async with client(stack, await _police(stack)) as http:
        answer = await http.post("/v1/events", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == 422 and any(
            e["field"] == field and reason in e["reason"] for e in problem["errors"]), problem
        assert "19850312" not in answer.text and "１９８５" not in answer.text
        assert (await http.get("/healthz")).status_code == 200, "the connection is still good"
    assert await _dead_letters(stack, raw), "kept, with its reason"


async def test_an_avro_body_with_a_nul_in_its_unit_is_refused_and_dead_lettered(stack: Stack) -> None:
    event_type, record = event_from_json(_crime_report(), today=at(300).date())
    record["unit"] = "a\x00b"
    body = encode_event(event_type, record)
    async with client(stack, await _police(stack)) as http:
        answer = await http.post("/v1/events", content=body,
                                 headers={"content-type": "application/vnd.apache.avro+binary"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "unit", answer.text
    assert await _dead_letters(stack, body)


async def test_an_event_id_shaped_like_an_identity_number_is_not_echoed(stack: Stack) -> None:
    async with client(stack, await _police(stack)) as http:
        answer = await http.post("/v1/events", json=_crime_report(event_id="19850312-0001"))
    assert answer.status_code == 422 and answer.json()["event_id"] is None
    assert "0312" not in answer.text


async def test_a_body_too_large_and_a_wrong_media_type_are_refused_and_dead_lettered(stack: Stack) -> None:
    marker = uuid.uuid4().hex.encode()
    large = marker + b" " * (8 * 1024 * 1024)
    async with client(stack, await _police(stack)) as http:
        too_large = await http.post("/v1/events", content=large, headers={"content-type": "application/json"})
        wrong_type = await http.post("/v1/events", content=marker + b"<event/>", headers={"content-type": "text/xml"})
    assert too_large.status_code == 413 and too_large.json()["errors"][0]["field"] == "body"
    assert wrong_type.status_code == 415 and wrong_type.json()["errors"][0]["field"] == "content-type"
    kept = await _dead_letters(stack, large[:4096])
    digest = hashlib.sha256(large).hexdigest()
    grouped = ":".join(digest[start:start + 8] for start in range(0, 64, 8))
    assert kept and grouped in kept[0]["reason"] and str(len(large)) in kept[0]["reason"]
    assert await _dead_letters(stack, marker + b"<event/>")


async def test_ndjson_accepts_the_good_lines_and_names_the_bad_ones(stack: Stack) -> None:
    good, bad = _crime_report(), _raw(_crime_report(unit="\x07"))
    body = _raw(good) + b"\n" + bad + b"\n"
    async with client(stack, await _police(stack)) as http:
        answer = await http.post("/v1/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 422
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "rejected"]
    assert answer.json()["errors"][0]["field"] == "lines[2].unit"
    assert await _dead_letters(stack, bad)


async def test_query_parameters_and_bodies_with_nul_or_surrogates_are_refused(stack: Stack) -> None:
    story = await released_high_risk_subject(stack)
    token = await user(stack, Role.INTELLIGENCE_ANALYST, ["national"])
    alert = f"/v1/alerts/{story.release_alert}"
    async with client(stack, token) as http:
        for path in ("/v1/subjects/ps_%00", "/v1/alerts?subject=%00", "/v1/alerts?anything=%00",
                     "/v1/alerts?subject=%ed%a0%80", "/v1/access-log?actor=%00", "/v1/subjects/198503120001",
                     "/v1/alerts?subject=8503120001"):
            answer = await http.get(path)
            assert answer.status_code in (400, 403, 422), (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert "0312" not in answer.text
        for step, body in ((f"{alert}/acknowledge", b'{"note": "a\\u0000b"}'),
                           (f"{alert}/assign", b'{"assignee": "\\ud800"}'),
                           (f"{alert}/close", b'{"note": "\\udfff"}'),
                           (f"{alert}/assign", b'{"assignee": "Insp. ' + "８５０３１２-０００１".encode() + b'"}'),
                           (f"/v1/subjects/{story.subject}/override", b'{"level": "low", "reason": "a\\u0000"}')):
            answer = await http.post(step, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 422, (step, answer.text)
            assert answer.json()["errors"][0]["field"] in ("note", "assignee", "reason")
        assert (await http.get(alert)).json()["status"] == "open", "nothing refused was applied"
        # A pseudonym's hex digits may run as long as an identity number: it is still asked for.
        digits = "ps_" + "1985031200019" + "a" * 19
        answer = await http.get(f"/v1/alerts?subject={digits}")
        assert answer.status_code == 200, answer.text


async def test_riskwatch_ingest_reports_poison_lines_and_records_the_good_ones(stack: Stack, tmp_path) -> None:
    from services.runtime.state import child_environment

    good = [_crime_report() for _ in range(3)]
    lines = [_raw(good[0]), _raw(_crime_report(unit="a\x00b")), _raw(good[1]), b"[" * 5000,
             _raw(_crime_report(unit="\udc00")), b'{"n": ' + b"1" * 5000 + b"}", _raw(good[2])]
    path = tmp_path / "poison.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = subprocess.run([sys.executable, "-m", "services.cli", "ingest", "--as-operator", str(path)],
                            capture_output=True,
                            text=True, env=child_environment(stack.settings), timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    assert "accepted 3, duplicates 0, rejected 4" in result.stdout, result.stdout + result.stderr
    async with database(stack) as pool:
        recorded = await pool.fetchval("SELECT count(*) FROM ingested_event WHERE event_id = ANY($1::uuid[])",
                                       [e["event_id"] for e in good])
    assert recorded == 3


FREE_TEXT = ("unit", "payload.offence_code", "payload.suspected_offence_code", "payload.facility",
             "payload.concern", "payload.programme", "payload.reason", "payload.description", "payload.weapon_kind")
# An event type of each free-text field above, with a payload that is otherwise valid.
CARRIERS: dict[str, tuple[str, dict[str, Any]]] = {
    "unit": ("police.domestic_callout", {"injuries": False}),
    "payload.offence_code": ("police.crime_report", {"offence": "assault"}),
    "payload.suspected_offence_code": ("police.arrest", {"offence": "assault"}),
    "payload.facility": ("prison_probation.custody_started", {"facility": "Anstalten Hall"}),
    "payload.concern": ("social_services.concern_shared", {"concern": "Oro för barnen"}),
    "payload.programme": ("prison_probation.programme_enrolled", {"programme": "IDAP"}),
    "payload.reason": ("police.weapons_licence_revoked", {}),
    "payload.description": ("prison_probation.supervision_breach", {}),
    "payload.weapon_kind": ("police.weapons_licence_held", {}),
}


async def test_identity_numbers_in_free_text_are_refused_in_every_spelling_and_found_nowhere(stack: Stack) -> None:
    planted = new_person()
    story = await released_high_risk_subject(stack)
    token = await user(stack, Role.INTELLIGENCE_ANALYST, ["national"])
    alert = f"/v1/alerts/{story.release_alert}"
    refused = 0
    async with client(stack, token) as http:
        for spelling in spellings(planted).values():
            text = f"Enhet {spelling}"
            for field in FREE_TEXT:
                event_type, payload = CARRIERS[field]
                document = event(event_type, new_person(), at(4), payload)
                if field == "unit":
                    document["unit"] = text
                else:
                    document["payload"][field.removeprefix("payload.")] = text
                # The sender's own escapes stay escapes in the bytes; json.dumps would escape their backslashes.
                raw = json.dumps(document).replace(json.dumps(text)[1:-1], text).encode()
                answer = await http.post("/v1/events", content=raw, headers={
                    "content-type": "application/json", **await sender_headers(stack, {"agency": document["agency"]})})
                if answer.status_code == 422 and any(e["field"] == field for e in answer.json()["errors"]):
                    refused += 1
                else:
                    pytest.fail(f"{field} with {spelling!r}: {answer.status_code} {answer.text}")
            for path, body in ((f"{alert}/assign", {"assignee": text}), (f"{alert}/acknowledge", {"note": text}),
                               (f"/v1/subjects/{story.subject}/override", {"level": "low", "reason": text})):
                content = json.dumps(body).replace(json.dumps(text)[1:-1], text).encode()
                answer = await http.post(path, content=content, headers={"content-type": "application/json"})
                assert answer.status_code == 422, (path, spelling, answer.text)
                refused += 1
        metrics = (await http.get("/metrics")).text
    assert refused == len(spellings(planted)) * (len(FREE_TEXT) + 3)
    await stack.wait_until_idle()
    wanted = planted.replace("-", "")[2:]  # YYMMDDNNNC: within every spelling once normalised

    def found(blob: bytes | str | None) -> bool:
        text = blob.decode("utf-8", "surrogateescape") if isinstance(blob, bytes) else (blob or "")
        return wanted in normalised(text).replace("-", "").replace(" ", "").replace("+", "")

    for topic in ALL_TOPICS:
        for record in await read_topic(stack, topic):
            assert not found(record.value) and not found(record.key), topic
            assert not any(found(value) for _, value in record.headers), topic
    for log in stack.logs.glob("*.log"):
        assert not found(log.read_bytes()), log.name
    assert not found(metrics)
