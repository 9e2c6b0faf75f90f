"""Progress bars: counts and rate on a terminal, from inside asyncio tasks too; nothing otherwise."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from services.cli.main import main
from services.runtime.progress import advance, count_lines, progress_bar


def test_a_terminal_gets_counts_and_a_rate() -> None:
    screen = io.StringIO()

    async def work() -> None:
        for _ in range(4):
            await asyncio.create_task(counted(250))

    async def counted(events: int) -> None:
        advance(events)

    with progress_bar("ingest events.jsonl", 2000, console=Console(file=screen, force_terminal=True, width=120)):
        asyncio.run(work())
    shown = screen.getvalue()
    assert "ingest events.jsonl" in shown and "1000/2000" in shown and "events/s" in shown


def test_no_terminal_no_bar() -> None:
    screen = io.StringIO()
    with progress_bar("rebuild", 10, console=Console(file=screen)):
        advance(10)
    assert screen.getvalue() == ""
    advance(3)  # without a bar: nothing to do, no error


def test_generate_into_a_pipe_prints_only_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(main, ["generate", "--subjects", "3", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and "events for 3 subjects" in result.output
    assert count_lines(str(out)) == len(out.read_text().splitlines())
