"""`riskwatch batch`, `riskwatch evaluate` and `riskwatch demo`: whole-pipeline runs for analysts and newcomers."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from projections.policy import PolicyError
from services.runtime.progress import count_lines, progress_bar
from services.runtime.settings import Settings

_INPUT = click.Path(exists=True, dir_okay=False, path_type=Path)
_POLICY_HELP = "Risk policy TOML; default: RISKWATCH_POLICY_FILE, else the shipped policy."


class MissingExtra(click.ClickException):
    """An optional part of Riskwatch that the command needs is not installed."""

    exit_code = 2


@click.command("batch")
@click.argument("input_file", metavar="INPUT.jsonl", type=_INPUT)
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Result file (JSON); - for standard output.")
@click.option("--policy", type=_INPUT, help=_POLICY_HELP)
@click.option("--chunk", type=click.IntRange(1, 100_000), default=2000, show_default=True,
              help="Events published per broker round trip.")
def batch_command(input_file: Path, out: Path, policy: Path | None, chunk: int) -> None:
    """Run INPUT.jsonl through the whole pipeline and write every alert and final projection.

    A fresh embedded stack is started in a temporary directory (or the configured broker and
    database are used) with the review scheduler off, so the result depends only on the file
    and the policy. Bad lines are reported on standard error and do not stop the run.
    """
    from services.tools.batch import BatchFailed, batch_settings, read_policy, run_batch

    settings = Settings()
    policy_file = policy or settings.policy_file
    try:
        read_policy(policy_file)
    except PolicyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"running {input_file.name} through the pipeline...", err=True)
    try:
        with batch_settings(settings, policy_file) as run_settings, progress_bar("batch", count_lines(str(input_file))):
            result = run_batch(run_settings, input_file, sys.stderr, chunk=chunk)
    except BatchFailed as error:
        raise click.ClickException(str(error)) from None
    with click.open_file(str(out), "w", encoding="utf-8") as target:
        json.dump(result.to_dict(), target, indent=2, ensure_ascii=False)
        target.write("\n")
    workload = result.workload
    click.echo(f"accepted {result.accepted}, duplicates {result.duplicates}, rejected {len(result.rejected)}; "
               f"{len(result.alerts)} alerts: {workload['paged_alerts']} paged in {workload['cases']} cases, "
               f"{workload['historical_alerts']} history; {len(result.subjects)} subjects "
               f"(policy {result.policy_version})" + ("" if str(out) == "-" else f" -> {out}"), err=True)


@click.command("evaluate")
@click.argument("input_file", metavar="INPUT.jsonl", type=_INPUT)
@click.option("--truth", type=_INPUT,
              help="Ground truth (JSON Lines from `riskwatch generate`); default: severe outcomes derived from the "
                   "police crime reports in the log.")
@click.option("--policy", type=_INPUT, help=_POLICY_HELP)
@click.option("--compare-policy", type=_INPUT, help="A second policy, run on the same log and reported side by side.")
@click.option("--at", "evaluation_time", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
              help="Evaluation time (UTC) for the priority list and calibration; default: 90 days before the last "
                   "event.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("evaluation-report"), show_default=True,
              help="Directory for report.md, plots and figures.json.")
def evaluate_command(input_file: Path, truth: Path | None, policy: Path | None, compare_policy: Path | None,
                     evaluation_time: dt.datetime | None, report_dir: Path) -> None:
    """Run a labelled log through the pipeline and report how well alerts and rankings foresaw the outcomes.

    Sensitivity, lead time, workload, precision at the top of the priority list and
    calibration by level, overall and by region, for one policy or two side by side.
    """
    from services.tools.evaluation import plots_missing

    if missing := plots_missing():  # before the long run, not after it
        raise MissingExtra(missing)
    from services.tools.batch import BatchFailed
    from services.tools.evaluation.report import write_report
    from services.tools.evaluation.run import EvaluationError, evaluate_log
    from services.tools.evaluation.truth import TruthError

    settings = Settings()
    policies = [policy or settings.policy_file, *([compare_policy] if compare_policy else [])]
    at = None if evaluation_time is None else int(evaluation_time.replace(tzinfo=dt.UTC).timestamp() * 1000)
    lines = count_lines(str(input_file))
    try:
        with progress_bar("evaluate", None if lines is None else lines * len(policies)):
            evaluation = evaluate_log(settings, input_file, truth, policies, at, dt.date.today(), sys.stderr)
    except (PolicyError, TruthError, EvaluationError, BatchFailed) as error:
        raise click.ClickException(str(error)) from None
    report = write_report(evaluation, report_dir)
    for result in evaluation.policies:
        figures = result.overall
        sensitivity = "–" if figures.sensitivity is None else f"{figures.sensitivity:.0%}"
        click.echo(f"{result.label}: {figures.outcomes} severe outcomes, sensitivity {sensitivity}, "
                   f"{figures.alerts} alerts", err=True)
    click.echo(f"report: {report}")


@click.command("demo")
@click.option("--subjects", type=click.IntRange(1, 20_000), default=300, show_default=True,
              help="Synthetic subjects to simulate.")
@click.option("--seed", type=int, default=1, show_default=True, help="Generator seed: the same seed, the same story.")
@click.option("--months", type=click.IntRange(1, 24), default=6, show_default=True,
              help="Months of events, ending at the start of this month.")
@click.option("--rate", type=click.FloatRange(0.1, 10_000), default=20.0, show_default=True,
              help="Events sent per second.")
def demo_command(subjects: int, seed: int, months: int, rate: float) -> None:
    """Start the embedded stack, stream synthetic events into it and print alerts as they arrive.

    Runs until Ctrl-C. The demo uses its own directory under the state dir and starts it
    empty each time.
    """
    from services.tools.demo import DemoAlreadyRunning, DemoOptions, demo_settings, run_demo

    try:
        settings = demo_settings(Settings())
    except DemoAlreadyRunning as error:
        raise click.ClickException(str(error)) from None
    run_demo(settings, DemoOptions(subjects, seed, months, rate), click.echo)
    click.echo("riskwatch demo stopped")

