"""A worker writes nothing outside its state dir: it starts in a working directory it cannot write.

This is how the image runs (read-only root file system, the state dir on a tmpfs). As root a
directory's mode does not stop writes, so then the worker runs in a mount namespace of its own
where the working directory is a read-only bind mount.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from collections.abc import Iterator

import httpx
import pytest

from services.runtime.metrics import port_file
from services.runtime.state import child_environment
from services.runtime.stack import Stack
from tests.support.polling import until_blocking

pytestmark = pytest.mark.integration


def read_only_command(working: Path, command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command  # the directory's mode is enough
    if shutil.which("unshare") is None:
        pytest.skip("running as root needs unshare(1) for a read-only mount")
    where = shlex.quote(str(working))
    return ["unshare", "--mount", "sh", "-c", f"mount --bind {where} {where} && mount -o remount,bind,ro {where} "
            f"{where} && cd {where} && exec {shlex.join(command)}"]


@pytest.fixture
def directories() -> Iterator[tuple[Path, Path]]:
    """A read-only working directory and a writable state dir."""
    with tempfile.TemporaryDirectory(prefix="riskwatch-readonly-") as root:
        working, state = Path(root) / "working", Path(root) / "state"
        working.mkdir()
        state.mkdir()
        os.chmod(working, 0o555)
        yield working, state
        os.chmod(working, 0o755)


def test_the_worker_starts_in_a_read_only_working_directory(stack: Stack, directories: tuple[Path, Path]) -> None:
    working, state = directories
    environment = child_environment(stack.settings.model_copy(update={"state_dir": state}))
    environment.pop("RISKWATCH_PSEUDONYM_KEY", None)  # a worker needs no key
    # as in the image: JSON lines on standard output, here with faust's start-up messages
    environment.update(RISKWATCH_LOG_FORMAT="json", RISKWATCH_LOG_LEVEL="INFO")
    command = read_only_command(working, [sys.executable, "-m", "services.cli", "worker"])
    worker = subprocess.Popen(command, cwd=working, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        written = port_file(state, worker.pid)

        def served() -> bool:
            assert worker.poll() is None, worker.communicate()[0]
            return written.exists()

        until_blocking(served, what="the worker serving its metrics")
        health = httpx.get(f"http://{stack.settings.http_host}:{written.read_text()}/healthz", timeout=10)
        assert health.status_code == 200
        assert worker.poll() is None
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert list(working.iterdir()) == []
    assert (state / "faust").is_dir(), output  # faust's data dir is in the state dir
    assert "Traceback" not in output, output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
