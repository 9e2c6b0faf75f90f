"""The Avro contracts and the single-object codec: catalogue coverage, versions, wire format."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator, Mapping
from io import BytesIO
from typing import Any, cast

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode_event, decode_risk_event, encode_event, encode_risk_event
from schemas.errors import (
    ContractError,
    CorruptEventError,
    NotSingleObjectError,
    UnencodableEventError,
    UnknownEventTypeError,
    UnknownSchemaError,
)
from schemas.registry import EventSchema, default_registry, record_name

REGISTRY = default_registry()

# The catalogue's event types, written out independently of the schema files.
CATALOGUE = {
    "police": [
        "arrest",
        "crime_report",
        "domestic_callout",
        "risk_assessment",
        "weapons_licence_held",
        "weapons_licence_revoked",
        "em_alarm",
    ],
    "prosecution": [
        "contact_ban_issued",
        "contact_ban_ended",
        "contact_ban_breach_reported",
        "charge_filed",
        "detention_decided",
        "detention_lifted",
    ],
    "prison_probation": [
        "custody_started",
        "release_scheduled",
        "released",
        "furlough_granted",
        "furlough_started",
        "furlough_ended",
        "probation_started",
        "probation_ended",
        "programme_enrolled",
        "programme_completed",
        "programme_dropped",
        "supervision_breach",
    ],
    "social_services": ["concern_shared", "risk_assessment", "separation_reported"],
    "healthcare": [
        "psychiatric_emergency",
        "suicide_threat",
        "threats_expressed_in_care",
        "substance_abuse_treatment",
        "victim_injury_treated",
    ],
}
CATALOGUE_TYPES = {f"{agency}.{name}" for agency, names in CATALOGUE.items() for name in names}

# Every published schema, pinned: a published version must never change, and the envelope
# and shared types are part of every schema. A new version adds a line here.
PINNED_FINGERPRINTS = {
    ("healthcare.psychiatric_emergency", 1): "0xe5cc019a7b458ab1",
    ("healthcare.substance_abuse_treatment", 1): "0x8d88492dce6540ee",
    ("healthcare.suicide_threat", 1): "0x793546a01a759059",
    ("healthcare.threats_expressed_in_care", 1): "0x8c2ddba39376ffb7",
    ("healthcare.victim_injury_treated", 1): "0x3650f454624f2aa2",
    ("police.arrest", 1): "0xaecc93c19371305e",
    ("police.crime_report", 1): "0x44477b372684a978",
    ("police.crime_report", 2): "0x9980b52326b1d10f",
    ("police.domestic_callout", 1): "0x009c4721b05e3cd4",
    ("police.em_alarm", 1): "0x6a0ca81ed275aed9",
    ("police.risk_assessment", 1): "0x9a97b6fd306f1574",
    ("police.weapons_licence_held", 1): "0x95bd83024bcec6fa",
    ("police.weapons_licence_revoked", 1): "0xbe73c1ed035da90e",
    ("prison_probation.custody_started", 1): "0x9ff97da17d00310d",
    ("prison_probation.furlough_ended", 1): "0x5dad3b30ffc9071c",
    ("prison_probation.furlough_granted", 1): "0x58859edd2bff2153",
    ("prison_probation.furlough_started", 1): "0x1b72d27917a9b40d",
    ("prison_probation.probation_ended", 1): "0x2dfc5a909c8db917",
    ("prison_probation.probation_started", 1): "0xa8cf1aa52e5f19ea",
    ("prison_probation.programme_completed", 1): "0x321157925817e232",
    ("prison_probation.programme_dropped", 1): "0x93fbb419c0bcd76a",
    ("prison_probation.programme_enrolled", 1): "0x995b4db20ef212eb",
    ("prison_probation.release_scheduled", 1): "0x06bb102e8d01f460",
    ("prison_probation.released", 1): "0xa8f8669c388976d4",
    ("prison_probation.supervision_breach", 1): "0xd896bcf9c2caf0e1",
    ("prosecution.charge_filed", 1): "0xcf2d83112d23f108",
    ("prosecution.contact_ban_breach_reported", 1): "0xe03e0d205937f44e",
    ("prosecution.contact_ban_ended", 1): "0x40100ba42855b1e4",
    ("prosecution.contact_ban_issued", 1): "0xd49508b23ad3f5e8",
    ("prosecution.detention_decided", 1): "0x93134107834a5eac",
    ("prosecution.detention_lifted", 1): "0x326d5a31a24e7f3e",
    ("social_services.concern_shared", 1): "0xc481396b0eda98ec",
    ("social_services.concern_shared", 2): "0xbe515903882259ce",
    ("social_services.risk_assessment", 1): "0x581fc3add6c2aea0",
    ("social_services.separation_reported", 1): "0x7ac30540a4b6a04d",
}
PINNED_RISK_EVENT_FINGERPRINT = "0xce64d281e2eae06f"

ALL_SCHEMAS = [schema for event_type in REGISTRY.event_types() for schema in REGISTRY.versions(event_type)]
UTC = dt.UTC


def _id(schema: EventSchema) -> str:
    return f"{schema.event_type}.v{schema.version}"


@pytest.fixture(autouse=True)
def _seeded_random() -> Iterator[None]:
    """fastavro's data generator uses the global random module: seed it, then put it back."""
    state = random.getstate()
    random.seed(20260301)
    yield
    random.setstate(state)


def _generated(schema: EventSchema, count: int) -> list[dict[str, Any]]:
    records = list(generate_many(schema.schema, count))
    for record in records:
        record["event_type"] = schema.event_type
    return records


def _avro_read(data: bytes, writer: EventSchema, reader: EventSchema | None = None) -> dict[str, Any]:
    body = BytesIO(data)
    body.seek(10)
    return cast(dict[str, Any], schemaless_reader(body, writer.schema, None if reader is None else reader.schema))


def crc64_avro(text: str) -> int:
    """CRC-64-AVRO as the Avro specification gives it, written out independently of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for byte in range(256):
        fingerprint = byte
        for _ in range(8):
            fingerprint = (fingerprint >> 1) ^ (empty & -(fingerprint & 1))
        table.append(fingerprint)
    fingerprint = empty
    for byte in text.encode("utf-8"):
        fingerprint = (fingerprint >> 8) ^ table[(fingerprint ^ byte) & 0xFF]
    return fingerprint


def test_every_catalogue_event_type_has_a_schema_and_nothing_else_does() -> None:
    assert set(REGISTRY.event_types()) == CATALOGUE_TYPES
    assert len(CATALOGUE_TYPES) == 33


def test_records_are_named_after_their_event_type() -> None:
    assert REGISTRY.latest("police.crime_report").name == "riskwatch.police.CrimeReport"
    assert REGISTRY.latest("police.crime_report").payload_schema["name"] == "riskwatch.police.CrimeReportPayload"
    for schema in ALL_SCHEMAS:
        assert schema.name == record_name(schema.event_type)
        assert schema.payload_schema["name"] == schema.name + "Payload"


def test_version_two_exists_for_the_evolved_types() -> None:
    crime_report = REGISTRY.versions("police.crime_report")
    concern = REGISTRY.versions("social_services.concern_shared")
    assert [schema.version for schema in crime_report] == [1, 2]
    assert [schema.version for schema in concern] == [1, 2]
    assert _payload_fields(crime_report[1]) - _payload_fields(crime_report[0]) == {"sexual_violence"}
    assert _payload_fields(concern[1]) - _payload_fields(concern[0]) == {"children_in_household"}
    assert REGISTRY.latest("police.crime_report") is crime_report[-1]


def _payload_fields(schema: EventSchema) -> set[str]:
    return {field["name"] for field in schema.payload_schema["fields"]}


def test_every_published_fingerprint_is_pinned() -> None:
    published = {(schema.event_type, schema.version): schema.fingerprint_hex for schema in ALL_SCHEMAS}
    assert published == PINNED_FINGERPRINTS
    assert REGISTRY.risk_event.fingerprint_hex == PINNED_RISK_EVENT_FINGERPRINT


def test_fingerprints_follow_the_avro_specification() -> None:
    for schema in [*ALL_SCHEMAS, REGISTRY.risk_event]:
        assert schema.fingerprint == crc64_avro(schema.canonical_form).to_bytes(8, "little")
        assert schema.header == b"\xc3\x01" + schema.fingerprint
    # Parsing Canonical Form keeps what decoding needs: full names, no docs, no defaults.
    canonical = REGISTRY.latest("police.crime_report").canonical_form
    assert canonical.startswith('{"name":"riskwatch.police.CrimeReport","type":"record","fields":[')
    assert '"doc"' not in canonical and '"default"' not in canonical


def test_schemas_are_self_contained_with_shared_types_defined_once() -> None:
    canonical = REGISTRY.latest("police.crime_report").canonical_form
    assert canonical.count('{"name":"riskwatch.PersonRef","type":"record"') == 1
    assert '"type":{"type":"array","items":{"name":"riskwatch.RelatedPerson"' in canonical
    assert '"riskwatch.Offence","type":"enum"' in canonical


@pytest.mark.parametrize("schema", ALL_SCHEMAS, ids=_id)
def test_every_type_and_version_round_trips(schema: EventSchema) -> None:
    for record in _generated(schema, 5):
        data = encode_event(schema.event_type, record, schema.version)
        assert data[:10] == schema.header
        decoded = decode_event(data)
        assert (decoded.event_type, decoded.version) == (schema.event_type, schema.version)
        assert decoded.record == _expected_under(REGISTRY.latest(schema.event_type).schema, _avro_read(data, schema))


def _expected_under(reader: Mapping[str, Any], written: Mapping[str, Any]) -> dict[str, Any]:
    """What a reader of `reader` must see for a record read with its own writer schema."""
    expected: dict[str, Any] = {}
    for field in reader["fields"]:
        name = field["name"]
        if name not in written:
            expected[name] = field["default"]
        elif isinstance(field["type"], dict) and field["type"]["type"] == "record":
            expected[name] = _expected_under(field["type"], written[name])
        else:
            expected[name] = written[name]
    return expected


@pytest.mark.parametrize("event_type", sorted(CATALOGUE_TYPES))
def test_every_version_reads_data_of_every_earlier_version(event_type: str) -> None:
    versions = REGISTRY.versions(event_type)
    for writer in versions:
        for record in _generated(writer, 20):
            data = encode_event(event_type, record, writer.version)
            written = _avro_read(data, writer)
            for reader in versions[writer.version - 1 :]:
                assert _avro_read(data, writer, reader) == _expected_under(reader.schema, written)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE_TYPES))
def test_fields_added_in_later_versions_have_defaults_and_kept_fields_keep_their_type(event_type: str) -> None:
    versions = REGISTRY.versions(event_type)
    for older, newer in itertools.pairwise(versions):
        _assert_backward_compatible(
            older.schema, newer.schema, newer.schema["__named_schemas"], older.schema["__named_schemas"], path=""
        )


def _assert_backward_compatible(
    older: Mapping[str, Any],
    newer: Mapping[str, Any],
    newer_names: Mapping[str, Any],
    older_names: Mapping[str, Any],
    path: str,
) -> None:
    older_fields = {field["name"]: field for field in older["fields"]}
    for field in newer["fields"]:
        where = f"{path}{field['name']}"
        if field["name"] not in older_fields:
            assert "default" in field, f"{where} was added without a default"
            continue
        newer_type = _resolve(field["type"], newer_names)
        older_type = _resolve(older_fields[field["name"]]["type"], older_names)
        if isinstance(newer_type, dict) and newer_type["type"] == "record":
            _assert_backward_compatible(older_type, newer_type, newer_names, older_names, where + ".")
        elif isinstance(newer_type, dict) and newer_type["type"] == "enum":
            assert set(older_type["symbols"]) <= set(newer_type["symbols"]), f"{where} lost enum symbols"
        else:
            assert _resolve_deep(newer_type, newer_names) == _resolve_deep(older_type, older_names), (
                f"{where} changed type"
            )


def _resolve(schema: Any, names: Mapping[str, Any]) -> Any:
    return names[schema] if isinstance(schema, str) and schema in names else schema


def _resolve_deep(schema: Any, names: Mapping[str, Any]) -> Any:
    schema = _resolve(schema, names)
    if isinstance(schema, list):
        return [_resolve_deep(branch, names) for branch in schema]
    if isinstance(schema, dict) and schema["type"] == "array":
        return {"type": "array", "items": _resolve_deep(schema["items"], names)}
    return schema


def test_the_compatibility_rule_catches_a_field_added_without_default() -> None:
    older = {"type": "record", "name": "P", "fields": [{"name": "a", "type": "string"}]}
    newer = {"type": "record", "name": "P", "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "int"}]}
    with pytest.raises(AssertionError, match="b was added without a default"):
        _assert_backward_compatible(older, newer, {}, {}, path="")


def _crime_report(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": "3f2b8c1e-6a4d-4e0f-9b7a-2d5c8e1f4a6b",
        "event_type": "police.crime_report",
        "event_time": dt.datetime(2026, 3, 7, 7, 15, tzinfo=UTC),
        "recorded_time": dt.datetime(2026, 3, 7, 7, 40, tzinfo=UTC),
        "agency": "police",
        "unit": "Polisregion Syd, Malmö",
        "region": "syd",
        "subject": {"kind": "pseudonym", "value": "ps_3c1f0a9e5d7b4c2a8e6f1d0b9a7c5e3f"},
        "related_persons": [],
        "legal_basis": None,
        "payload": {"offence": "assault", "strangulation": True},
    }
    record.update(changes)
    return record


def test_version_one_data_reads_as_version_two_with_the_default() -> None:
    decoded = decode_event(encode_event("police.crime_report", _crime_report(), version=1))
    assert decoded.version == 1
    assert decoded.record["payload"]["sexual_violence"] is False
    assert decoded.record["payload"]["strangulation"] is True
    assert decoded.record["event_time"] == dt.datetime(2026, 3, 7, 7, 15, tzinfo=UTC)


def test_encoding_writes_the_latest_version_by_default() -> None:
    data = encode_event("police.crime_report", _crime_report())
    assert data[:10] == REGISTRY.latest("police.crime_report").header
    assert decode_event(data).version == 2


def test_bytes_without_the_marker_are_refused() -> None:
    for data in (b'{"event_type": "police.arrest"}', b"", REGISTRY.latest("police.arrest").fingerprint):
        with pytest.raises(NotSingleObjectError) as refused:
            decode_event(data)
        assert refused.value.field == "marker"
    assert str(refused.value).startswith("marker: not Avro single-object encoding: expected C3 01, got ")
    with pytest.raises(NotSingleObjectError, match="got 7B 22"):
        decode_event(b'{"a": 1}')


def test_an_unknown_fingerprint_is_refused() -> None:
    data = b"\xc3\x01" + bytes.fromhex("efcdab8967452301") + b"\x00" * 20
    with pytest.raises(UnknownSchemaError) as refused:
        decode_event(data)
    assert refused.value.field == "fingerprint"
    assert refused.value.reason == (
        "schema fingerprint 0x0123456789abcdef is not one Riskwatch knows for an agency event"
    )


def test_truncated_corrupt_and_padded_bodies_are_refused() -> None:
    data = encode_event("police.crime_report", _crime_report())
    for damaged in (data[:-1], data[:20], data + b"\x00", data[:10] + b"\xff" * 30):
        with pytest.raises(CorruptEventError) as refused:
            decode_event(damaged)
        assert refused.value.field == "body"
    with pytest.raises(CorruptEventError) as refused:
        decode_event(data[:6])
    assert refused.value.field == "fingerprint"


def test_a_body_whose_event_type_contradicts_its_schema_is_refused() -> None:
    schema = REGISTRY.latest("police.crime_report")
    buffer = BytesIO()
    buffer.write(schema.header)
    schemaless_writer(buffer, schema.schema, _crime_report(event_type="police.arrest"))
    with pytest.raises(CorruptEventError) as refused:
        decode_event(buffer.getvalue())
    assert refused.value.field == "event_type"


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200))
def test_any_bytes_after_a_known_header_give_a_record_or_a_contract_error(body: bytes) -> None:
    try:
        decoded = decode_event(REGISTRY.latest("police.crime_report").header + body)
    except ContractError:
        return
    assert decoded.event_type == "police.crime_report"


def test_encoding_refuses_records_that_do_not_fit() -> None:
    with pytest.raises(UnencodableEventError) as refused:
        encode_event("police.arrest", _crime_report())
    assert refused.value.field == "event_type"
    without_offence = _crime_report(payload={"strangulation": True})
    with pytest.raises(UnencodableEventError) as refused:
        encode_event("police.crime_report", without_offence)
    assert str(refused.value) == "payload.offence: is missing"
    with pytest.raises(UnencodableEventError) as refused:
        encode_event("police.crime_report", _crime_report(unit=7))
    assert str(refused.value) == "unit: expected string, got int"
    with pytest.raises(UnencodableEventError, match="strangultion"):
        encode_event("police.crime_report", _crime_report(payload={"offence": "assault", "strangultion": True}))
    with pytest.raises(UnknownEventTypeError, match=r"did you mean police\.crime_report"):
        encode_event("police.crime_reprt", _crime_report(event_type="police.crime_reprt"))
    with pytest.raises(UnknownEventTypeError, match="versions 1 to 2, not 3"):
        encode_event("police.crime_report", _crime_report(), version=3)


def test_encoding_errors_do_not_repeat_identity_numbers() -> None:
    number_where_a_flag_belongs = _crime_report(payload={"offence": "assault", "weapon": "19850312-0001"})
    with pytest.raises(UnencodableEventError) as refused:
        encode_event("police.crime_report", number_where_a_flag_belongs)
    assert str(refused.value) == "payload.weapon: expected boolean, got str"
    unknown_field_holding_a_number = _crime_report(payload={"offence": "assault", "19850312-0001": True})
    with pytest.raises(UnencodableEventError) as refused:
        encode_event("police.crime_report", unknown_field_holding_a_number)
    assert "0312" not in str(refused.value)


def _risk_event(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": "3f2b8c1e-6a4d-4e0f-9b7a-2d5c8e1f4a6b",
        "subject": "ps_3c1f0a9e5d7b4c2a8e6f1d0b9a7c5e3f",
        "source_type": "police.crime_report",
        "event_time": 1_772_867_700_000,
        "recorded_time": 1_772_869_200_000,
        "agency": "police",
        "region": "syd",
        "unit": "Polisregion Syd, Malmö",
        "offence": "aggravated_assault",
        "markers": ["strangulation", "threat_to_kill"],
        "victims": [{"pseudonym": "ps_8d2e4f6a0b1c3d5e7f9a1b2c3d4e5f60", "protected_identity": True}],
        "attributes": {"offence_code": "", "instrument": "SARA_SV"},
    }
    record.update(changes)
    return record


def test_risk_events_round_trip_with_plain_epoch_milliseconds() -> None:
    data = encode_risk_event(_risk_event())
    assert data[:10] == REGISTRY.risk_event.header
    decoded = decode_risk_event(data)
    assert decoded == _risk_event()
    assert isinstance(decoded["event_time"], int)
    override = _risk_event(source_type="riskwatch.override", agency="riskwatch", offence=None, markers=[], victims=[])
    assert decode_risk_event(encode_risk_event(override)) == override


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(max_size=30),
    millis=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    markers=st.lists(st.text(max_size=20), max_size=5),
    attributes=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=5),
    offence=st.none() | st.text(max_size=20),
)
def test_any_risk_event_round_trips(
    text: str, millis: int, markers: list[str], attributes: dict[str, str], offence: str | None
) -> None:
    record = _risk_event(
        subject=text, unit=text, event_time=millis, markers=markers, attributes=attributes, offence=offence
    )
    assert decode_risk_event(encode_risk_event(record)) == record


def test_agency_events_and_risk_events_are_not_mistaken_for_each_other() -> None:
    with pytest.raises(UnknownSchemaError, match="for an agency event"):
        decode_event(encode_risk_event(_risk_event()))
    with pytest.raises(UnknownSchemaError, match="for a canonical risk event"):
        decode_risk_event(encode_event("police.crime_report", _crime_report()))
    with pytest.raises(NotSingleObjectError):
        decode_risk_event(b"\x00\x01")
