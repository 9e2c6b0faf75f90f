"""The benchmark's figures beside the targets of the design: a table for people, JSON for records."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.tools.benchmark.latency import LatencyFigure
from services.tools.benchmark.phases import MemoryFigure, RebuildFigure
from services.tools.benchmark.sweep import COMPONENTS, Sweep
from services.tools.benchmark.workload import Ingested, Throughput

# Targets on 2 cores with the broker and PostgreSQL on the same machine. The pipeline is judged
# against the raw consumer of the same run, so a busier or quieter machine does not move the verdict.
PIPELINE_TO_BASELINE = 0.25
SCALE_OUT = 1.6  # 2 workers over 1, where the cores allow it
ALERT_P99_MS = 250
ALERT_RATE = 1_000
RATE_REACHED = 0.98  # share of ALERT_RATE the injection must reach for the latency verdict
REBUILD_EVENTS_PER_SECOND = 100_000
BYTES_PER_SUBJECT = 1024
HISTORY_RATIO = 1.5  # cost per event at the longest history over the shortest


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One fresh stack: the pre-load through the gateway, then the pipeline with `workers` workers
    and alert latency with them."""

    workers: int
    ingest: Ingested
    pipeline: Throughput
    latency: LatencyFigure | None = None


@dataclass(frozen=True, slots=True)
class Check:
    figure: str
    value: str
    target: str
    passed: bool | None  # None: a figure without a target


@dataclass
class BenchReport:
    date: str
    machine: dict[str, Any]
    options: dict[str, Any]
    baseline: Throughput
    sweep: Sweep | None = None
    runs: list[PipelineRun] = field(default_factory=list)
    rebuild: RebuildFigure | None = None
    memory: MemoryFigure | None = None

    def checks(self) -> list[Check]:
        rows: list[Check] = []
        if self.sweep is not None:
            rows.extend(_sweep_checks(self.sweep))
        single = self.runs[0].pipeline.events_per_second if self.runs else 0.0
        for run in self.runs:
            rows.append(Check(f"ingest through the gateway ({_workers(run.workers)} run)", _rate(run.ingest.throughput),
                              "", None))
        rows.append(Check("baseline: raw aiokafka consume + Avro decode", _rate(self.baseline), "", None))
        for run in self.runs:
            speed = run.pipeline.events_per_second
            rows.append(Check(f"pipeline end to end, {_workers(run.workers)}", _rate(run.pipeline), "", None))
            ratio = self.pipeline_to_baseline(run)
            rows.append(Check("  ratio to baseline", f"{ratio:.2f}", f">= {PIPELINE_TO_BASELINE}",
                              ratio >= PIPELINE_TO_BASELINE))
            if run is not self.runs[0] and single:
                speed_up = speed / single
                scaled = run.workers == 2 * self.runs[0].workers
                rows.append(Check(f"  speed-up over {_workers(self.runs[0].workers)}", f"{speed_up:.2f}x",
                                  f">= {SCALE_OUT}x" if scaled else "", speed_up >= SCALE_OUT if scaled else None))
        for run in self.runs:
            if run.latency is not None:
                rows.extend(_latency_checks(run.latency, _workers(run.workers)))
        if self.rebuild is not None:
            rebuild = self.rebuild
            rows.append(Check("rebuild from the archive", f"{rebuild.events_per_second:,.0f} events/s",
                              f">= {REBUILD_EVENTS_PER_SECOND:,} events/s",
                              rebuild.events_per_second >= REBUILD_EVENTS_PER_SECOND))
            rows.append(Check("  digest of rebuild and live projections",
                              "identical" if rebuild.identical else "DIFFERENT", "identical", rebuild.identical))
        if self.memory is not None:
            memory = self.memory
            rows.append(Check("worker memory per tracked subject", f"{memory.bytes_per_subject:,.0f} B",
                              f"<= {BYTES_PER_SUBJECT:,} B", memory.bytes_per_subject <= BYTES_PER_SUBJECT))
            rows.append(Check(f"  (peak {_mib(memory.peak_bytes)} - idle {memory.workers} x "
                              f"{_mib(memory.idle_rss_bytes)}) / {memory.subjects:,} subjects", "", "", None))
        return rows

    @property
    def latency(self) -> LatencyFigure | None:
        """Alert latency on the first stack (the one that also measures rebuild and memory)."""
        return self.runs[0].latency if self.runs else None

    def pipeline_to_baseline(self, run: PipelineRun) -> float:
        base = self.baseline.events_per_second
        return run.pipeline.events_per_second / base if base else 0.0

    def table(self, verdicts: bool = True) -> str:
        """The figures beside their targets; without verdicts (a smoke run's sizes judge nothing) no result column."""
        columns = 4 if verdicts else 3
        rows: list[tuple[str, ...]] = [("figure", "value", "target", "result")[:columns]] + [
            (check.figure, check.value, check.target, _verdict(check.passed))[:columns] for check in self.checks()
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(columns)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
                 for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        if not verdicts:
            lines.append("(smoke sizes: the figures show that every phase runs, not whether a target is met)")
        return "\n".join(lines)

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "date": self.date,
            "machine": self.machine,
            "options": self.options,
            "baseline": _throughput(self.baseline),
            "history_sweep": None if self.sweep is None else {
                "points": [{"history": point.history, "events": point.events, "cpu_us_per_event": point.total_us,
                            "cpu_us_by_component": point.cpu_us, "cold_load_cpu_us": point.cold_load_us}
                           for point in self.sweep.points],
                "ratio": self.sweep.ratio,
                "rounds": self.sweep.rounds,
            },
            "runs": [
                {
                    "workers": run.workers,
                    "ingest": {**_throughput(run.ingest.throughput), "rejected": run.ingest.rejected},
                    "pipeline": {**_throughput(run.pipeline), "ratio_to_baseline": self.pipeline_to_baseline(run)},
                    "alert_latency": None if run.latency is None else _latency(run.latency),
                }
                for run in self.runs
            ],
            "alert_latency": None,
            "rebuild": None,
            "memory": None,
            "targets": [
                {"figure": check.figure.strip(), "value": check.value, "target": check.target, "passed": check.passed}
                for check in self.checks() if check.passed is not None
            ],
        }
        if self.latency is not None:
            document["alert_latency"] = _latency(self.latency)
        if self.rebuild is not None:
            rebuild = self.rebuild
            document["rebuild"] = {
                "events": rebuild.events, "subjects": rebuild.subjects, "seconds": rebuild.seconds,
                "events_per_second": rebuild.events_per_second,
                "digest": rebuild.digest, "live_digest": rebuild.live_digest, "identical": rebuild.identical,
            }
        if self.memory is not None:
            memory = self.memory
            document["memory"] = {
                "workers": memory.workers, "idle_rss_bytes": memory.idle_rss_bytes, "peak_bytes": memory.peak_bytes,
                "subjects": memory.subjects, "bytes_per_subject": memory.bytes_per_subject,
            }
        return document


def _latency_checks(latency: LatencyFigure, workers: str) -> list[Check]:
    # the target holds only at the rate it names: a sender that fell behind measured less load
    at_rate = latency.injected.events_per_second >= ALERT_RATE * RATE_REACHED
    return [
        Check(f"alert latency p50, {workers}", f"{latency.p50_ms:,.0f} ms", "", None),
        Check(f"alert latency p95, {workers}", f"{latency.p95_ms:,.0f} ms", "", None),
        Check(f"alert latency p99, {workers}", f"{latency.p99_ms:,.0f} ms",
              f"<= {ALERT_P99_MS} ms at {ALERT_RATE:,} events/s",
              bool(latency.alerts) and latency.p99_ms <= ALERT_P99_MS and at_rate),
        Check("  of which until the relay sent the alert", f"{latency.published_p99_ms:,.0f} ms", "", None),
        Check(f"  measured on {latency.alerts:,} alerts, {latency.injected.events:,} events injected",
              f"{latency.injected.events_per_second:,.0f} events/s", f"{latency.rate_asked:,.0f} asked", None),
    ]


def _latency(latency: LatencyFigure) -> dict[str, Any]:
    return {
        "rate_asked": latency.rate_asked,
        "injected": _throughput(latency.injected),
        "alerts": latency.alerts,
        "p50_ms": latency.p50_ms, "p95_ms": latency.p95_ms, "p99_ms": latency.p99_ms,
        "published_p99_ms": latency.published_p99_ms,
    }


def _sweep_checks(measured: Sweep) -> list[Check]:
    rows = []
    for point in measured.points:
        parts = ", ".join(f"{name} {point.cpu_us[name]:,.0f}" for name in COMPONENTS)
        rows.append(Check(f"risk stage per event, N={point.history:,} in the state ({parts})",
                          f"{point.total_us:,.0f} us CPU", "", None))
        rows.append(Check("  reading the state when the worker does not hold it (once per subject)",
                          f"{point.cold_load_us:,.0f} us CPU", "", None))
    first, last = measured.points[0].history, measured.points[-1].history
    if measured.rounds > 1:
        rows.append(Check(f"  (each the fastest of {measured.rounds} measurements, the lengths in turn)", "", "", None))
    rows.append(Check(f"  ratio N={last:,} / N={first:,}", f"{measured.ratio:.2f}", f"<= {HISTORY_RATIO}",
                      measured.ratio <= HISTORY_RATIO))
    return rows


def describe_machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    return {
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def _meminfo_kib(field_name: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field_name:
            return int(value.split()[0])
    return 0


def _throughput(throughput: Throughput) -> dict[str, float]:
    return {"events": throughput.events, "seconds": throughput.seconds,
            "events_per_second": throughput.events_per_second}


def _verdict(passed: bool | None) -> str:
    return "" if passed is None else "pass" if passed else "FAIL"


def _workers(count: int) -> str:
    return f"{count} worker{'s' if count > 1 else ''}"


def _rate(throughput: Throughput) -> str:
    return f"{throughput.events_per_second:,.0f} events/s"


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"
