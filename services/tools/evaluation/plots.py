"""The report's figures as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from services.tools.evaluation.metrics import LEVELS, PRECISION_CUTOFFS
from services.tools.evaluation.run import Evaluation, PolicyEvaluation

_WIDTH = 0.8


def write_plots(evaluation: Evaluation, directory: Path) -> list[tuple[str, str]]:
    """Every plot of the report: [(file name, caption)]."""
    policies = evaluation.policies
    regions = sorted({region for policy in policies for region in policy.by_region})
    plots: list[tuple[str, str, int, Callable[[Sequence[Axes]], None]]] = [
        ("calibration.png", "Share of subjects with a severe outcome in the follow-up, by level at the evaluation time",
         1, lambda axes: _calibration(axes, policies)),
        ("precision.png", "Precision at the top of the priority list at the evaluation time",
         1, lambda axes: _precision(axes, policies)),
        ("lead_times.png", "Lead time of detected outcomes: days from the first high-or-above alert",
         1, lambda axes: _lead_times(axes, policies)),
        ("regions.png", "Sensitivity and workload by region",
         2, lambda axes: _regions(axes, policies, regions)),
    ]
    for name, caption, panels, draw in plots:
        _save(directory / name, caption, draw, panels)
    return [(name, caption) for name, caption, _, _ in plots]


def _save(path: Path, title: str, draw: Callable[[Sequence[Axes]], None], panels: int) -> None:
    figure, axes = plt.subplots(panels, 1, figsize=(8, 4 * panels), squeeze=False)
    draw([row[0] for row in axes])
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axes: Axes, labels: Sequence[str], policies: Sequence[PolicyEvaluation],
          value: Callable[[PolicyEvaluation, str], float | None]) -> None:
    """Grouped bars, one group per label and one bar per policy; missing values leave a gap."""
    width = _WIDTH / len(policies)
    for index, policy in enumerate(policies):
        values = [value(policy, label) for label in labels]
        positions = [x + (index - (len(policies) - 1) / 2) * width for x in range(len(labels))]
        axes.bar([p for p, v in zip(positions, values, strict=True) if v is not None],
                 [v for v in values if v is not None], width, label=policy.label)
    axes.set_xticks(range(len(labels)), labels)
    if len(policies) > 1:
        axes.legend(fontsize=8)


def _calibration(axes: Sequence[Axes], policies: Sequence[PolicyEvaluation]) -> None:
    _bars(axes[0], LEVELS, policies, lambda policy, level: policy.overall.calibration[level].rate)
    axes[0].set_ylabel("outcome rate")
    axes[0].set_xlabel("level at the evaluation time")


def _precision(axes: Sequence[Axes], policies: Sequence[PolicyEvaluation]) -> None:
    _bars(axes[0], [f"top {k}" for k in PRECISION_CUTOFFS], policies,
          lambda policy, label: policy.overall.precision[int(label.split()[1])])
    axes[0].set_ylabel("share with a severe outcome")
    axes[0].set_ylim(0, 1)


def _lead_times(axes: Sequence[Axes], policies: Sequence[PolicyEvaluation]) -> None:
    for policy in policies:
        axes[0].hist(policy.overall.lead_days, bins=range(0, 95, 5), alpha=0.6, label=policy.label)
    axes[0].set_xlabel("days from the first warning to the outcome")
    axes[0].set_ylabel("outcomes")
    if len(policies) > 1:
        axes[0].legend(fontsize=8)


def _regions(axes: Sequence[Axes], policies: Sequence[PolicyEvaluation], regions: Sequence[str]) -> None:
    def sensitivity(policy: PolicyEvaluation, region: str) -> float | None:
        found = policy.by_region.get(region)
        return found.sensitivity if found else None

    def workload(policy: PolicyEvaluation, region: str) -> float | None:
        found = policy.by_region.get(region)
        return found.alerts_per_1000_per_week if found else None

    _bars(axes[0], regions, policies, sensitivity)
    axes[0].set_ylabel("sensitivity")
    axes[0].set_ylim(0, 1)
    _bars(axes[1], regions, policies, workload)
    axes[1].set_ylabel("alerts per 1,000 subjects per week")
    for panel in axes:
        panel.tick_params(axis="x", labelsize=8)
