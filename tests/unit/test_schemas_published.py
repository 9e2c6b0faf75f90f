"""The contracts of what Riskwatch publishes: risk-changes.v1, alerts.v1, alert-workflow.v1.

The same checks as the agency contracts (tests/unit/test_schemas_contracts.py): pinned
fingerprints, the specification's CRC-64-AVRO, round trips of generated data, and every
version reading every earlier one; then the codec's topic rules, and the messages the
producers build.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from collections.abc import Iterator
from io import BytesIO
from typing import Any, cast

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.alerts import Alert, Audience, StoredAlert, Trigger, evaluate_arrival
from projections.events import DAY_MS, RiskEvent, Victim
from projections.levels import Level
from projections.model import empty_state, fold
from projections.policy import default_policy
from schemas.codec import (
    decode_event,
    decode_published,
    decode_published_message,
    decode_risk_event,
    encode_published,
)
from schemas.errors import (
    ContractError,
    CorruptEventError,
    NotSingleObjectError,
    UnencodableEventError,
    UnknownEventTypeError,
    UnknownSchemaError,
)
from schemas.registry import PUBLISHED_TOPICS, WireSchema, default_registry
from streams.kafka import EVENT_HEADERS, event_headers, published_headers

from streams.topology import ALERT_WORKFLOW, ALERTS, ALL_TOPICS, PRODUCERS, RISK_CHANGES
from tests.unit.test_schemas_contracts import _assert_backward_compatible, _expected_under, crc64_avro

REGISTRY = default_registry()

# Every published schema, pinned: a published version never changes. A new version adds a line.
PINNED_FINGERPRINTS = {
    ("riskwatch.Alert", 1): "0x6e432a53d7ddc8c0",
    ("riskwatch.AlertStep", 1): "0x5ea98638e9b367db",
    ("riskwatch.CaseStep", 1): "0xf54dfafdce7ddf0b",
    ("riskwatch.EscalatedAlert", 1): "0x79bb3813f0a94ef5",
    ("riskwatch.ReviewStep", 1): "0x9a90c000ca81eecc",
    ("riskwatch.RiskChange", 1): "0x8e023d65c6a197b8",
}
ALL_PUBLISHED = [schema for name in REGISTRY.published_names() for schema in REGISTRY.published_versions(name)]
TOPIC_OF = {name: topic for topic, names in PUBLISHED_TOPICS.items() for name in names}


def _id(schema: WireSchema) -> str:
    return f"{schema.name}.v{schema.version}"


def _pseudonym() -> str:
    return "ps_" + uuid.uuid4().hex


@pytest.fixture(autouse=True)
def _seeded_random() -> Iterator[None]:
    """fastavro's data generator uses the global random module: seed it, then put it back."""
    state = random.getstate()
    random.seed(20260301)
    yield
    random.setstate(state)


def _avro_read(data: bytes, writer: WireSchema, reader: WireSchema | None = None) -> dict[str, Any]:
    body = BytesIO(data)
    body.seek(10)
    return cast(dict[str, Any], schemaless_reader(body, writer.schema, None if reader is None else reader.schema))


def test_the_published_topics_are_those_the_outbox_relay_writes() -> None:
    assert set(PUBLISHED_TOPICS) == {RISK_CHANGES, ALERTS, ALERT_WORKFLOW}
    assert set(PUBLISHED_TOPICS) <= set(ALL_TOPICS)
    assert all(PRODUCERS[topic] == ("outbox relay",) for topic in PUBLISHED_TOPICS)
    assert set(REGISTRY.published_names()) == set(TOPIC_OF)


def test_every_published_fingerprint_is_pinned() -> None:
    assert {(schema.name, schema.version): schema.fingerprint_hex for schema in ALL_PUBLISHED} == PINNED_FINGERPRINTS


def test_published_fingerprints_follow_the_avro_specification_and_differ_from_every_other() -> None:
    for schema in ALL_PUBLISHED:
        assert schema.fingerprint == crc64_avro(schema.canonical_form).to_bytes(8, "little")
        assert schema.header == b"\xc3\x01" + schema.fingerprint
        assert schema.fingerprint not in REGISTRY.by_fingerprint
        assert schema.fingerprint != REGISTRY.risk_event.fingerprint


def test_published_records_are_in_the_riskwatch_namespace_with_every_field_documented() -> None:
    def fields(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for field in record["fields"]:
            yield field
            kind = field["type"]
            if isinstance(kind, dict) and kind.get("type") == "record":
                yield from fields(kind)

    for schema in ALL_PUBLISHED:
        assert schema.name.startswith("riskwatch.") and schema.name.count(".") == 1
        assert schema.schema["doc"].startswith(f"Topic {TOPIC_OF[schema.name]}")
        undocumented = [field["name"] for field in fields(schema.schema) if not field.get("doc")]
        assert undocumented == [], schema.name


@pytest.mark.parametrize("schema", ALL_PUBLISHED, ids=_id)
def test_every_published_record_and_version_round_trips(schema: WireSchema) -> None:
    topic = TOPIC_OF[schema.name]
    latest = REGISTRY.published_versions(schema.name)[-1]
    for record in generate_many(schema.schema, 5):
        data = encode_published(topic, record)
        assert data[:10] == latest.header
        decoded = decode_published_message(topic, data)
        assert (decoded.name, decoded.version) == (schema.name, latest.version)
        assert decoded.record == record
        assert decode_published(topic, data) == record


@pytest.mark.parametrize("name", sorted(TOPIC_OF))
def test_every_published_version_reads_data_of_every_earlier_version(name: str) -> None:
    versions = REGISTRY.published_versions(name)
    assert [schema.version for schema in versions] == list(range(1, len(versions) + 1))
    for writer in versions:
        for record in generate_many(writer.schema, 20):
            data = writer.header + _body(writer, record)
            written = _avro_read(data, writer)
            for reader in versions[writer.version - 1 :]:
                assert _avro_read(data, writer, reader) == _expected_under(reader.schema, written)
    for older, newer in itertools.pairwise(versions):
        _assert_backward_compatible(
            older.schema, newer.schema, newer.schema["__named_schemas"], older.schema["__named_schemas"], path=""
        )


def _body(schema: WireSchema, record: dict[str, Any]) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, schema.schema, record)
    return buffer.getvalue()


def _risk_change(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "subject": _pseudonym(), "level": "high", "score": 41.25, "explanation": "High: strangulation (2.0x).",
        "policy_version": "2026.2", "assessed_at": 1_772_867_700_000,
        "causing_event_id": "3f2b8c1e-6a4d-4e0f-9b7a-2d5c8e1f4a6b",
    }
    record.update(changes)
    return record


def _step(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "alert_id": str(uuid.uuid4()), "subject": _pseudonym(),
        "action": "assigned", "status": "acknowledged", "actor": "Insp. Berg", "assignee": "Insp. Lind",
        "has_note": False, "at": "2026-03-07T08:15:00.123456+00:00",
    }
    record.update(changes)
    return record


def test_the_record_s_fields_choose_its_schema_on_a_topic_with_two() -> None:
    alert_step = _step()
    case_step = {**{k: v for k, v in _step().items() if k != "alert_id"}, "case_id": str(uuid.uuid4())}
    assert decode_published_message(ALERT_WORKFLOW, encode_published(ALERT_WORKFLOW, alert_step)).name == (
        "riskwatch.AlertStep"
    )
    decoded = decode_published_message(ALERT_WORKFLOW, encode_published(ALERT_WORKFLOW, case_step))
    assert (decoded.name, decoded.record) == ("riskwatch.CaseStep", case_step)
    review_step = {
        "event_id": str(uuid.uuid4()), "review_id": str(uuid.uuid4()), "subject": _pseudonym(),
        "action": "review_completed", "decision": "level_confirmed", "actor": "Insp. Berg", "has_note": True,
        "at": "2026-03-07T08:15:00+00:00",
    }
    decoded = decode_published_message(ALERT_WORKFLOW, encode_published(ALERT_WORKFLOW, review_step))
    assert (decoded.name, decoded.record) == ("riskwatch.ReviewStep", review_step)
    with pytest.raises(UnencodableEventError, match=r"fits 0 of the records of alert-workflow\.v1"):
        encode_published(ALERT_WORKFLOW, {**alert_step, "note": "names a person"})
    with pytest.raises(UnencodableEventError, match="fits 0"):
        encode_published(ALERT_WORKFLOW, {k: v for k, v in alert_step.items() if k != "has_note"})


def test_values_of_the_wrong_type_or_outside_an_enum_are_refused() -> None:
    with pytest.raises(UnencodableEventError) as refused:
        encode_published(RISK_CHANGES, _risk_change(level="severe"))
    assert refused.value.field == "level"
    with pytest.raises(UnencodableEventError) as refused:
        encode_published(ALERT_WORKFLOW, _step(has_note="yes"))
    assert str(refused.value) == "has_note: expected boolean, got str"
    with pytest.raises(UnencodableEventError, match="assessed_at"):
        encode_published(RISK_CHANGES, _risk_change(assessed_at="2026-03-07T08:15:00Z"))


def test_decoding_refuses_other_topics_messages_and_anything_not_published() -> None:
    data = encode_published(RISK_CHANGES, _risk_change())
    with pytest.raises(UnknownSchemaError) as refused:
        decode_published(ALERTS, data)
    assert refused.value.reason == "riskwatch.RiskChange v1 is published on risk-changes.v1, not on alerts.v1"
    with pytest.raises(UnknownSchemaError, match=r"for a message on alerts\.v1"):
        decode_published(ALERTS, REGISTRY.risk_event.header + b"\x00")
    with pytest.raises(UnknownSchemaError, match="for an agency event"):
        decode_event(data)
    with pytest.raises(UnknownSchemaError, match="for a canonical risk event"):
        decode_risk_event(data)
    with pytest.raises(NotSingleObjectError, match="got 7B 22"):
        decode_published(RISK_CHANGES, b'{"subject": "x"}')
    for damaged in (data[:-1], data + b"\x00"):
        with pytest.raises(CorruptEventError) as corrupt:
            decode_published(RISK_CHANGES, damaged)
        assert corrupt.value.field == "body"
    for unknown in (lambda: decode_published("subject-events.v1", data), lambda: encode_published("alerts", {})):
        with pytest.raises(UnknownEventTypeError, match="is not a topic Riskwatch publishes; those are "):
            unknown()


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200))
def test_any_bytes_after_a_published_header_give_a_record_or_a_contract_error(body: bytes) -> None:
    header = REGISTRY.published_versions("riskwatch.Alert")[-1].header
    try:
        decoded = decode_published_message(ALERTS, header + body)
    except ContractError:
        return
    assert decoded.name == "riskwatch.Alert"


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(max_size=30),
    score=st.floats(allow_nan=False),
    millis=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    level=st.sampled_from([level.label for level in Level]),
)
def test_any_risk_change_round_trips(text: str, score: float, millis: int, level: str) -> None:
    record = _risk_change(explanation=text, policy_version=text, score=score, assessed_at=millis, level=level)
    assert decode_published(RISK_CHANGES, encode_published(RISK_CHANGES, record)) == record


T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def _event(event_id: str, day: float, source_type: str, subject: str, **fields: Any) -> RiskEvent:
    at = T0 + int(day * DAY_MS)
    return RiskEvent(
        event_id=event_id, subject=subject, source_type=source_type, event_time=at, recorded_time=at,
        agency=source_type.split(".")[0], region="syd", unit="Polisregion Syd, Malmö", offence=fields.get("offence"),
        markers=frozenset(fields.get("markers", ())), victims=tuple(fields.get("victims", ())), attributes={},
    )


def _alerts() -> list[Alert]:
    subject = _pseudonym()
    victims = [Victim(_pseudonym(), False), Victim(_pseudonym(), True)]
    arriving = _event(str(uuid.uuid4()), 0, "police.crime_report", subject, offence="assault",
                      markers=["strangulation"], victims=victims)
    before = empty_state(subject)
    alerts, _ = evaluate_arrival(before, fold(before, arriving), arriving, default_policy())
    return alerts


@pytest.mark.parametrize("paged", [True, False])
def test_the_risk_stage_publishes_an_alert_as_its_record_with_paged(paged: bool) -> None:
    alerts = _alerts()
    assert {alert.trigger for alert in alerts} >= {Trigger.LEVEL_ROSE}
    for alert in alerts:
        row = StoredAlert.of(alert, paged=paged, topic=ALERTS)
        decoded = decode_published_message(ALERTS, row.message)
        assert decoded.name == "riskwatch.Alert"
        assert decoded.record == {**alert.to_dict(), "paged": paged}
        assert decoded.record["protected_victims"] == 1 and len(decoded.record["victims"]) == 1


def test_an_alert_with_region_withheld_and_no_factors_round_trips() -> None:
    alert = _alerts()[0]
    withheld = Alert(**{**{name: getattr(alert, name) for name in Alert.__dataclass_fields__},
                        "audience": Audience(None, None), "factors": (), "victims": (), "protected_victims": 0})
    message = StoredAlert.of(withheld, paged=True, topic=ALERTS).message
    assert decode_published(ALERTS, message) == {**withheld.to_dict(), "paged": True}


def test_an_escalation_is_an_escalated_alert_for_the_supervisors() -> None:
    alert = {**_alerts()[0].to_dict(), "paged": True}
    # as services/workflow/alerts.py builds it from the stored alert
    escalation = {
        "alert_id": str(uuid.uuid4()), "subject": alert["subject"], "trigger": "escalated",
        "priority": alert["priority"], "level_before": alert["level_before"], "level_after": alert["level_after"],
        "score": alert["score"], "explanation": "Not acknowledged within 4 hours: " + alert["explanation"],
        "factors": alert["factors"], "audience": {**alert["audience"], "supervisor": True},
        "event_time": int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000),
        "causing_event_id": alert["causing_event_id"], "policy_version": alert["policy_version"],
        "escalated_from": alert["alert_id"],
    }
    decoded = decode_published_message(ALERTS, encode_published(ALERTS, escalation))
    assert (decoded.name, decoded.record) == ("riskwatch.EscalatedAlert", escalation)


def test_the_relay_s_headers_name_the_record_and_follow_the_causing_event_s_trace() -> None:
    alert = _alerts()[0]
    message = StoredAlert.of(alert, paged=True, topic=ALERTS).message
    headers = dict(published_headers(ALERTS, message))
    assert list(headers) == list(EVENT_HEADERS)
    assert headers["ce_type"] == b"riskwatch.Alert" and headers["ce_id"] == alert.alert_id.encode()
    assert headers["content-type"] == b"application/vnd.apache.avro+binary"
    assert headers["ce_source"] == b"riskwatch/risk"
    assert headers["schema_fingerprint"] == REGISTRY.published_versions("riskwatch.Alert")[-1].fingerprint_hex.encode()
    causing = dict(event_headers("police.crime_report", alert.causing_event_id, message, "ingest"))
    assert headers["traceparent"].split(b"-")[1] == causing["traceparent"].split(b"-")[1]
    change = _risk_change()
    first = dict(published_headers(RISK_CHANGES, encode_published(RISK_CHANGES, change)))
    assert first["ce_id"] == dict(published_headers(RISK_CHANGES, encode_published(RISK_CHANGES, change)))["ce_id"]
    assert uuid.UUID(first["ce_id"].decode()).version == 5
    step = _step()
    assert dict(published_headers(ALERT_WORKFLOW, encode_published(ALERT_WORKFLOW, step)))["ce_id"] == (
        step["event_id"].encode()
    )
    assert published_headers(ALERTS, b'{"alert_id": "written before the contracts"}') == []
