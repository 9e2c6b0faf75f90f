"""The JSON ingest format and the domain rules, on both the JSON and the Avro path."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import decode_event, encode_event
from schemas.errors import EventValidationError, FieldError
from schemas.json_format import check_event, event_from_json
from schemas.registry import default_registry
from schemas.identity import luhn_check_digit

TODAY = dt.date(2026, 6, 1)
EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
# Fictitious numbers: birth number 000 is never assigned to anyone.
SUBJECT_NUMBER = "19850312-0001"
VICTIM_NUMBER = "19900521-0001"
COORDINATION_NUMBER = "19920274-0008"


def _doc_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", EVENTS_DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def _crime_report(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "d23f0824-128b-4f33-8c5c-7fd0a6a3a450",
        "event_type": "police.crime_report",
        "event_time": "2026-03-07T08:15:00+01:00",
        "recorded_time": "2026-03-07T08:40:00+01:00",
        "agency": "police",
        "unit": "Polisregion Syd, Malmö",
        "region": "syd",
        "subject": {"personal_identity_number": SUBJECT_NUMBER},
        "related_persons": [
            {"role": "victim", "personal_identity_number": VICTIM_NUMBER, "protected_identity": True},
        ],
        "payload": {"offence": "aggravated_assault", "strangulation": True},
    }
    event.update(changes)
    return event


def _with_payload(event_type: str, payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    agency = event_type.partition(".")[0]
    basis = {"legal_basis": "osl_10_18c"} if agency in ("social_services", "healthcare") else {}
    return _crime_report(event_type=event_type, agency=agency, payload=payload, **{**basis, **changes})


def _errors(event: object) -> list[FieldError]:
    with pytest.raises(EventValidationError) as refused:
        event_from_json(event, today=TODAY)
    return refused.value.errors


def _only_error(event: object) -> str:
    errors = _errors(event)
    assert len(errors) == 1, errors
    return str(errors[0])


# --- the documentation --------------------------------------------------------------


def test_every_json_example_in_the_docs_is_a_valid_event() -> None:
    examples = _doc_examples()
    assert examples
    for example in examples:
        event_type, record = event_from_json(example, today=TODAY)
        assert event_type == example["event_type"]
        # the gateway's path: the record is encoded for the topic, and reads back the same
        assert decode_event(encode_event(event_type, record, checked=True)).record == record


def test_the_docs_show_every_event_type_and_list_every_payload_field() -> None:
    registry = default_registry()
    assert {example["event_type"] for example in _doc_examples()} == set(registry.event_types())
    sections = re.split(r"^### ", EVENTS_DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    by_type = {section.split("\n", 1)[0].strip(): section for section in sections[1:]}
    for event_type in registry.event_types():
        for field in registry.latest(event_type).payload_schema["fields"]:
            assert f"| `{field['name']}` |" in by_type[event_type], (event_type, field["name"])


# --- the happy path -------------------------------------------------------------------


def test_json_becomes_an_avro_ready_record_of_the_latest_version() -> None:
    event_type, record = event_from_json(_crime_report(), today=TODAY)
    assert event_type == "police.crime_report"
    assert record["event_time"] == dt.datetime(2026, 3, 7, 7, 15, tzinfo=dt.UTC)
    assert record["event_time"].utcoffset() == dt.timedelta(hours=1)
    assert record["subject"] == {"kind": "personal_identity_number", "value": SUBJECT_NUMBER}
    assert record["related_persons"] == [
        {
            "role": "victim",
            "person": {"kind": "personal_identity_number", "value": VICTIM_NUMBER},
            "protected_identity": True,
        }
    ]
    assert record["legal_basis"] is None
    assert record["payload"]["sexual_violence"] is False  # added in v2, filled from its default
    assert record["payload"]["weapon"] is False
    assert decode_event(encode_event(event_type, record)).record == record


def test_dates_become_dates_and_travel_as_avro_dates() -> None:
    event = _with_payload(
        "prosecution.contact_ban_issued",
        {"ban_type": "extended", "electronic_monitoring": True, "valid_from": "2026-03-14", "valid_to": "2026-09-13"},
    )
    event_type, record = event_from_json(event, today=TODAY)
    assert record["payload"]["valid_to"] == dt.date(2026, 9, 13)
    assert record["subject"] == {"kind": "personal_identity_number", "value": SUBJECT_NUMBER}
    decoded = decode_event(encode_event(event_type, record)).record
    assert decoded["payload"]["valid_from"] == dt.date(2026, 3, 14)
    assert decoded == record


def test_coordination_numbers_and_pseudonyms_are_accepted() -> None:
    event_from_json(_crime_report(subject={"coordination_number": COORDINATION_NUMBER}), today=TODAY)
    _, record = event_from_json(
        _crime_report(subject={"pseudonym": "ps_3c1f0a9e5d7b4c2a8e6f1d0b9a7c5e3f"}), today=TODAY
    )
    assert record["subject"]["kind"] == "pseudonym"
    # Riskwatch's own pseudonyms come back from agencies; hex digits may run like an identity number's
    event_from_json(_crime_report(subject={"pseudonym": "ps_1985031200019aaaaaaaaaaaaaaaaaaa"}), today=TODAY)
    with pytest.raises(EventValidationError, match="holds an identity number"):
        event_from_json(_crime_report(subject={"pseudonym": "x19850312-0001"}), today=TODAY)


# --- shape errors ---------------------------------------------------------------------


def test_not_a_json_object() -> None:
    assert _only_error([_crime_report()]) == "event: expected a JSON object, got a list"
    assert _only_error("police.crime_report") == "event: expected a JSON object, got text"


def test_unknown_event_type_lists_nearby_names() -> None:
    assert _only_error(_crime_report(event_type="police.crime_reprt")) == (
        "event_type: 'police.crime_reprt' is not a known event type; did you mean police.crime_report?"
    )
    assert "prosecution.contact_ban_issued" in _only_error(_crime_report(event_type="prosecution.ban"))
    assert _only_error({"unit": "x"}) == "event_type: is missing"


def test_missing_field() -> None:
    event = _crime_report()
    del event["payload"]["offence"]
    assert _only_error(event) == "payload.offence: is missing"
    event = _crime_report()
    del event["related_persons"][0]["protected_identity"]
    assert _only_error(event) == "related_persons[0].protected_identity: is missing"


def test_wrong_type() -> None:
    assert _only_error(_crime_report(payload={"offence": "assault", "strangulation": "yes"})) == (
        "payload.strangulation: expected true or false, got text"
    )
    assert _only_error(_crime_report(unit=12)) == "unit: expected text, got a number"
    assert _only_error(_crime_report(related_persons={})) == "related_persons: expected a list, got an object"
    concern = _with_payload("social_services.concern_shared", {"concern": "x", "children_in_household": 1.5})
    assert _only_error(concern) == "payload.children_in_household: expected a whole number, got a number"


def test_unknown_extra_field_is_refused_with_a_suggestion() -> None:
    assert _only_error(_crime_report(payload={"offence": "assault", "strangultion": True})) == (
        "payload.strangultion: unknown field; did you mean strangulation?"
    )
    assert _only_error(_crime_report(severity="high")).startswith("severity: unknown field")
    victim_with_typo = {"role": "victim", "personal_identity_number": VICTIM_NUMBER, "protected_identiy": True}
    errors = [str(error) for error in _errors(_crime_report(related_persons=[victim_with_typo]))]
    assert "related_persons[0].protected_identiy: unknown field; did you mean protected_identity?" in errors


def test_bad_enum_symbol_lists_the_allowed_ones() -> None:
    victim = {"role": "victm", "personal_identity_number": VICTIM_NUMBER, "protected_identity": True}
    other = {"role": "child", "pseudonym": "ps_1", "protected_identity": False}
    assert _only_error(_crime_report(related_persons=[other, victim])) == (
        "related_persons[1].role: 'victm' is not one of victim, child, other"
    )
    assert "'rap' is not one of murder, attempted_murder, rape," in _only_error(
        _crime_report(payload={"offence": "rap"})
    )
    assert _only_error(_crime_report(legal_basis="gdpr")) == (
        "legal_basis: 'gdpr' is not one of osl_10_18c, brottsdatalagen, fengelselagen, other"
    )


def test_impossible_dates_and_times() -> None:
    ban = {"ban_type": "ordinary", "valid_from": "2026-02-01", "valid_to": "2026-02-30"}
    assert (
        _only_error(_with_payload("prosecution.contact_ban_issued", ban))
        == "payload.valid_to: 2026-02-30 is not a date"
    )
    ban = {"ban_type": "ordinary", "valid_from": "14/3/2026", "valid_to": "2026-09-13"}
    assert _only_error(_with_payload("prosecution.contact_ban_issued", ban)) == (
        "payload.valid_from: '14/3/2026' is not an ISO date YYYY-MM-DD"
    )
    assert _only_error(_crime_report(event_time="2026-03-07T25:15:00+01:00")) == (
        "event_time: '2026-03-07T25:15:00+01:00' is not a time"
    )
    assert _only_error(_crime_report(event_time="7 March 2026 08:15")).startswith(
        "event_time: '7 March 2026 08:15' is not an ISO 8601 time such as"
    )
    assert _only_error(_crime_report(event_time="2026-03-07T08:15:00")) == (
        "event_time: '2026-03-07T08:15:00' has no UTC offset; add one, e.g. +01:00 or Z"
    )
    assert _only_error(_crime_report(recorded_time=1772867700000)).startswith(
        "recorded_time: expected an ISO 8601 time"
    )


def test_person_needs_exactly_one_identity() -> None:
    assert _only_error(_crime_report(subject={})) == (
        "subject: needs exactly one of personal_identity_number, coordination_number, pseudonym"
    )
    both = {"personal_identity_number": SUBJECT_NUMBER, "pseudonym": "ps_1"}
    assert _only_error(_crime_report(subject=both)).startswith("subject: has personal_identity_number and pseudonym")
    assert _only_error(_crime_report(subject={"personal_identity_number": 198503120001})) == (
        "subject.personal_identity_number: expected text, got a number"
    )


def test_every_shape_error_is_reported_at_once() -> None:
    event = _crime_report(unit=None, region=3, payload={"offence": "rap", "wepon": True})
    fields = [error.field for error in _errors(event)]
    assert fields == ["unit", "region", "payload.wepon", "payload.offence"]


# --- rule errors ----------------------------------------------------------------------


def _luhn_valid(ten_digit_prefix: str, separator: str = "-") -> str:
    """A Luhn-valid number YYYYMMDD-NNNC from YYYYMMDDNNN."""
    check = luhn_check_digit(ten_digit_prefix[2:])
    return f"{ten_digit_prefix[:8]}{separator}{ten_digit_prefix[8:]}{check}"


def test_bad_identity_numbers_name_the_field_but_never_the_digits() -> None:
    bad_check_digit = SUBJECT_NUMBER[:-1] + "2"
    impossible_birth_date = _luhn_valid("19850230000")
    for number, reason in (
        (bad_check_digit, "check digit does not match (Luhn)"),
        (impossible_birth_date, "its date of birth is not a real date"),
        ("19850312-00012", "must look like YYYYMMDD-NNNC or YYMMDD-NNNC"),
    ):
        message = _only_error(_crime_report(subject={"personal_identity_number": number}))
        assert message == f"subject.personal_identity_number: is not valid: {reason}"
        assert number[2:8] not in message and number[-4:] not in message
    victim = {"role": "victim", "personal_identity_number": bad_check_digit, "protected_identity": True}
    assert _only_error(_crime_report(related_persons=[victim])).startswith(
        "related_persons[0].personal_identity_number: is not valid"
    )


def test_identity_numbers_in_the_wrong_place_are_not_quoted_back() -> None:
    misplaced = {
        "role": "victim",
        "personal_identity_number": VICTIM_NUMBER,
        "protected_identity": True,
        VICTIM_NUMBER: True,
    }
    messages = [
        *map(str, _errors(_crime_report(related_persons=[misplaced]))),
        *map(str, _errors(_crime_report(event_time=SUBJECT_NUMBER))),
        *map(str, _errors(_crime_report(region="850312-0001"))),
    ]
    assert len(messages) == 3
    for message in messages:
        assert "0521" not in message and "0312" not in message, message
    assert messages[0].startswith("related_persons[0].<number withheld>: unknown field; expected role,")


def test_the_kind_of_number_must_match_its_key() -> None:
    assert _only_error(_crime_report(subject={"personal_identity_number": COORDINATION_NUMBER})) == (
        "subject.personal_identity_number: is not valid: "
        "day of birth plus 60 marks a coordination number, not a personal identity number"
    )
    assert _only_error(_crime_report(subject={"coordination_number": SUBJECT_NUMBER})).startswith(
        "subject.coordination_number: is not valid"
    )


@pytest.mark.parametrize("event_type", ["social_services.separation_reported", "healthcare.psychiatric_emergency"])
def test_social_services_and_healthcare_need_the_secrecy_breaking_basis(event_type: str) -> None:
    payload: dict[str, Any] = {}
    event_from_json(_with_payload(event_type, payload), today=TODAY)
    agency = event_type.partition(".")[0]
    expected = f"legal_basis: {agency} may only share this under OSL 10 kap. 18 c §: legal_basis must be osl_10_18c"
    assert _only_error(_with_payload(event_type, payload, legal_basis=None)) == expected
    assert _only_error(_with_payload(event_type, payload, legal_basis="brottsdatalagen")) == expected
    without = _with_payload(event_type, payload)
    del without["legal_basis"]
    assert _only_error(without) == expected


def test_agency_region_event_id_and_unit() -> None:
    assert _only_error(_crime_report(agency="prosecution")) == (
        "agency: must be police, the agency of police.crime_report, not 'prosecution'"
    )
    assert _only_error(_crime_report(region="skane")).startswith(
        "region: 'skane' is not a police region; use one of nord,"
    )
    assert _only_error(_crime_report(event_id="42")).startswith("event_id: must be a UUID")
    assert _only_error(_crime_report(unit="  ")) == "unit: is empty; name the agency unit that recorded the event"


def test_time_order_and_the_future() -> None:
    assert _only_error(_crime_report(recorded_time="2026-03-07T08:14:59+01:00")) == (
        "recorded_time: is before event_time: an agency can only record what already happened"
    )
    tomorrow_evening = "2026-06-02T23:00:00+00:00"
    event_from_json(_crime_report(event_time=tomorrow_evening, recorded_time=tomorrow_evening), today=TODAY)
    in_two_days = "2026-06-03T00:30:00+00:00"
    errors = [error.field for error in _errors(_crime_report(event_time=in_two_days, recorded_time=in_two_days))]
    assert errors == ["event_time", "recorded_time"]


def test_date_ranges_run_forwards() -> None:
    ban = {"ban_type": "home", "valid_from": "2026-03-14", "valid_to": "2026-03-01"}
    assert _only_error(_with_payload("prosecution.contact_ban_issued", ban)) == (
        "payload.valid_to: 2026-03-01 is before valid_from 2026-03-14"
    )
    furlough = {"start_date": "2026-04-17", "end_date": "2026-04-16"}
    assert _only_error(_with_payload("prison_probation.furlough_granted", furlough)) == (
        "payload.end_date: 2026-04-16 is before start_date 2026-04-17"
    )


def test_other_payload_rules() -> None:
    ban = {"ban_type": "home", "valid_from": "2026-03-14", "valid_to": "2026-09-13"}
    assert _only_error(_with_payload("prosecution.contact_ban_issued", ban, related_persons=[])) == (
        "related_persons: a contact ban protects someone: list the protected person with role victim"
    )
    assert (
        _only_error(_with_payload("prison_probation.programme_enrolled", {"programme": " "}))
        == "payload.programme: is empty"
    )
    concern = {"concern": "Threats against the children", "children_in_household": -1}
    assert _only_error(_with_payload("social_services.concern_shared", concern)) == (
        "payload.children_in_household: cannot be negative"
    )


# --- the Avro path --------------------------------------------------------------------


def test_rules_apply_to_records_decoded_from_avro_too() -> None:
    event_type, record = event_from_json(_with_payload("healthcare.suicide_threat", {"attempt": True}), today=TODAY)
    decoded = decode_event(encode_event(event_type, record))
    check_event(decoded.event_type, decoded.record, today=TODAY)
    without_basis = copy.deepcopy(decoded.record)
    without_basis["legal_basis"] = None
    stale_region = {**without_basis, "region": "skane"}
    smuggled = decode_event(encode_event(event_type, stale_region))
    with pytest.raises(EventValidationError) as refused:
        check_event(smuggled.event_type, smuggled.record, today=TODAY)
    assert [error.field for error in refused.value.errors] == ["region", "legal_basis"]


def test_check_event_accepts_epoch_values_as_avro_does() -> None:
    _, record = event_from_json(_crime_report(), today=TODAY)
    record["event_time"] = 1_772_867_700_000
    record["recorded_time"] = 1_772_867_600_000
    with pytest.raises(EventValidationError) as refused:
        check_event("police.crime_report", record, today=TODAY)
    assert refused.value.field == "recorded_time"


def test_error_object_carries_fields_and_reads_as_one_line() -> None:
    error = EventValidationError(
        [FieldError("payload.valid_to", "2026-02-30 is not a date"), FieldError("unit", "is missing")]
    )
    assert (error.field, error.reason) == ("payload.valid_to", "2026-02-30 is not a date")
    assert str(error) == "payload.valid_to: 2026-02-30 is not a date; unit: is missing"
    assert isinstance(error, ValueError)
