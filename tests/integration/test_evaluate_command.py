"""`riskwatch evaluate` end to end: a generated log through the real pipeline, two policies side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.tools.evaluation.report import CAVEAT

pytestmark = pytest.mark.integration


def test_evaluate_command_runs_two_policies_on_a_generated_log(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RISKWATCH_")}
    riskwatch = [sys.executable, "-m", "services.cli"]
    log = tmp_path / "log.jsonl"
    subprocess.run([*riskwatch, "generate", "--subjects", "40", "--seed", "6", "--months", "3", "--out", str(log)],
                   check=True, env=environment, capture_output=True)
    stricter = tmp_path / "stricter.toml"
    shipped = (Path(__file__).parents[2] / "projections" / "policies" / "2026.2.toml").read_text()
    stricter.write_text(shipped.replace('version = "2026.2"', 'version = "stricter"')
                        .replace("high = 10.0", "high = 20.0").replace("extreme = 30.0", "extreme = 60.0"))
    finished = subprocess.run(
        [*riskwatch, "evaluate", str(log), "--truth", str(log.with_suffix(".truth.jsonl")),
         "--compare-policy", str(stricter), "--at", "2026-02-15", "--report", str(tmp_path / "report")],
        env=environment, capture_output=True, text=True, timeout=240,
    )
    assert finished.returncode == 0, finished.stderr
    saved = json.loads((tmp_path / "report" / "figures.json").read_text())
    truth_lines = len(log.with_suffix(".truth.jsonl").read_text().splitlines())
    shipped_run, stricter_run = saved["policies"]
    assert (shipped_run["policy_version"], stricter_run["policy_version"]) == ("2026.2", "stricter")
    assert saved["evaluation_time"] == "2026-02-15T00:00:00+00:00"
    events = len(log.read_text().splitlines())
    for run in (shipped_run, stricter_run):
        assert run["ingest"] == {"accepted": events, "duplicates": 0, "rejected": 0}
        assert run["overall"]["subjects"] == 40
        assert run["overall"]["outcomes"] == truth_lines
    # Higher thresholds put fewer subjects at high or above at the evaluation time.
    shipped_high, stricter_high = (
        sum(run["overall"]["calibration"][level]["subjects"] for level in ("high", "extreme"))
        for run in (shipped_run, stricter_run)
    )
    assert stricter_high < shipped_high
    assert CAVEAT in (tmp_path / "report" / "report.md").read_text()
