"""`riskwatch generate`: write a synthetic population's agency events and ground truth as JSON Lines."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click

from services.runtime.progress import advance, progress_bar
from services.tools.synthetic import SubjectHistory, subject_histories


@click.command("generate")
@click.option(
    "--subjects", type=click.IntRange(min=1), required=True, help="How many subjects (perpetrators) to simulate."
)
@click.option("--seed", type=int, required=True, help="The same seed gives byte-identical output.")
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default="2026-01-01",
    show_default=True,
    help="First day of the simulated window (YYYY-MM-DD).",
)
@click.option(
    "--months", type=click.IntRange(min=1), default=6, show_default=True, help="Length of the window in months."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Events file (JSON Lines); standard output if not given.",
)
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Severe-outcome file (JSON Lines); default OUT with suffix .truth.jsonl, none if events go to stdout.",
)
def generate_command(
    subjects: int, seed: int, start: dt.datetime, months: int, out: Path | None, truth: Path | None
) -> None:
    """Generate synthetic agency events for SUBJECTS subjects over MONTHS months.

    Events come subject by subject, each subject's in the order they were recorded.
    All identity numbers are fictitious (birth number 000, which is never assigned).
    """
    if truth is None and out is not None:
        truth = out.with_suffix(".truth.jsonl")
    if truth is not None and out is not None and truth.resolve() == out.resolve():
        raise click.BadParameter("must differ from --out", param_hint="--truth")
    try:
        histories = subject_histories(subjects, seed, start.date(), months)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--start/--months") from None
    events_written = outcomes_written = 0
    with contextlib.ExitStack() as files:
        events_file: IO[str] = files.enter_context(click.open_file(str(out) if out else "-", "w", encoding="utf-8"))
        truth_file: IO[str] | None = files.enter_context(truth.open("w", encoding="utf-8")) if truth else None
        for history in _with_progress(histories, subjects):
            for event in history.events:
                events_file.write(event.to_json_line())
            events_written += len(history.events)
            if truth_file is not None:
                for outcome in history.outcomes:
                    truth_file.write(outcome.to_json_line())
            outcomes_written += len(history.outcomes)
    where = f" to {out}" if out else ""
    truth_note = (
        f", {outcomes_written} severe outcomes to {truth}"
        if truth
        else f", {outcomes_written} severe outcomes (not written)"
    )
    click.echo(f"{events_written} events for {subjects} subjects{where}{truth_note}", err=True)


def _with_progress(histories: Iterator[SubjectHistory], subjects: int) -> Iterator[SubjectHistory]:
    with progress_bar("generate", subjects, unit="subjects"):
        for history in histories:
            yield history
            advance()
