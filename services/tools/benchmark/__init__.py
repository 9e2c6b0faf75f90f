"""`riskwatch bench`: end-to-end throughput, alert latency, rebuild speed and worker memory,
measured against a raw consumer of the same topics in the same run (docs/benchmarks.md)."""

from services.tools.benchmark.report import BenchReport
from services.tools.benchmark.run import SMOKE, BenchOptions, run_bench

__all__ = ["SMOKE", "BenchOptions", "BenchReport", "run_bench"]
