"""The evaluation report: DIR/report.md with its PNG plots, and DIR/figures.json."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from services.tools.evaluation.metrics import LEVELS, PRECISION_CUTOFFS, Figures
from services.tools.evaluation.plots import write_plots
from services.tools.evaluation.run import Evaluation, PolicyEvaluation

CAVEAT = (
    "**Synthetic data tests the machinery, not the model.** When the input was generated "
    "(`riskwatch generate`), every outcome and every risk factor in it was put there by the generator, so these "
    "figures show that the pipeline, the risk model and this evaluation work end to end, and how two policies "
    "differ on the same log. They say nothing about how Riskwatch would perform on real cases: that needs a real, "
    "labelled event log."
)


def write_report(evaluation: Evaluation, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "figures.json").write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n", encoding="utf-8")
    plots = write_plots(evaluation, directory)
    report = directory / "report.md"
    report.write_text(render(evaluation, plots), encoding="utf-8")
    return report


def render(evaluation: Evaluation, plots: Sequence[tuple[str, str]]) -> str:
    policies = evaluation.policies
    figure = dict(plots)
    sections = [
        f"# Riskwatch evaluation of {evaluation.input_name}",
        f"> {CAVEAT}",
        "## What was run",
        _run_facts(evaluation),
        "## Headline figures",
        _table(["figure", *(policy.label for policy in policies)], _headline_rows(policies)),
        _image("precision.png", figure),
        "## Workload by trigger",
        "Alerts of the whole run by what raised them (docs/risk-model.md lists the triggers), and the pages among "
        "them: the alerts that opened a case or made an open one more urgent.",
        _trigger_table(policies),
        "## Calibration by level",
        f"Each subject known at the evaluation time, assessed at it, and whether he had a severe outcome in the "
        f"{evaluation.follow_up_ms // 86_400_000} days after it. A useful model has rates that rise with the level.",
        _calibration_table(policies),
        _image("calibration.png", figure),
        "## Lead times",
        "For each outcome preceded by a high-or-above alert, the days from the earliest such alert in the 90 days "
        "before it to the outcome.",
        _image("lead_times.png", figure),
        "## By region",
        "Subjects by their home region (the region of their latest event that names no protected victim). Outcomes "
        "of subjects who never appear in the log are listed as `unknown`.",
        *(_region_section(policy, len(policies) > 1) for policy in policies),
        _image("regions.png", figure),
        "## Definitions",
        _DEFINITIONS,
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _run_facts(evaluation: Evaluation) -> str:
    data = evaluation.to_dict()
    facts = [
        f"- Input: `{evaluation.input_name}`, events from {data['period']['first_event']} to "
        f"{data['period']['last_event']}.",
        f"- Ground truth: {evaluation.ground_truth}.",
        f"- Evaluation time for the priority list and calibration: {data['evaluation_time']}; follow-up "
        f"{data['follow_up_days']} days.",
    ]
    for policy in evaluation.policies:
        facts.append(f"- Policy `{policy.label}` (version {policy.policy_version}): {policy.accepted} events "
                     f"accepted, {policy.duplicates} duplicates, {policy.rejected} rejected; each policy ran on a "
                     f"fresh stack of its own.")
    return "\n".join(facts)


def _headline_rows(policies: Sequence[PolicyEvaluation]) -> list[list[str]]:
    rows: list[tuple[str, Callable[[Figures], str]]] = [
        ("subjects", lambda f: str(f.subjects)),
        ("severe outcomes", lambda f: str(f.outcomes)),
        ("sensitivity (high-or-above alert within 90 days before)",
         lambda f: f"{_percent(f.sensitivity)} ({f.detected} of {f.outcomes})"),
        ("sensitivity from paged alerts only",
         lambda f: f"{_percent(f.paged_sensitivity)} ({f.paged_detected} of {f.outcomes})"),
        ("median lead time, days", lambda f: _number(f.median_lead_days)),
        ("pages per 1,000 subjects per week (cases opened or made more urgent)",
         lambda f: _number(f.pages_per_1000_per_week)),
        ("pages", lambda f: str(f.pages)),
        ("alerts: paged (live queue), history", lambda f: f"{f.paged_alerts}, {f.historical_alerts}"),
        ("alerts per 1,000 subjects per week", lambda f: _number(f.alerts_per_1000_per_week)),
        ("high-or-above alerts per 1,000 subjects per week", lambda f: _number(f.high_alerts_per_1000_per_week)),
        ("subjects ranked at the evaluation time", lambda f: str(f.ranked)),
        ("of them with an outcome in the follow-up", lambda f: str(f.follow_up_positives)),
        *((f"precision at top {k}", (lambda f, k=k: _percent(f.precision[k]))) for k in PRECISION_CUTOFFS),
    ]
    return [[name, *(value(policy.overall) for policy in policies)] for name, value in rows]


def _trigger_table(policies: Sequence[PolicyEvaluation]) -> str:
    triggers = sorted({trigger for policy in policies for trigger in policy.overall.alerts_by_trigger})
    rows = [[trigger, *(f"{policy.overall.alerts_by_trigger.get(trigger, 0)}, "
                        f"{policy.overall.pages_by_trigger.get(trigger, 0)}" for policy in policies)]
            for trigger in triggers]
    return _table(["trigger", *(f"{policy.label}: alerts, pages" for policy in policies)], rows)


def _calibration_table(policies: Sequence[PolicyEvaluation]) -> str:
    header = ["level"] + [f"{policy.label}: subjects, with outcome, rate" for policy in policies]
    rows = [[level, *(_rate(policy.overall, level) for policy in policies)] for level in LEVELS]
    return _table(header, rows)


def _region_section(policy: PolicyEvaluation, titled: bool) -> str:
    header = ["region", "subjects", "outcomes", "sensitivity", "median lead, days", "pages /1,000 /week",
              "alerts /1,000 /week", "precision top 10", "high-or-above at evaluation: outcome rate"]
    rows = [
        [region, str(f.subjects), str(f.outcomes), _percent(f.sensitivity), _number(f.median_lead_days),
         _number(f.pages_per_1000_per_week), _number(f.alerts_per_1000_per_week),
         _percent(f.precision[PRECISION_CUTOFFS[0]]), _high_rate(f)]
        for region, f in policy.by_region.items()
    ]
    table = _table(header, rows)
    return f"### {policy.label}\n\n{table}" if titled else table


def _high_rate(figures: Figures) -> str:
    high = [figures.calibration[level] for level in ("high", "extreme")]
    subjects = sum(rate.subjects for rate in high)
    hits = sum(rate.with_outcome for rate in high)
    return f"{hits}/{subjects} ({_percent(hits / subjects if subjects else None)})"


def _rate(figures: Figures, level: str) -> str:
    rate = figures.calibration[level]
    return f"{rate.subjects}, {rate.with_outcome}, {_percent(rate.rate)}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _image(name: str, captions: dict[str, str]) -> str:
    return f"![{captions[name]}]({name})"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


_DEFINITIONS = """\
- **Severe outcome**: an aggravated assault, attempted murder or murder, from the ground truth above.
- **Sensitivity**: the share of severe outcomes for which the subject had an alert at high or extreme level (the
  level after the alert) raised in the 90 days before the outcome. An alert counts as raised once its causing event
  and every event its factors rest on were recorded: a live system cannot warn before the agencies record what the
  warning rests on. The alert for the outcome's own crime report comes after the outcome and never counts.
- **Sensitivity from paged alerts only**: the same, counting only alerts that were paged (history reaches no one
  when it matters).
- **Lead time**: for a detected outcome, the time from the earliest qualifying alert in those 90 days to the outcome.
- **Workload**: every alert of the run (and those at high or extreme) per 1,000 subjects of the log per week of the
  log's period (first to last event).
- **Pages**: the alerts that call someone. History (an event recorded more than the policy's paging window after it
  happened) pages no one; a paged alert opens its subject's case, or pages again when it is more urgent than the
  open case so far. The units are assumed to close a case 7 days after its latest alert. Per 1,000 subjects per
  week like the workload.
- **Priority list**: every subject with at least one event recorded by the evaluation time, assessed at that time
  from those events only (nothing recorded later leaks in), highest score first.
- **Precision at top k**: the share of the first k subjects of the list with a severe outcome in the follow-up after
  the evaluation time; `–` when fewer than k subjects are ranked.
- **Calibration**: per level at the evaluation time, the share of subjects with a severe outcome in the follow-up.
- **By region**: the same figures restricted to the subjects of one home region.

For orientation only, published figures from real cases (not comparable with synthetic data): VioGén's homicide
scale AUC .80, sensitivity 84%, specificity 60%, PPV .19; SARA as used by Swedish police AUC .70; ODARA c-index .69."""
