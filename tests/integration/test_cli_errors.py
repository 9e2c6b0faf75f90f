"""A user's mistake is one line naming what to change; `--debug` shows the traceback."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from services.cli.main import _supervise, main
from services.runtime.embedded import free_port
from services.runtime.settings import Settings


def run(arguments: list[str], tmp_path: Path, **environment: str):  # type: ignore[no-untyped-def]
    env = {"RISKWATCH_STATE_DIR": str(tmp_path), "RISKWATCH_KAFKA_BOOTSTRAP_SERVERS": "",
           "RISKWATCH_DATABASE_URL": "", **environment}
    return CliRunner().invoke(main, arguments, env=env)


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_a_setting_that_is_not_a_number_names_its_variable(tmp_path: Path) -> None:
    result = run(["up"], tmp_path, RISKWATCH_PARTITIONS="abc")
    assert result.exit_code == 1
    line = one_line(result.output)
    assert line.startswith("Error: RISKWATCH_PARTITIONS=abc:") and "integer" in line


def test_a_secret_setting_is_named_but_not_repeated(tmp_path: Path) -> None:
    result = run(["up"], tmp_path, RISKWATCH_KAFKA_SECURITY_PROTOCOL="TLS", RISKWATCH_FETCH_WAIT_MS="9999")
    line = one_line(result.output)
    assert "RISKWATCH_KAFKA_SECURITY_PROTOCOL=TLS" in line and "RISKWATCH_FETCH_WAIT_MS=9999" in line


@pytest.mark.parametrize("command", [["migrate"], ["rebuild"], ["worker"], ["serve"]])
def test_a_command_that_needs_a_stack_says_how_to_get_one(tmp_path: Path, command: list[str]) -> None:
    result = run(command, tmp_path)
    assert result.exit_code == 1
    line = one_line(result.output)
    assert "riskwatch up" in line and "RISKWATCH_DATABASE_URL" in line


@pytest.mark.parametrize("url", ["postgresql://riskwatch@127.0.0.1:{port}/riskwatch", "mysql://riskwatch@db/riskwatch"])
def test_a_wrong_database_url_names_the_variable(tmp_path: Path, url: str) -> None:
    result = run(["rebuild"], tmp_path, RISKWATCH_DATABASE_URL=url.format(port=free_port("127.0.0.1")))
    assert result.exit_code == 1
    assert one_line(result.output).startswith("Error: RISKWATCH_DATABASE_URL: cannot connect to the database (")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run(["--debug", "up"], tmp_path, RISKWATCH_PARTITIONS="abc")
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ValidationError"


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("riskwatch, version ")


def test_up_gives_up_on_workers_that_keep_failing() -> None:
    def failing_worker(number: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    stack = SimpleNamespace(api=None, broker=None, database=None, workers=[failing_worker(1)],
                            start_worker_process=failing_worker)
    # `up` prints the reason and exits 1 (tests/integration/test_up_integration.py runs that end to end)
    assert "workers keep failing" in (_supervise(stack) or "")  # type: ignore[arg-type]


def test_a_policy_file_that_is_not_there_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-policy.toml"
    result = run(["worker"], tmp_path, RISKWATCH_POLICY_FILE=str(missing),
                 RISKWATCH_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", RISKWATCH_DATABASE_URL="postgresql://x@127.0.0.1:1/x")
    assert result.exit_code == 1
    line = one_line(result.output)
    assert str(missing) in line and ("RISKWATCH_POLICY_FILE" in line or "No such file" in line), line


def test_a_failed_batch_quotes_the_worker_log_of_its_temporary_stack(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from services.tools import batch

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "worker-1.log").write_text("starting\nrisk batch failed; stopping this worker\n")

    @contextlib.contextmanager
    def stack(settings: object, **options: object) -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(logs=logs)

    async def failing(*arguments: object) -> None:
        raise RuntimeError(f"a worker exited with code 70; see {logs}")

    monkeypatch.setattr(batch, "started_stack", stack)
    monkeypatch.setattr(batch, "_ingest_and_collect", failing)
    with pytest.raises(batch.BatchFailed) as failed:
        batch.run_batch(Settings(state_dir=tmp_path), tmp_path / "events.jsonl", sys.stderr)
    message = str(failed.value)
    assert message.startswith("a worker exited with code 70; the worker's log ended with:")
    assert "risk batch failed; stopping this worker" in message and str(logs) not in message
