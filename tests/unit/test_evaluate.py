"""Evaluation: figures on a hand-made labelled set computed by hand, ground truth, the report, the command."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from projections.events import RiskEvent
from projections.model import SubjectState
from projections.policy import default_policy
from services.cli.main import main
from services.tools.evaluation import PLOTS_MISSING
from services.tools.evaluation.metrics import (
    DAY_MS,
    LabelledRun,
    RaisedAlert,
    RiskAtEvaluation,
    SevereOutcome,
    detections,
    figures,
    figures_by_region,
)
from services.tools.evaluation.report import CAVEAT, write_report
from services.tools.evaluation.run import Evaluation, PolicyEvaluation, risk_at
from services.tools.evaluation.truth import outcomes_from_log, outcomes_from_truth
from schemas.identity import parse_identity_number, pseudonym
from tests.support.scenario import at, event, jsonl, new_person

KEY = bytes(range(32))
TODAY = dt.date(2026, 11, 1)
CUTOFFS = (1, 2, 3, 5)


def day(number: float) -> int:
    return int(number * DAY_MS)


# Five subjects over 200 days, evaluation time day 100, follow-up 90 days (days 100 to 190].
#   A stockholm: alerts high d10, extreme d50, moderate d55; outcome d60     -> warned d10: lead 50 days
#   B stockholm: alerts moderate d20, high d150;            outcome d120    -> missed (moderate; high comes after)
#   C syd:       alert high d5;                             outcome d120    -> missed (d5 is 115 days before)
#   D syd:       alert extreme d110;                        outcome d130    -> warned d110: lead 20 days
#   E syd:       no alert;                                  outcome d300    -> missed
#   X, absent from the log:                                 outcome d80     -> missed, region unknown
LABELLED = LabelledRun(
    regions={"A": "stockholm", "B": "stockholm", "C": "syd", "D": "syd", "E": "syd"},
    alerts=[
        RaisedAlert("A", "level_rose", "high", day(10)),
        RaisedAlert("A", "level_rose", "extreme", day(50)),
        RaisedAlert("A", "contact_ban_breach", "moderate", day(55)),
        RaisedAlert("B", "unknown_to_police", "moderate", day(20)),
        RaisedAlert("B", "level_rose", "high", day(150)),
        RaisedAlert("C", "red_flag_separation", "high", day(5)),
        RaisedAlert("D", "level_rose", "extreme", day(110)),
    ],
    outcomes=[
        SevereOutcome("A", "aggravated_assault", day(60)),
        SevereOutcome("B", "attempted_murder", day(120)),
        SevereOutcome("C", "aggravated_assault", day(120)),
        SevereOutcome("D", "murder", day(130)),
        SevereOutcome("E", "aggravated_assault", day(300)),
        SevereOutcome("X", "aggravated_assault", day(80)),
    ],
    # Known at day 100, assessed then. With an outcome in (100, 190]: B, C, D.
    at_evaluation=[
        RiskAtEvaluation("A", "extreme", 40.0),
        RiskAtEvaluation("B", "high", 12.0),
        RiskAtEvaluation("C", "moderate", 8.0),
        RiskAtEvaluation("D", "low", 3.0),
        RiskAtEvaluation("E", "low", 1.0),
    ],
    evaluation_time=day(100),
    follow_up_ms=day(90),
    period_ms=day(200),
)


def test_figures_of_the_hand_made_set() -> None:
    result = figures(LABELLED, CUTOFFS)
    assert (result.subjects, result.outcomes, result.detected) == (5, 6, 2)
    assert result.sensitivity == pytest.approx(2 / 6)
    assert result.lead_days == (20.0, 50.0)
    assert result.median_lead_days == pytest.approx(35.0)
    # 7 alerts / (5 / 1,000 subjects) / (200 / 7 weeks) = 49; 5 at high or above: 35
    assert (result.alerts, result.high_alerts) == (7, 5)
    assert result.alerts_per_1000_per_week == pytest.approx(49.0)
    assert result.high_alerts_per_1000_per_week == pytest.approx(35.0)
    assert result.alerts_by_trigger == {"contact_ban_breach": 1, "level_rose": 4, "red_flag_separation": 1,
                                        "unknown_to_police": 1}
    # Priority list A, B, C, D, E; positives B, C, D.
    assert (result.ranked, result.follow_up_positives) == (5, 3)
    assert result.precision == {1: 0.0, 2: 0.5, 3: pytest.approx(2 / 3), 5: 0.6}
    calibration = {level: (rate.subjects, rate.with_outcome) for level, rate in result.calibration.items()}
    assert calibration == {"low": (2, 1), "moderate": (1, 1), "high": (1, 1), "extreme": (1, 0)}
    assert result.calibration["low"].rate == 0.5


def test_figures_by_region_of_the_hand_made_set() -> None:
    regions = figures_by_region(LABELLED, CUTOFFS)
    assert sorted(regions) == ["stockholm", "syd", "unknown"]
    stockholm, syd, unknown = regions["stockholm"], regions["syd"], regions["unknown"]
    assert (stockholm.subjects, stockholm.outcomes, stockholm.sensitivity,
            stockholm.median_lead_days) == (2, 2, 0.5, 50)
    assert stockholm.alerts_per_1000_per_week == pytest.approx(5 / 2 * 1000 * 7 / 200)  # 87.5
    assert stockholm.precision == {1: 0.0, 2: 0.5, 3: None, 5: None}  # A, B ranked; B positive
    assert (syd.subjects, syd.outcomes, syd.detected, syd.median_lead_days) == (3, 3, 1, 20)
    assert syd.alerts_per_1000_per_week == pytest.approx(2 / 3 * 1000 * 7 / 200)
    assert syd.precision[3] == pytest.approx(2 / 3)  # C, D, E; C and D positive
    assert (unknown.subjects, unknown.outcomes, unknown.sensitivity,
            unknown.alerts_per_1000_per_week) == (0, 1, 0, None)


def test_a_warning_must_come_before_the_outcome_and_within_90_days() -> None:
    outcome = SevereOutcome("A", "murder", day(100))
    on_the_edge = detections([outcome], [RaisedAlert("A", "level_rose", "high", day(10))])
    too_early = detections([outcome], [RaisedAlert("A", "level_rose", "high", day(10) - 1)])
    same_moment = detections([outcome], [RaisedAlert("A", "level_rose", "extreme", day(100))])
    other_subject = detections([outcome], [RaisedAlert("B", "level_rose", "extreme", day(99))])
    assert on_the_edge[0].lead_ms == day(90)
    assert too_early[0].lead_ms is None
    assert same_moment[0].lead_ms is None
    assert other_subject[0].lead_ms is None
    assert figures(LabelledRun({}, [], [], [], 0, day(90), day(1))).sensitivity is None


def _crime_report(event_id: str, happened: int, recorded: int) -> RiskEvent:
    return RiskEvent(event_id=event_id, subject="ps_s", source_type="police.crime_report", event_time=happened,
                     recorded_time=recorded, agency="police", region="syd", unit="Polisen Malmö",
                     offence="aggravated_assault", markers=frozenset({"strangulation"}), victims=(), attributes={})


def test_risk_at_the_evaluation_time_sees_only_what_was_recorded_by_then() -> None:
    policy = default_policy()
    state = SubjectState("ps_s", (_crime_report("e1", day(90), day(95)), _crime_report("e2", day(99), day(101))))
    seen = risk_at(state, day(100), policy)
    assert seen is not None and seen.level in ("high", "extreme")
    full = risk_at(SubjectState("ps_s", (_crime_report("e1", day(90), day(95)),
                                         _crime_report("e2", day(99), day(99)))), day(100), policy)
    assert full is not None and full.score > seen.score
    assert risk_at(SubjectState("ps_s", (_crime_report("e3", day(99), day(101)),)), day(100), policy) is None


def test_truth_file_outcomes_are_mapped_to_pseudonyms_with_the_key(tmp_path: Path) -> None:
    number = new_person()
    truth = tmp_path / "truth.jsonl"
    truth.write_text(json.dumps({"subject_personal_identity_number": number, "outcome": "murder",
                                 "occurred_at": "2026-03-04T05:06:00+01:00", "reported_event_id": None}) + "\n")
    [outcome] = outcomes_from_truth(truth, KEY, TODAY)
    assert outcome.subject == pseudonym(parse_identity_number(number, today=TODAY), KEY)
    assert outcome.outcome == "murder"
    assert outcome.occurred_at == int(dt.datetime(2026, 3, 4, 4, 6, tzinfo=dt.UTC).timestamp() * 1000)


def test_without_truth_file_outcomes_are_the_severe_crime_reports_of_the_log(tmp_path: Path) -> None:
    subject = new_person()
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl(
        event("police.crime_report", subject, at(1), {"offence": "assault"}),
        event("police.crime_report", subject, at(2), {"offence": "attempted_murder"}),
        event("police.arrest", subject, at(2), {"offence": "attempted_murder"}),
    ) + b"not json\n")
    [outcome] = outcomes_from_log(log, KEY, TODAY)
    assert outcome.subject == pseudonym(parse_identity_number(subject, today=TODAY), KEY)
    assert (outcome.outcome, outcome.occurred_at) == ("attempted_murder", int(at(2).timestamp() * 1000))


def _evaluation() -> Evaluation:
    policies = tuple(
        PolicyEvaluation(label, version, 30, 0, 1, figures(LABELLED, (10, 50, 100)),
                         figures_by_region(LABELLED, (10, 50, 100)))
        for label, version in (("a.toml", "A"), ("b.toml", "B"))
    )
    return Evaluation("log.jsonl", "a hand-made set", 0, day(200), day(100), day(90), policies)


def test_report_writes_markdown_plots_and_figures(tmp_path: Path) -> None:
    report = write_report(_evaluation(), tmp_path / "report")
    text = report.read_text()
    assert CAVEAT in text and "nothing about how Riskwatch would perform on real cases" in text
    assert "| sensitivity (high-or-above alert within 90 days before) | 33.3% (2 of 6) | 33.3% (2 of 6) |" in text
    assert "| median lead time, days | 35.0 | 35.0 |" in text
    for image in ("calibration.png", "precision.png", "lead_times.png", "regions.png"):
        assert f"]({image})" in text
        assert (tmp_path / "report" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "report" / "figures.json").read_text())
    assert [policy["label"] for policy in saved["policies"]] == ["a.toml", "b.toml"]
    assert saved["policies"][0]["overall"]["sensitivity"] == pytest.approx(2 / 6)
    assert saved["policies"][0]["by_region"]["syd"]["detected"] == 1


def test_evaluate_without_the_tools_extra_says_in_one_line_how_to_install_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as in the image: the extra `tools` is not installed
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl(event("police.crime_report", new_person(), at(0), {"offence": "unlawful_threat"})))
    result = CliRunner().invoke(main, ["evaluate", str(log), "--report", str(tmp_path / "report")])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"Error: {PLOTS_MISSING}"]
    assert "riskwatch[tools]" in PLOTS_MISSING
    assert not (tmp_path / "report").exists(), "nothing was run"


def test_pages_are_cases_opened_or_made_more_urgent() -> None:
    from services.tools.evaluation.metrics import CASE_WORKED_MS, pages

    alerts = [
        RaisedAlert("A", "level_rose", "high", day(10), priority=2),
        RaisedAlert("A", "second_victim", "high", day(11), priority=2),  # attaches to the open case
        RaisedAlert("A", "contact_ban_breach", "high", day(12), priority=1),  # more urgent: pages again
        RaisedAlert("A", "em_alarm", "high", day(13), priority=1),  # attaches
        RaisedAlert("A", "level_rose", "extreme", day(13) + CASE_WORKED_MS + 1, priority=1),  # case closed: new one
        RaisedAlert("B", "unknown_to_police", "low", day(20), priority=2, paged=False),  # history
    ]
    called = pages(alerts)
    assert [(a.subject, a.raised_at) for a in called] == [
        ("A", day(10)), ("A", day(12)), ("A", day(13) + CASE_WORKED_MS + 1)]
