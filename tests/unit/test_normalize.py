"""normalize: every catalogue event type becomes its canonical facts; clear identities never pass."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from projections.events import RiskEvent, Victim
from projections.levels import Level
from projections.normalize import (
    EVENT_TYPES,
    NotNormalizable,
    normalize,
    override_event,
)
from schemas.codec import decode_risk_event, encode_risk_event

HAPPENED = dt.datetime(2026, 1, 5, 21, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
HAPPENED_MS = 1_767_645_000_000

# The catalogue's event types, written out here so that a type missing from normalize fails.
CATALOGUE = {
    "police.arrest",
    "police.crime_report",
    "police.domestic_callout",
    "police.risk_assessment",
    "police.weapons_licence_held",
    "police.weapons_licence_revoked",
    "police.em_alarm",
    "prosecution.contact_ban_issued",
    "prosecution.contact_ban_ended",
    "prosecution.contact_ban_breach_reported",
    "prosecution.charge_filed",
    "prosecution.detention_decided",
    "prosecution.detention_lifted",
    "prison_probation.custody_started",
    "prison_probation.release_scheduled",
    "prison_probation.released",
    "prison_probation.furlough_granted",
    "prison_probation.furlough_started",
    "prison_probation.furlough_ended",
    "prison_probation.probation_started",
    "prison_probation.probation_ended",
    "prison_probation.programme_enrolled",
    "prison_probation.programme_completed",
    "prison_probation.programme_dropped",
    "prison_probation.supervision_breach",
    "social_services.concern_shared",
    "social_services.risk_assessment",
    "social_services.separation_reported",
    "healthcare.psychiatric_emergency",
    "healthcare.suicide_threat",
    "healthcare.threats_expressed_in_care",
    "healthcare.substance_abuse_treatment",
    "healthcare.victim_injury_treated",
}

# event type -> (payload as decoded, expected offence, expected markers, expected attributes)
SAMPLES: dict[str, tuple[dict[str, Any], str | None, set[str], dict[str, str]]] = {
    "police.arrest": (
        {"offence": "assault", "suspected_offence_code": "0301"},
        "assault",
        set(),
        {"offence_code": "0301"},
    ),
    "police.crime_report": (
        {
            "offence": "aggravated_assault",
            "offence_code": "",
            "strangulation": True,
            "weapon": True,
            "threat_to_kill": True,
            "child_present": True,
            "victim_fear": True,
            "controlling_behaviour": True,
            "substance_influence": True,
        },
        "aggravated_assault",
        {
            "strangulation",
            "weapon",
            "threat_to_kill",
            "child_present",
            "victim_fear",
            "controlling_behaviour",
            "substance_abuse",
        },
        {},
    ),
    "police.domestic_callout": ({"injuries": True, "child_present": False}, None, {"injuries"}, {}),
    "police.risk_assessment": (
        {"instrument": "SARA_SV", "level": "high"},
        None,
        set(),
        {"instrument": "SARA_SV", "assessed_level": "high"},
    ),
    "police.weapons_licence_held": ({"weapon_kind": "firearm"}, None, {"firearm_access"}, {"weapon_kind": "firearm"}),
    "police.weapons_licence_revoked": ({"reason": "risk"}, None, set(), {}),
    "police.em_alarm": (
        {"alarm": "zone_breach"},
        None,
        {"electronic_monitoring", "breach_of_conditions"},
        {"alarm": "zone_breach"},
    ),
    "prosecution.contact_ban_issued": (
        {
            "ban_type": "extended",
            "electronic_monitoring": True,
            "valid_from": dt.date(2026, 1, 6),
            "valid_to": dt.date(2026, 7, 6),
        },
        None,
        {"contact_ban", "electronic_monitoring"},
        {"ban_type": "extended", "valid_from": "2026-01-06", "valid_to": "2026-07-06"},
    ),
    "prosecution.contact_ban_ended": ({"reason": "expired"}, None, set(), {}),
    "prosecution.contact_ban_breach_reported": (
        {"electronic_monitoring": False},
        "contact_ban_breach",
        {"breach_of_conditions"},
        {},
    ),
    "prosecution.charge_filed": ({"offence": "stalking"}, "stalking", set(), {}),
    "prosecution.detention_decided": ({"offence": "rape"}, "rape", {"custody"}, {}),
    "prosecution.detention_lifted": ({"reason": ""}, None, {"release"}, {}),
    "prison_probation.custody_started": (
        {"facility": "Anstalten Ystad"},
        None,
        {"custody"},
        {"facility": "Anstalten Ystad"},
    ),
    "prison_probation.release_scheduled": (
        {"release_date": dt.date(2026, 3, 1), "release_kind": "conditional"},
        None,
        set(),
        {"release_date": "2026-03-01", "release_kind": "conditional"},
    ),
    "prison_probation.released": (
        {"release_kind": "end_of_sentence"},
        None,
        {"release"},
        {"release_kind": "end_of_sentence"},
    ),
    "prison_probation.furlough_granted": (
        {"start_date": dt.date(2026, 2, 1), "end_date": dt.date(2026, 2, 2)},
        None,
        set(),
        {"start_date": "2026-02-01", "end_date": "2026-02-02"},
    ),
    "prison_probation.furlough_started": (
        {"expected_return_date": dt.date(2026, 2, 2)},
        None,
        {"furlough"},
        {"expected_return_date": "2026-02-02"},
    ),
    "prison_probation.furlough_ended": (
        {"returned_on_time": False},
        None,
        {"breach_of_conditions"},
        {"returned_on_time": "false"},
    ),
    "prison_probation.probation_started": ({"end_date": dt.date(2027, 1, 1)}, None, set(), {"end_date": "2027-01-01"}),
    "prison_probation.probation_ended": ({}, None, set(), {}),
    "prison_probation.programme_enrolled": ({"programme": "Predov"}, None, set(), {"programme": "Predov"}),
    "prison_probation.programme_completed": ({"programme": "IDAP"}, None, set(), {"programme": "IDAP"}),
    "prison_probation.programme_dropped": ({"programme": "Predov"}, None, set(), {"programme": "Predov"}),
    "prison_probation.supervision_breach": ({"description": "missed meeting"}, None, {"breach_of_conditions"}, {}),
    "social_services.concern_shared": (
        {
            "concern": "free text",
            "victim_fear": True,
            "controlling_behaviour": True,
            "threat_to_children": True,
            "substance_abuse": False,
        },
        None,
        {"victim_fear", "controlling_behaviour", "threat_to_children"},
        {},
    ),
    "social_services.risk_assessment": (
        {"instrument": "FREDA", "level": "moderate"},
        None,
        set(),
        {"instrument": "FREDA", "assessed_level": "moderate"},
    ),
    "social_services.separation_reported": ({"imminent": True}, None, {"separation"}, {"imminent": "true"}),
    "healthcare.psychiatric_emergency": ({}, None, {"mental_ill_health"}, {}),
    "healthcare.suicide_threat": ({"attempt": True}, None, {"suicide_threat"}, {"attempt": "true"}),
    "healthcare.threats_expressed_in_care": (
        {"threat_to_kill": True, "threat_to_children": False},
        None,
        {"threat_to_kill"},
        {},
    ),
    "healthcare.substance_abuse_treatment": ({}, None, {"substance_abuse"}, {}),
    "healthcare.victim_injury_treated": (
        {"consistent_with_strangulation": True},
        None,
        {"injuries", "strangulation"},
        {},
    ),
}


def record(event_type: str, payload: dict[str, Any], /, **envelope: Any) -> dict[str, Any]:
    agency = event_type.split(".")[0]
    decoded: dict[str, Any] = {
        "event_id": "0b7a4d6e-3f52-4c1e-9a0b-5d1f2e3c4b5a",
        "event_type": event_type,
        "event_time": HAPPENED,
        "recorded_time": HAPPENED + dt.timedelta(hours=2),
        "agency": agency,
        "unit": "Enhet Malmö",
        "region": "syd",
        "subject": {"kind": "pseudonym", "value": "subject-7f3a"},
        "related_persons": [
            {"role": "victim", "person": {"kind": "pseudonym", "value": "victim-b"}, "protected_identity": True},
            {"role": "child", "person": {"kind": "pseudonym", "value": "child-c"}, "protected_identity": False},
            {"role": "victim", "person": {"kind": "pseudonym", "value": "victim-a"}, "protected_identity": False},
        ],
        "legal_basis": "osl_10_18c" if agency in ("social_services", "healthcare") else None,
        "payload": payload,
    }
    decoded.update(envelope)
    return decoded


def test_normalize_knows_exactly_the_catalogue() -> None:
    assert EVENT_TYPES == CATALOGUE
    assert set(SAMPLES) == CATALOGUE


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_every_event_type_becomes_its_canonical_facts(event_type: str) -> None:
    payload, offence, markers, attributes = SAMPLES[event_type]
    event = normalize(event_type, record(event_type, payload))
    assert event.source_type == event_type
    assert event.agency == event_type.split(".")[0]
    assert event.offence == offence
    assert event.markers == markers
    assert dict(event.attributes) == attributes


def test_envelope_facts_carry_over() -> None:
    event = normalize("police.domestic_callout", record("police.domestic_callout", {}))
    assert event.subject == "subject-7f3a"
    assert event.event_time == HAPPENED_MS
    assert event.recorded_time == HAPPENED_MS + 7_200_000
    assert (event.region, event.unit) == ("syd", "Enhet Malmö")
    # Children are not victims; victims come out in pseudonym order with their protection flag.
    assert event.victims == (Victim("victim-a", False), Victim("victim-b", True))
    assert event.markers == frozenset()


def test_free_text_never_reaches_the_canonical_event() -> None:
    event = normalize(
        "social_services.concern_shared",
        record("social_services.concern_shared", {"concern": "Anna Andersson, Storgatan 1"}),
    )
    assert "Anna" not in repr(event.to_record())


@pytest.mark.parametrize("kind", ["personal_identity_number", "coordination_number"])
def test_a_clear_subject_identity_is_refused_without_repeating_it(kind: str) -> None:
    clear = record("police.arrest", {"offence": "assault"}, subject={"kind": kind, "value": "19850312-2396"})
    with pytest.raises(NotNormalizable) as refused:
        normalize("police.arrest", clear)
    assert refused.value.reason.startswith("subject:")
    assert "19850312" not in str(refused.value)


@pytest.mark.parametrize("role", ["victim", "child"])
def test_a_clear_related_identity_is_refused(role: str) -> None:
    related = [
        {
            "role": role,
            "person": {"kind": "personal_identity_number", "value": "19850312-2396"},
            "protected_identity": True,
        }
    ]
    with pytest.raises(NotNormalizable, match=r"related_persons\[0\]\.person"):
        normalize("police.arrest", record("police.arrest", {"offence": "assault"}, related_persons=related))


@pytest.mark.parametrize("event_type", ["social_services.separation_reported", "healthcare.psychiatric_emergency"])
def test_secrecy_breaking_basis_is_required(event_type: str) -> None:
    with pytest.raises(NotNormalizable, match="legal_basis"):
        normalize(event_type, record(event_type, SAMPLES[event_type][0], legal_basis=None))


@pytest.mark.parametrize(
    ("event_type", "changes", "field"),
    [
        ("police.unknown", {}, "event_type"),
        ("police.arrest", {"event_type": "police.crime_report"}, "event_type"),
        ("police.arrest", {"agency": "prosecution"}, "agency"),
        ("police.arrest", {"payload": {}}, "payload.offence"),
        ("police.arrest", {"payload": {"offence": "burglary"}}, "payload.offence"),
        ("police.arrest", {"event_time": dt.datetime(2026, 1, 5)}, "event_time"),
        ("prison_probation.probation_started", {"payload": {"end_date": "soon"}}, "payload.end_date"),
    ],
)
def test_malformed_records_are_refused_naming_the_field(event_type: str, changes: dict[str, Any], field: str) -> None:
    payload = SAMPLES.get(event_type, ({}, None, set(), {}))[0]
    with pytest.raises(NotNormalizable) as refused:
        normalize(event_type, record(event_type, payload, **changes))
    assert refused.value.reason.startswith(field)


def test_record_round_trip() -> None:
    event = normalize("police.crime_report", record("police.crime_report", SAMPLES["police.crime_report"][0]))
    avro = event.to_record()
    assert avro["markers"] == sorted(avro["markers"])
    assert avro["event_time"] == HAPPENED_MS
    assert RiskEvent.from_record(avro) == event
    decoded = dict(avro, event_time=HAPPENED, recorded_time=HAPPENED + dt.timedelta(hours=2))
    assert RiskEvent.from_record(decoded) == event


@pytest.mark.parametrize("offence", [None, "assault"])
def test_an_event_from_its_record_is_the_event_its_constructor_makes(offence: str | None) -> None:
    """from_record fills the event in directly: every field as the constructor sets it, shared as it shares it."""
    fields: dict[str, Any] = {
        "event_id": "0b7f0c4e-8d3a-4f7e-9a51-3c2d1e0f9a8b", "subject": "".join(["ps_", "9c1e"]),
        "source_type": "police.crime_report", "event_time": HAPPENED_MS, "recorded_time": HAPPENED_MS + 7,
        "agency": "police", "region": "".join(["Sk", "åne"]), "unit": "".join(["Malmö ", "PD"]), "offence": offence,
        "markers": ["weapon", "strangulation"],
        "victims": [{"pseudonym": "".join(["ps_", "v1"]), "protected_identity": 1},
                    {"pseudonym": "ps_v2", "protected_identity": False}],
        "attributes": {"valid_to": "2026-03-01", "assessed_level": "high"},
    }
    built = RiskEvent(**{**fields, "markers": frozenset(fields["markers"]),
                         "victims": tuple(Victim(v["pseudonym"], bool(v["protected_identity"]))
                                          for v in fields["victims"])})
    for record in (fields, decode_risk_event(encode_risk_event(fields))):
        event = RiskEvent.from_record(record)
        assert event == built and repr(event) == repr(built)
        for name in ("subject", "source_type", "agency", "region", "unit", "offence", "markers"):
            assert getattr(event, name) is getattr(built, name), name
        assert event.victims[0].pseudonym is built.victims[0].pseudonym
        assert type(event.victims[0].protected_identity) is bool
        assert list(event.attributes) == ["assessed_level", "valid_to"]
        with pytest.raises(TypeError):
            event.attributes["valid_to"] = "never"  # type: ignore[index]
    bare = {**fields, "markers": [], "victims": [], "attributes": {}}
    assert RiskEvent.from_record(bare).attributes is RiskEvent(**{**bare, "markers": frozenset()}).attributes


def test_override_event_carries_the_analysts_judgement() -> None:
    event = override_event(
        event_id="ov-1",
        subject="subject-7f3a",
        level="extreme",
        reason="new intelligence",
        analyst="analyst-17",
        at=HAPPENED_MS,
        region="syd",
    )
    assert event.source_type == "riskwatch.override"
    assert event.agency == "riskwatch"
    assert dict(event.attributes) == {
        "override_level": "extreme",
        "reason": "new intelligence",
        "analyst": "analyst-17",
    }
    assert (
        override_event(
            event_id="ov-2", subject="s", level=Level.LOW, reason="r", analyst="a", at=0, region="syd"
        ).attributes["override_level"]
        == "low"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"reason": "  "}, "reason"), ({"analyst": ""}, "analyst"), ({"level": "severe"}, "unknown level")],
)
def test_override_needs_a_level_a_reason_and_an_analyst(changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "event_id": "ov-1",
        "subject": "s",
        "level": "high",
        "reason": "r",
        "analyst": "a",
        "at": 0,
        "region": "syd",
    }
    with pytest.raises(ValueError, match=message):
        override_event(**(arguments | changes))
