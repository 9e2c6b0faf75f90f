"""One benchmark run: a fresh embedded stack per worker count, the phases in order, the report.

On the first stack: the idle worker's memory (before anything is loaded), the pre-load, the
baseline, the pipeline, the workers' peak memory, alert latency and rebuild. Every further
stack pre-loads, runs the pipeline with its number of workers (the scale-out figure) and
measures alert latency with them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from services.api.auth import local_operator
from services.tools.benchmark.latency import alert_latency
from services.tools.benchmark.phases import (
    MemoryFigure,
    baseline,
    idle_worker_rss,
    pipeline,
    proc_status_bytes,
    rebuild_speed,
    tracked_subjects,
)
from services.tools.benchmark.report import BenchReport, PipelineRun, describe_machine
from services.tools.benchmark.sweep import NEW_EVENTS, ROUNDS, Sweep, sweep
from services.tools.benchmark.workload import Ingested, preload, synthetic_events
from services.bootstrap import open_gateway
from services.runtime.settings import Settings
from services.bootstrap import started_stack
from services.runtime.stack import Stack

Echo = Callable[[str], None]

BENCH_DIR = "bench"
SEED = 1
WORKER_READY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class BenchOptions:
    events: int = 200_000
    partitions: int = 8
    rate: float = 1000.0
    latency_seconds: float = 20.0
    workers: tuple[int, ...] = (1, 2)
    sweep_events: int = NEW_EVENTS  # new events measured at each history length
    sweep_rounds: int = ROUNDS  # measurements of each length; the fastest counts

    @property
    def pipeline_timeout(self) -> float:
        return 120.0 + self.events / 200  # generous: a slow pipeline should be measured, not cut off


SMOKE = BenchOptions(events=2000, latency_seconds=3.0, workers=(1,), sweep_events=10, sweep_rounds=1)


def bench_settings(base: Settings, state_dir: Path, options: BenchOptions) -> Settings:
    """A fresh embedded stack of its own; no scheduler, the shipped policy."""
    return base.model_copy(update={
        "state_dir": state_dir, "kafka_bootstrap_servers": None, "database_url": None,
        "partitions": options.partitions, "scheduler_enabled": False, "policy_file": None, "http_port": 0,
    })


def run_bench(base: Settings, options: BenchOptions, echo: Echo) -> BenchReport:
    root = base.state_dir / BENCH_DIR
    shutil.rmtree(root, ignore_errors=True)
    echo("history-length sweep: the risk stage's pure work per event, N events in the subject's state")
    measured_sweep = sweep(count=options.sweep_events, rounds=options.sweep_rounds)
    for point in measured_sweep.points:
        echo(f"  N={point.history:,}: {point.total_us:,.0f} us per event")
    report: BenchReport | None = None
    for number, workers in enumerate(options.workers, start=1):
        settings = bench_settings(base, root / f"run-{number}", options)
        echo(f"stack {number} of {len(options.workers)}: {workers} worker(s), {options.partitions} partitions")
        with started_stack(settings, workers=0, api=False) as stack:
            report = asyncio.run(_measure(stack, workers, options, report, measured_sweep, echo))
        shutil.rmtree(settings.state_dir / "pgdata", ignore_errors=True)  # logs stay for inspection
    assert report is not None, "no worker counts given"
    return report


async def _measure(stack: Stack, workers: int, options: BenchOptions, report: BenchReport | None,
                   measured_sweep: Sweep, echo: Echo) -> BenchReport:
    first = report is None
    idle_rss = 0
    if first:
        idle_rss = await idle_worker_rss(stack, WORKER_READY_SECONDS)
        echo(f"  idle worker: {idle_rss / 2**20:,.1f} MiB resident")
    injected = round(options.rate * options.latency_seconds)
    # One population: the pre-load, then the latency phase's fresh events (later subjects).
    population = synthetic_events(options.events + injected, SEED, dt.date.today())
    ingested = await _preload(stack, itertools.islice(population, options.events), options.events, echo)
    expected = ingested.throughput.events
    if report is None:
        measured = await baseline(stack.settings, expected)
        echo(f"  baseline: {measured.events_per_second:,.0f} events/s")
        report = BenchReport(date=dt.date.today().isoformat(), machine=describe_machine(),
                             options={**asdict(options), "workers": list(options.workers)}, baseline=measured,
                             sweep=measured_sweep)
    for _ in range(workers):
        stack.start_worker()
    throughput = await pipeline(stack, expected, options.pipeline_timeout)
    echo(f"  pipeline: {throughput.events_per_second:,.0f} events/s "
         f"({expected:,} events in {throughput.seconds:.1f} s)")
    # pipeline() returned with every event applied and the outbox empty: all is idle
    if first:
        peak = sum(proc_status_bytes(process.pid, "VmHWM") for process in stack.workers)
        report.memory = MemoryFigure(workers, idle_rss, peak, await tracked_subjects(stack.settings))
    echo(f"  alert latency: {injected:,} events at {options.rate:,.0f} events/s")
    latency = await alert_latency(stack, list(population), options.rate, expected, options.pipeline_timeout)
    echo(f"  alert latency p99: {latency.p99_ms:,.0f} ms over {latency.alerts:,} alerts")
    report.runs.append(PipelineRun(workers, ingested, throughput, latency))
    if first:
        report.rebuild = await rebuild_speed(stack.settings)
        echo(f"  rebuild: {report.rebuild.events_per_second:,.0f} events/s, "
             f"digest {'identical' if report.rebuild.identical else 'DIFFERENT'}")
    return report


async def _preload(stack: Stack, lines: Iterable[bytes], count: int, echo: Echo) -> Ingested:
    echo(f"  pre-loading {count:,} synthetic events through the gateway")
    async with open_gateway(stack.settings, local_operator()) as gateway:
        ingested = await preload(gateway, lines)
    echo(f"  ingest: {ingested.throughput.events_per_second:,.0f} events/s")
    if ingested.rejected:
        echo(f"  {ingested.rejected} events refused, the first: {ingested.first_rejection}")
    return ingested
