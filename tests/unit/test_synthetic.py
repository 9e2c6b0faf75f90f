"""The synthetic agency data generator: determinism, format, identities, realism checks."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from services.cli.generate import generate_command
from schemas.identity import parse_identity_number
from services.tools.synthetic import (
    AgencyEvent,
    SevereOutcome,
    SubjectHistory,
    Trajectory,
    add_months,
    generate,
    is_fictitious,
    subject_histories,
)
from services.tools.synthetic.identities import IdentityPool, fictitious_number
from services.tools.synthetic.records import random_uuid4, swedish_time

START = dt.date(2026, 1, 1)
END = add_months(START, 6)
AGENCIES = {"police", "prosecution", "prison_probation", "social_services", "healthcare"}
CATALOGUE = {
    "police": {
        "arrest", "crime_report", "domestic_callout", "risk_assessment",
        "weapons_licence_held", "weapons_licence_revoked", "em_alarm",
    },
    "prosecution": {
        "contact_ban_issued", "contact_ban_ended", "contact_ban_breach_reported",
        "charge_filed", "detention_decided", "detention_lifted",
    },
    "prison_probation": {
        "custody_started", "release_scheduled", "released", "furlough_granted", "furlough_started",
        "furlough_ended", "probation_started", "probation_ended", "programme_enrolled",
        "programme_completed", "programme_dropped", "supervision_breach",
    },
    "social_services": {"concern_shared", "risk_assessment", "separation_reported"},
    "healthcare": {
        "psychiatric_emergency", "suicide_threat", "threats_expressed_in_care",
        "substance_abuse_treatment", "victim_injury_treated",
    },
}  # fmt: skip
REGIONS = {"nord", "mitt", "stockholm", "ost", "vast", "syd", "bergslagen"}
PERSON_KEYS = {"personal_identity_number", "coordination_number"}


def lines(subjects: int, seed: int) -> list[str]:
    return [record.to_json_line() for record in generate(subjects, seed, START, 6)]


@pytest.fixture(scope="module")
def population() -> list[SubjectHistory]:
    return list(subject_histories(3000, 20260101, START, 6))


@pytest.fixture(scope="module")
def events(population: list[SubjectHistory]) -> list[dict[str, Any]]:
    return [parsed(event) for history in population for event in history.events]


def parsed(event: AgencyEvent) -> dict[str, Any]:
    """The event as a reader of the JSON Lines file sees it."""
    document: dict[str, Any] = json.loads(event.to_json_line())
    return document


def identity_numbers(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield from event["subject"].items()
    for person in event["related_persons"]:
        for key in PERSON_KEYS & person.keys():
            yield key, person[key]


def test_same_seed_gives_byte_identical_output() -> None:
    assert lines(300, 7) == lines(300, 7)


def test_different_seeds_give_different_output() -> None:
    first, second = lines(100, 7), lines(100, 8)
    assert first != second
    first_ids = {json.loads(line).get("event_id") for line in first} - {None}
    assert first_ids and not first_ids & {json.loads(line).get("event_id") for line in second}


def test_a_subjects_story_does_not_depend_on_how_many_subjects_there_are() -> None:
    # Victims' numbers may differ (subjects own the first slots of the pool); the story may not.
    def stories(subjects: int) -> list[list[tuple[str, str]]]:
        histories = itertools.islice(subject_histories(subjects, 3, START, 6), 20)
        return [[(e.event_id, e.event_type) for e in h.events] for h in histories]

    assert stories(20) == stories(500)


def test_lines_are_compact_json_with_the_envelope_in_catalogue_order(population: list[SubjectHistory]) -> None:
    for history in population[:300]:
        for record in history.records:
            line = record.to_json_line()
            assert line == json.dumps(json.loads(line), ensure_ascii=False, separators=(",", ":")) + "\n"


def test_event_ids_are_version_4_uuids_drawn_from_the_seed() -> None:
    ours, reference = random.Random(5), random.Random(5)
    for _ in range(1000):
        assert random_uuid4(ours) == str(uuid.UUID(int=reference.getrandbits(128), version=4))


def test_times_are_swedish_local_time_across_summer_time_switches() -> None:
    def utc(text: str) -> int:
        return int(dt.datetime.fromisoformat(text + "+00:00").timestamp())

    assert swedish_time(utc("2026-01-15T12:00:05")) == "2026-01-15T13:00:05+01:00"
    assert swedish_time(utc("2026-03-29T00:59:59")) == "2026-03-29T01:59:59+01:00"
    assert swedish_time(utc("2026-03-29T01:00:00")) == "2026-03-29T03:00:00+02:00"
    assert swedish_time(utc("2026-10-25T00:59:59")) == "2026-10-25T02:59:59+02:00"
    assert swedish_time(utc("2026-10-25T01:00:00")) == "2026-10-25T02:00:00+01:00"
    assert swedish_time(utc("2026-12-31T23:30:00")) == "2027-01-01T00:30:00+01:00"


def test_windows_outside_the_supported_years_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="1996"):
        generate(10, 1, dt.date(1990, 1, 1), 6)
    result = CliRunner().invoke(generate_command, ["--subjects", "5", "--seed", "1", "--start", "2099-10-01"])
    assert result.exit_code == 2
    assert "2099" in result.output


def test_fictitious_numbers_are_valid_and_never_issued() -> None:
    number = fictitious_number(dt.date(1985, 3, 12), coordination=False)
    assert number == "19850312-0001"
    assert parse_identity_number(number, today=START).canonical == number.replace("-", "")
    coordination = fictitious_number(dt.date(1985, 3, 12), coordination=True)
    assert coordination.startswith("19850372-000")
    assert parse_identity_number(coordination, today=START, coordination=True).coordination
    assert is_fictitious(number, today=START)
    assert not is_fictitious("19850312-2396", today=START)  # a valid number a real person could hold
    assert not is_fictitious("19850312-0002", today=START)  # wrong check digit


def test_an_identity_pool_gives_every_birth_date_once_before_repeating() -> None:
    pool = IdentityPool(dt.date(1990, 1, 1), dt.date(1990, 12, 31), coordination=False, rng=random.Random(1))
    numbers = [pool.number(slot) for slot in range(pool.size + 1)]
    assert pool.size == 365
    assert len(set(numbers[:-1])) == 365
    assert numbers[-1] == numbers[0]


def test_every_identity_number_is_valid_and_fictitious(
    events: list[dict[str, Any]], population: list[SubjectHistory]
) -> None:
    seen = 0
    for event in events:
        for kind, number in identity_numbers(event):
            parse_identity_number(number, today=END, coordination=kind == "coordination_number")
            assert is_fictitious(number, today=END), number
            seen += 1
    for history in population:
        for outcome in history.outcomes:
            assert is_fictitious(outcome.subject_personal_identity_number, today=END)
    assert seen > len(events)


def test_subjects_have_distinct_personal_identity_numbers(population: list[SubjectHistory]) -> None:
    numbers = [history.subject_personal_identity_number for history in population]
    assert len(set(numbers)) == len(numbers)
    assert all(
        event.document["subject"] == {"personal_identity_number": history.subject_personal_identity_number}
        for history in population
        for event in history.events
    )


def test_envelopes_follow_the_catalogue(events: list[dict[str, Any]]) -> None:
    assert len({event["event_id"] for event in events}) == len(events)
    for event in events:
        assert list(event) == [
            "event_id", "event_type", "event_time", "recorded_time", "agency", "unit", "region",
            "subject", "related_persons", "legal_basis", "payload",
        ]  # fmt: skip
        event_type, agency = str(event["event_type"]), str(event["agency"])
        assert event_type.split(".")[0] == agency
        assert event["region"] in REGIONS
        event_time = dt.datetime.fromisoformat(str(event["event_time"]))
        recorded_time = dt.datetime.fromisoformat(str(event["recorded_time"]))
        assert event_time.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
        assert event_time <= recorded_time
        assert event_time.date() >= START and recorded_time.date() < END
        if agency in ("social_services", "healthcare"):
            assert event["legal_basis"] == "osl_10_18c"
        for person in event["related_persons"]:
            assert person["role"] in ("victim", "child", "other")
            assert isinstance(person["protected_identity"], bool)
            assert len(PERSON_KEYS & person.keys()) == 1


def test_recording_delays_range_from_minutes_to_days(events: list[dict[str, Any]]) -> None:
    delays = sorted(
        dt.datetime.fromisoformat(str(e["recorded_time"])) - dt.datetime.fromisoformat(str(e["event_time"]))
        for e in events
    )
    assert delays[0] < dt.timedelta(minutes=10)
    assert dt.timedelta(hours=1) < delays[len(delays) // 2] < dt.timedelta(days=2)
    assert delays[-1] > dt.timedelta(days=3)


def test_each_subjects_events_come_in_recorded_order(population: list[SubjectHistory]) -> None:
    for history in population:
        recorded = [dt.datetime.fromisoformat(parsed(e)["recorded_time"]) for e in history.events]
        assert recorded == sorted(recorded)


def test_all_five_agencies_and_every_catalogue_event_type_occur(events: list[dict[str, Any]]) -> None:
    types = Counter(str(event["event_type"]) for event in events)
    assert {event_type.split(".")[0] for event_type in types} == AGENCIES
    assert set(types) == {f"{agency}.{name}" for agency, names in CATALOGUE.items() for name in names}
    # Police reports dominate, as in reality.
    assert types.most_common(1)[0][0] in ("police.crime_report", "police.domestic_callout")


def test_the_population_mixes_trajectories_regions_and_protected_victims(
    population: list[SubjectHistory], events: list[dict[str, Any]]
) -> None:
    trajectories = Counter(history.trajectory for history in population)
    assert trajectories[Trajectory.QUIET] + trajectories[Trajectory.DECLINING] > len(population) / 2
    assert 0 < trajectories[Trajectory.SERIAL] < trajectories[Trajectory.ESCALATING]
    assert {event["region"] for event in events} == REGIONS
    protected = [p["protected_identity"] for e in events for p in e["related_persons"] if p["role"] == "victim"]
    assert 0 < sum(protected) < len(protected) / 2
    roles = Counter(p["role"] for e in events for p in e["related_persons"])
    assert roles["victim"] > roles["child"] > roles["other"] > 0
    kinds = Counter(key for e in events for p in e["related_persons"] for key in PERSON_KEYS & p.keys())
    assert 0 < kinds["coordination_number"] < kinds["personal_identity_number"] / 5


def test_serial_subjects_have_several_victims(population: list[SubjectHistory]) -> None:
    def victims(history: SubjectHistory) -> int:
        return len(
            {
                json.dumps(person, sort_keys=True)
                for event in history.events
                for person in parsed(event)["related_persons"]
                if person["role"] == "victim"
            }
        )

    serial = [victims(h) for h in population if h.trajectory is Trajectory.SERIAL]
    quiet = [victims(h) for h in population if h.trajectory is Trajectory.QUIET]
    assert sum(serial) / len(serial) > 1.5
    assert sum(quiet) / len(quiet) < 1.1


def test_escalating_subjects_have_more_severe_outcomes_than_quiet_ones(population: list[SubjectHistory]) -> None:
    def outcome_rate(trajectory: Trajectory) -> float:
        group = [h for h in population if h.trajectory is trajectory]
        return sum(bool(h.outcomes) for h in group) / len(group)

    assert outcome_rate(Trajectory.ESCALATING) > 5 * outcome_rate(Trajectory.QUIET)
    assert outcome_rate(Trajectory.ESCALATING) < 0.6  # likelier, not certain
    assert outcome_rate(Trajectory.QUIET) > 0  # some come out of the blue


def test_outcomes_are_mostly_reported_as_crime_reports(population: list[SubjectHistory]) -> None:
    outcomes = [(h, o) for h in population for o in h.outcomes]
    reported = [(h, o) for h, o in outcomes if o.reported_event_id is not None]
    assert {o.outcome for _, o in outcomes} == {"aggravated_assault", "attempted_murder", "murder"}
    assert len(outcomes) / 2 < len(reported) < len(outcomes)
    for history, outcome in reported:
        report = next(parsed(e) for e in history.events if e.event_id == outcome.reported_event_id)
        assert report["event_type"] == "police.crime_report"
        assert report["payload"]["offence"] == outcome.outcome
        assert report["event_time"] == outcome.document["occurred_at"]


def test_generated_events_pass_the_json_ingest_validator(population: list[SubjectHistory]) -> None:
    json_format = pytest.importorskip("schemas.json_format", reason="schemas.json_format is not written yet")
    for history in population[:1000]:
        for event in history.events:
            event_type, record = json_format.event_from_json(parsed(event), today=END)
            assert event_type == event.event_type
            assert record["subject"]["value"] == history.subject_personal_identity_number


def test_generate_streams_events_then_outcomes_per_subject() -> None:
    records = list(generate(50, 5, START, 6))
    histories = list(subject_histories(50, 5, START, 6))
    assert records == [record for h in histories for record in (*h.events, *h.outcomes)]
    assert all(isinstance(record, AgencyEvent | SevereOutcome) for record in records)


def test_cli_writes_events_and_truth_beside_them(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(generate_command, ["--subjects", "200", "--seed", "9", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").splitlines(keepends=True) == [
        r.to_json_line() for r in generate(200, 9, START, 6) if isinstance(r, AgencyEvent)
    ]
    truth = [json.loads(line) for line in (tmp_path / "events.truth.jsonl").read_text(encoding="utf-8").splitlines()]
    assert truth and set(truth[0]) == {
        "subject_personal_identity_number",
        "outcome",
        "occurred_at",
        "reported_event_id",
    }


def test_cli_writes_to_standard_output_without_truth(tmp_path: Path) -> None:
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        result = runner.invoke(
            generate_command, ["--subjects", "20", "--seed", "9", "--start", "2025-06-01", "--months", "2"]
        )
        assert result.exit_code == 0, result.output
        assert list(Path().iterdir()) == []
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and all(str(e["event_time"]) >= "2025-06-01" and str(e["event_time"]) < "2025-08-01" for e in events)


def test_cli_refuses_truth_file_that_is_the_events_file(tmp_path: Path) -> None:
    out = str(tmp_path / "e.jsonl")
    result = CliRunner().invoke(generate_command, ["--subjects", "5", "--seed", "1", "--out", out, "--truth", out])
    assert result.exit_code != 0
    assert "--truth" in result.output
