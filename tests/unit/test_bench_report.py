"""The benchmark's verdicts: each target judged on the figure it names, at the load it names."""

from __future__ import annotations

from services.tools.benchmark.latency import LatencyFigure
from services.tools.benchmark.report import BenchReport, Check, PipelineRun
from services.tools.benchmark.workload import Ingested, Throughput


def latency(achieved: float, p99: float) -> LatencyFigure:
    return LatencyFigure(1_000, Throughput(10_000, 10_000 / achieved), 2_000, p99 / 2, p99 * 0.8, p99, p99 * 0.9)


def report(*, single: float, double: float, achieved: float, p99: float, p99_double: float = 100) -> BenchReport:
    ingest = Ingested(Throughput(10_000, 2.0), 0, None)
    figures = BenchReport("2026-12-01", {}, {}, Throughput(40_000, 1.0))
    figures.runs = [PipelineRun(1, ingest, Throughput(10_000, 10_000 / single), latency(achieved, p99)),
                    PipelineRun(2, ingest, Throughput(10_000, 10_000 / double), latency(1_000, p99_double))]
    return figures


def verdict(figures: BenchReport, name: str) -> Check:
    [check] = [check for check in figures.checks() if check.figure.strip() == name]
    return check


def test_the_pipeline_is_judged_by_its_ratio_to_the_baseline_of_the_same_run() -> None:
    slow = report(single=9_000, double=18_000, achieved=1_000, p99=200)
    fast = report(single=10_000, double=18_000, achieved=1_000, p99=200)
    assert verdict(slow, "pipeline end to end, 1 worker").passed is None
    # the first ratio is the 1-worker run's: 9,000 and 10,000 events/s over a baseline of 40,000
    assert next(c.passed for c in slow.checks() if c.figure.strip() == "ratio to baseline") is False
    assert next(c.passed for c in fast.checks() if c.figure.strip() == "ratio to baseline") is True


def test_two_workers_are_judged_against_one() -> None:
    assert verdict(report(single=1_000, double=1_600, achieved=1_000, p99=200), "speed-up over 1 worker").passed
    assert not verdict(report(single=1_000, double=1_500, achieved=1_000, p99=200),
                       "speed-up over 1 worker").passed


def test_the_latency_target_holds_only_at_the_rate_it_names() -> None:
    assert verdict(report(single=1, double=2, achieved=1_000, p99=240), "alert latency p99, 1 worker").passed
    assert not verdict(report(single=1, double=2, achieved=1_000, p99=260), "alert latency p99, 1 worker").passed
    behind = report(single=1, double=2, achieved=900, p99=100)  # a sender that fell behind measured less load
    assert not verdict(behind, "alert latency p99, 1 worker").passed
    relayed = [check.value for check in behind.checks()
               if check.figure.strip() == "of which until the relay sent the alert"]
    assert relayed == ["90 ms", "90 ms"]  # one for each worker count


def test_alert_latency_is_judged_for_every_worker_count() -> None:
    figures = report(single=1, double=2, achieved=1_000, p99=240, p99_double=300)
    assert verdict(figures, "alert latency p99, 1 worker").passed
    assert not verdict(figures, "alert latency p99, 2 workers").passed
    document = figures.to_document()
    assert [run["alert_latency"]["p99_ms"] for run in document["runs"]] == [240, 300]
    assert document["alert_latency"]["p99_ms"] == 240  # the first stack's, as before
