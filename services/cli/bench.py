"""`riskwatch bench`: measure the pipeline on fresh embedded stacks and print the figures beside the targets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from services.runtime.settings import Settings


def _worker_counts(context: click.Context, parameter: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter("give worker counts separated by commas, e.g. 1,2") from None
    if not all(1 <= count <= 16 for count in counts):
        raise click.BadParameter("each worker count must be between 1 and 16")
    return counts


@click.command("bench")
@click.option("--events", type=click.IntRange(min=100), default=200_000, show_default=True,
              help="Synthetic events pre-loaded into the agency topics for each stack.")
@click.option("--partitions", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Partitions of every event topic.")
@click.option("--rate", type=click.FloatRange(min=1), default=1000.0, show_default=True,
              help="Events per second injected while alert latency is measured.")
@click.option("--latency-seconds", type=click.FloatRange(min=1), default=20.0, show_default=True,
              help="How long events are injected while alert latency is measured.")
@click.option("--workers", default="1,2", show_default=True, callback=_worker_counts,
              help="Worker counts, one fresh stack each, each also measuring alert latency; the first also "
                   "rebuild and memory.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write every figure to this JSON file.")
@click.option("--smoke", is_flag=True,
              help="A quick run for CI: 2,000 events, 3 s of latency, 1 worker (overrides the sizes above).")
def bench_command(events: int, partitions: int, rate: float, latency_seconds: float, workers: tuple[int, ...],
                  json_file: Path | None, smoke: bool) -> None:
    """Benchmark the pipeline on embedded stacks started for the purpose (under <state dir>/bench).

    Measures ingest, a raw-consumer baseline, end-to-end throughput with each worker count,
    alert latency under a steady rate, rebuild speed with its digest, and worker memory per
    tracked subject, and prints them beside the targets. Takes minutes with the defaults.
    """
    from services.tools.benchmark import SMOKE, BenchOptions, run_bench

    options = SMOKE if smoke else BenchOptions(events, partitions, rate, latency_seconds, workers)
    started = time.monotonic()

    def progress(line: str) -> None:
        click.echo(f"{time.monotonic() - started:6.1f} s  {line}", err=True)

    report = run_bench(Settings(), options, progress)
    click.echo(report.table(verdicts=not smoke))
    if json_file is not None:
        json_file.write_text(json.dumps(report.to_document(), indent=2) + "\n", encoding="utf-8")
        click.echo(f"figures written to {json_file}", err=True)
