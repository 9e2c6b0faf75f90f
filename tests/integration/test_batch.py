"""`riskwatch batch` and `riskwatch demo` as a user runs them: whole pipeline, real broker and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.tools.batch import arrival_waves
from services.tools.demo import format_alert
from tests.support.scenario import at, escalating_story, event, jsonl, new_person

RISKWATCH = [sys.executable, "-m", "services.cli"]


def clean_environment(**variables: str) -> dict[str, str]:
    """No configured stack: the commands start embedded ones of their own."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RISKWATCH_")}
    return {**environment, **variables}


@pytest.mark.integration
def test_batch_of_a_five_event_scenario_returns_the_expected_alerts(tmp_path: Path) -> None:
    subject, victim = new_person(), new_person()
    story = escalating_story(subject, victim, custody=False)
    separation = story[0]
    scenario = tmp_path / "scenario.jsonl"
    # line 6 repeats line 1 (a duplicate), line 7 is refused
    scenario.write_bytes(jsonl(*story, separation) + b'{"event_type": "police.arrest"}\n')
    result_file = tmp_path / "result.json"

    finished = subprocess.run([*RISKWATCH, "batch", str(scenario), "--out", str(result_file)],
                              env=clean_environment(), capture_output=True, text=True, timeout=180)

    assert finished.returncode == 0, finished.stderr
    assert "scenario.jsonl:7: event_id: is missing" in finished.stderr
    text = result_file.read_text()
    result = json.loads(text)
    assert result["ingest"] == {"accepted": 5, "duplicates": 1, "rejected": 1}
    assert result["rejected"][0]["line"] == 7
    triggers = {alert["trigger"] for alert in result["alerts"]}
    assert {"red_flag_separation", "level_rose", "contact_ban_breach", "release_at_high"} <= triggers, triggers
    for alert in result["alerts"]:
        assert alert["explanation"] and alert["factors"]
        assert dt.datetime.fromisoformat(alert["raised_at"]) >= dt.datetime.fromisoformat(alert["event_time"])
    release = next(alert for alert in result["alerts"] if alert["trigger"] == "release_at_high")
    assert release["audience"]["caseload"] == "Kriminalvården Frivård Stockholm"
    [projection] = result["subjects"]
    assert projection["level"] in ("high", "extreme") and projection["explanation"].startswith(projection["level"])
    assert projection["subject"].startswith("ps_")
    assert projection["input"]["lines"] == [1, 2, 3, 4, 5, 6]
    assert sorted(projection["input"]["event_ids"]) == sorted(document["event_id"] for document in story)
    assert subject not in text and victim not in text  # pseudonyms only


def test_waves_feed_each_subject_one_event_at_a_time_in_recorded_order() -> None:
    first, second = new_person(), new_person()
    late = event("police.arrest", first, at(5), {"offence": "assault"})
    early = event("police.crime_report", first, at(1), {"offence": "assault"})
    other = event("police.domestic_callout", second, at(9))
    # the same subject written in the short form, recorded last
    short = event("police.em_alarm", first, at(7), {"alarm": "tamper"})
    short["subject"] = {"personal_identity_number": first[2:]}
    lines = [*jsonl(late, early, other, short).splitlines(keepends=True), b"not json\n"]
    waves = arrival_waves(lines, dt.date(2026, 11, 1))
    assert [[number for number, _ in wave] for wave in waves] == [[2, 3, 5], [1], [4]]
    assert waves[1][0][1] == lines[0]


def _processes_mentioning(text: str) -> list[int]:
    """Processes whose command line or environment names `text`: what the demo started and left behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or another user's
    return found


@pytest.mark.integration
def test_demo_prints_alerts_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    demo = subprocess.Popen([*RISKWATCH, "demo", "--subjects", "40", "--rate", "200"],
                            env=clean_environment(RISKWATCH_STATE_DIR=str(state_dir)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert demo.stdout is not None
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("ALERT") for line in output[:-1]) and time.monotonic() < deadline:
            ready, _, _ = select.select([demo.stdout], [], [], 1.0)
            if ready:
                line = demo.stdout.readline()
                assert line, "the demo exited early:\n" + "".join(output)
                output.append(line)
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    text = "".join(output) + rest
    assert "/docs" in text, text
    tokens = re.findall(r"^ {4}(\w+) +demo\.\w+ +rw_\S+$", text, flags=re.MULTILINE)  # one console user per role
    assert "/console/" in text and sorted(tokens) == ["admin", "intelligence_analyst", "operator", "probation_officer"]
    alert = next(index for index, line in enumerate(output) if line.startswith("ALERT"))
    assert output[alert + 1].startswith("      ") and "(" in output[alert + 1], text  # the explanation
    assert demo.returncode == 0, text
    assert "riskwatch demo stopped" in text
    assert _processes_mentioning(str(state_dir)) == []


def test_alert_line_names_trigger_audience_and_explanation() -> None:
    alert = {"alert_id": "a", "subject": "ps_0123456789abcdef", "trigger": "release_at_high", "priority": 2,
             "level_before": "high", "level_after": "high", "event_time": 1_772_366_400_000,
             "audience": {"region": None, "caseload": None},
             "explanation": "Released from custody while at high risk (high: ...)"}
    first, second = format_alert(alert).splitlines()
    assert "2026-03-01 12:00 UTC" in first and "priority 2" in first and "release_at_high" in first
    assert "region withheld" in first
    assert second.strip() == alert["explanation"]
