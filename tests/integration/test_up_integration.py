"""`riskwatch up` as a user runs it: it starts everything, says where, and stops it all on a signal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
import httpx
import psutil
import pytest

from tests.support.polling import until_blocking

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
    up, api_url, lines = _start_up(state_dir, cwd=tmp_path)
    try:
        printed = "".join(lines)
        assert "broker" in printed and "(embedded, in memory)" in printed and "database" in printed
        assert httpx.get(f"{api_url}/healthz", timeout=10).json() == {"status": "ok"}
        ready = httpx.get(f"{api_url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert len(_processes_under(state_dir)) >= 4  # broker, PostgreSQL, worker, API at least
        assert json.loads((state_dir / "runtime.json").read_text())["api_url"] == api_url
        up.send_signal(stop_signal)
        rest, _ = up.communicate(timeout=90)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0, rest
    assert "riskwatch stopped" in rest
    until_blocking(lambda: _processes_under(state_dir) == [], timeout=10, what="every process of the stack stopped")
    assert not (state_dir / "runtime.json").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["state"]  # nothing beside the state dir


def _start_up(state_dir: Path, cwd: Path | None = None) -> tuple[subprocess.Popen[str], str, list[str]]:
    """`riskwatch up` in the background, once it says it is up: (process, API URL, lines so far).

    A stack that does not come up is killed before the test fails."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RISKWATCH_")}
    environment["RISKWATCH_STATE_DIR"] = str(state_dir)
    up = subprocess.Popen([sys.executable, "-m", "services.cli", "up"], env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=cwd)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert up.stdout is not None
        while not any("Ctrl-C stops everything" in line for line in lines):
            line = up.stdout.readline()
            assert line or up.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        api = re.search(r"ingest\s+POST (http://\S+)/v1/events", "".join(lines))
        assert api, "".join(lines)
    except BaseException:
        up.kill()
        raise
    return up, api.group(1), lines


def test_up_restarts_a_killed_postgres_and_gives_up_non_zero_when_the_api_dies(tmp_path: Path) -> None:
    import asyncio
    import json

    from tests.support.scenario import agency_record

    state_dir = tmp_path / "state"
    up, api, _ = _start_up(state_dir)
    try:
        runtime = json.loads((state_dir / "runtime.json").read_text())
        postmaster = int((state_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)

        def answers() -> bool:
            try:
                return httpx.get(f"{api}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        until_blocking(lambda: not psutil.pid_exists(postmaster) or
                       psutil.Process(postmaster).status() == psutil.STATUS_ZOMBIE, timeout=10,
                       what="the postmaster died")
        until_blocking(answers, timeout=90, what="the API is ready again")
        restarted = int((state_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert restarted != postmaster and psutil.pid_exists(restarted)

        # events after the restart reach the archive: the worker reconnected
        subjects = ["ps_" + uuid.uuid4().hex for _ in range(3)]  # the form Riskwatch gives its pseudonyms
        records = [(subject, *agency_record(subject, day)) for day, subject in enumerate(subjects)]
        asyncio.run(_produce(runtime["kafka_bootstrap_servers"], records))
        ids = [event_id for *_, event_id in records]
        until_blocking(lambda: asyncio.run(_archived(runtime["database_url"], ids)) == len(ids), timeout=90,
                       what="events produced after the restart are archived")
        worker_ports = list((state_dir / "metrics").glob("worker-*.port"))
        assert worker_ports
        ready = httpx.get(f"http://127.0.0.1:{worker_ports[0].read_text().strip()}/readyz", timeout=10).json()
        assert {ready["database"], ready["broker"]} == {"ok"}, ready

        # the API is not restarted: `up` stops everything and says so with a non-zero code
        [serve] = [p for p in _processes_under(state_dir) if "serve" in " ".join(p.cmdline())]
        serve.kill()
        rest, _ = up.communicate(timeout=90)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 1, rest
    assert "the embedded PostgreSQL runs again" in rest and "riskwatch stopped: the API exited" in rest


async def _produce(bootstrap: str, records: list[tuple[str, str, bytes, str]]) -> None:
    """(subject, topic, value, event id): onto the broker, bypassing the gateway."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for subject, topic, value, _ in records:
            await producer.send_and_wait(topic, value, key=subject.encode())
    finally:
        await producer.stop()


async def _archived(database_url: str, event_ids: list[str]) -> int:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM event_archive WHERE event_id = ANY($1::uuid[])",
                                             event_ids))
    finally:
        await connection.close()
