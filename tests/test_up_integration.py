"""`riskwatch up` as a user runs it: it starts everything, says where, and stops it all on a signal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.integration


def _processes_under(state_dir: Path) -> list[psutil.Process]:
    """Riskwatch's own processes: those whose command line or environment names this state dir."""
    found = []
    for process in psutil.process_iter(["cmdline", "pid"]):
        try:
            if process.pid == os.getpid():
                continue
            text = " ".join(process.info["cmdline"] or [])
            if str(state_dir) in text or process.environ().get("RISKWATCH_STATE_DIR") == str(state_dir):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_starts_the_stack_and_stops_everything(tmp_path: Path, stop_signal: signal.Signals) -> None:
    state_dir = tmp_path / "state"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RISKWATCH_")}
    environment["RISKWATCH_STATE_DIR"] = str(state_dir)
    up = subprocess.Popen([sys.executable, "-m", "services.cli", "up"], env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert up.stdout is not None
        while not any("Ctrl-C stops everything" in line for line in lines):
            line = up.stdout.readline()
            assert line or up.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        printed = "".join(lines)
        api = re.search(r"ingest\s+POST (http://\S+)/v1/events", printed)
        assert api, printed
        assert "broker" in printed and "(embedded, in memory)" in printed and "database" in printed
        assert httpx.get(f"{api.group(1)}/healthz", timeout=10).json() == {"status": "ok"}
        ready = httpx.get(f"{api.group(1)}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert len(_processes_under(state_dir)) >= 4  # broker, PostgreSQL, worker, API at least
        assert json.loads((state_dir / "runtime.json").read_text())["api_url"] == api.group(1)
        up.send_signal(stop_signal)
        rest, _ = up.communicate(timeout=90)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0, rest
    assert "riskwatch stopped" in rest
    time.sleep(0.5)
    assert _processes_under(state_dir) == []
    assert not (state_dir / "runtime.json").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["state"]  # nothing beside the state dir
