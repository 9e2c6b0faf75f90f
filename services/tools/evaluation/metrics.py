"""Evaluation figures from a labelled run: pure functions over alerts, outcomes and rankings.

No I/O, no clock: times are epoch milliseconds passed in. docs/evaluation.md defines each figure.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# An alert counts as a warning of an outcome when it was raised this long before it, or less.
WARNING_WINDOW_MS = 90 * DAY_MS
LEVELS = ("low", "moderate", "high", "extreme")
HIGH_OR_ABOVE = frozenset({"high", "extreme"})
PRECISION_CUTOFFS = (10, 50, 100)
UNKNOWN_REGION = "unknown"


@dataclass(frozen=True, slots=True)
class SevereOutcome:
    subject: str  # pseudonym
    outcome: str
    occurred_at: int


# The evaluation's assumption about the units' work: a case is closed this long after its latest
# alert. A later alert then opens a new case, and pages again.
CASE_WORKED_MS = 7 * DAY_MS


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    subject: str
    trigger: str
    level_after: str
    raised_at: int  # when the causing event was recorded
    priority: int = 3
    paged: bool = True  # False: history, in no live queue (projections.alerts.pages)


def pages(alerts: Iterable[RaisedAlert], worked_ms: int = CASE_WORKED_MS) -> list[RaisedAlert]:
    """The alerts that call someone: each opens a case, or is more urgent than its open case so far.

    Cases follow the live rule (one open case per subject, paged alerts attach); the units are
    assumed to acknowledge at once and to close a case `worked_ms` after its latest alert.
    """
    by_subject: dict[str, list[RaisedAlert]] = {}
    for alert in alerts:
        if alert.paged:
            by_subject.setdefault(alert.subject, []).append(alert)
    called: list[RaisedAlert] = []
    for subject_alerts in by_subject.values():
        open_until, priority = -1, 0
        for alert in sorted(subject_alerts, key=lambda a: (a.raised_at, a.priority, a.trigger)):
            if alert.raised_at > open_until or alert.priority < priority:
                called.append(alert)
                priority = alert.priority
            open_until = alert.raised_at + worked_ms
    return called


@dataclass(frozen=True, slots=True)
class RiskAtEvaluation:
    """A subject known at the evaluation time, assessed at it."""

    subject: str
    level: str
    score: float


@dataclass(frozen=True, slots=True)
class Detection:
    outcome: SevereOutcome
    lead_ms: int | None  # from the earliest warning to the outcome; None when nothing warned


@dataclass(frozen=True, slots=True)
class LevelRate:
    subjects: int
    with_outcome: int

    @property
    def rate(self) -> float | None:
        return self.with_outcome / self.subjects if self.subjects else None

    def to_dict(self) -> dict[str, Any]:
        return {"subjects": self.subjects, "with_outcome": self.with_outcome, "rate": self.rate}


@dataclass(frozen=True)
class LabelledRun:
    """Everything the figures are computed from, for one policy."""

    regions: Mapping[str, str]  # every subject of the log -> his home region
    alerts: Sequence[RaisedAlert]
    outcomes: Sequence[SevereOutcome]
    at_evaluation: Sequence[RiskAtEvaluation]
    evaluation_time: int
    follow_up_ms: int
    period_ms: int  # from the first to the last event of the log

    def region_of(self, subject: str) -> str:
        return self.regions.get(subject, UNKNOWN_REGION)

    def restricted_to(self, region: str) -> LabelledRun:
        def here(subject: str) -> bool:
            return self.region_of(subject) == region

        return LabelledRun(
            regions={subject: name for subject, name in self.regions.items() if name == region},
            alerts=[alert for alert in self.alerts if here(alert.subject)],
            outcomes=[outcome for outcome in self.outcomes if here(outcome.subject)],
            at_evaluation=[risk for risk in self.at_evaluation if here(risk.subject)],
            evaluation_time=self.evaluation_time, follow_up_ms=self.follow_up_ms, period_ms=self.period_ms,
        )


@dataclass(frozen=True)
class Figures:
    subjects: int
    outcomes: int
    detected: int
    sensitivity: float | None
    median_lead_days: float | None
    lead_days: tuple[float, ...]
    alerts: int
    high_alerts: int
    alerts_per_1000_per_week: float | None
    high_alerts_per_1000_per_week: float | None
    alerts_by_trigger: Mapping[str, int]
    paged_detected: int  # outcomes warned of by a paged alert (history reaches no one in time)
    paged_sensitivity: float | None
    paged_alerts: int
    historical_alerts: int
    pages: int
    pages_per_1000_per_week: float | None
    pages_by_trigger: Mapping[str, int]
    ranked: int
    follow_up_positives: int
    precision: Mapping[int, float | None]
    calibration: Mapping[str, LevelRate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subjects": self.subjects,
            "outcomes": self.outcomes,
            "detected": self.detected,
            "sensitivity": self.sensitivity,
            "median_lead_days": self.median_lead_days,
            "lead_days": list(self.lead_days),
            "alerts": self.alerts,
            "high_alerts": self.high_alerts,
            "alerts_per_1000_per_week": self.alerts_per_1000_per_week,
            "high_alerts_per_1000_per_week": self.high_alerts_per_1000_per_week,
            "alerts_by_trigger": dict(self.alerts_by_trigger),
            "paged_detected": self.paged_detected,
            "paged_sensitivity": self.paged_sensitivity,
            "paged_alerts": self.paged_alerts,
            "historical_alerts": self.historical_alerts,
            "pages": self.pages,
            "pages_per_1000_per_week": self.pages_per_1000_per_week,
            "pages_by_trigger": dict(self.pages_by_trigger),
            "ranked_at_evaluation_time": self.ranked,
            "subjects_with_outcome_in_follow_up": self.follow_up_positives,
            "precision_at": {str(k): value for k, value in self.precision.items()},
            "calibration": {level: rate.to_dict() for level, rate in self.calibration.items()},
        }


def detections(outcomes: Iterable[SevereOutcome], alerts: Iterable[RaisedAlert],
               window_ms: int = WARNING_WINDOW_MS) -> list[Detection]:
    """Each outcome with its lead time: from the earliest high-or-above alert in the window before it."""
    warnings: dict[str, list[int]] = {}
    for alert in alerts:
        if alert.level_after in HIGH_OR_ABOVE:
            warnings.setdefault(alert.subject, []).append(alert.raised_at)
    found: list[Detection] = []
    for outcome in outcomes:
        before = [at for at in warnings.get(outcome.subject, ())
                  if outcome.occurred_at - window_ms <= at < outcome.occurred_at]
        found.append(Detection(outcome, outcome.occurred_at - min(before) if before else None))
    return found


def sensitivity(found: Sequence[Detection]) -> float | None:
    """Share of outcomes preceded by a warning; None without outcomes."""
    if not found:
        return None
    return sum(1 for detection in found if detection.lead_ms is not None) / len(found)


def median_lead_days(found: Iterable[Detection]) -> float | None:
    leads = [detection.lead_ms / DAY_MS for detection in found if detection.lead_ms is not None]
    return statistics.median(leads) if leads else None


def alerts_per_1000_per_week(alerts: int, subjects: int, period_ms: int) -> float | None:
    """The workload: alerts per 1,000 subjects per week of the log's period."""
    if subjects == 0 or period_ms <= 0:
        return None
    return alerts / (subjects / 1000) / (period_ms / WEEK_MS)


def ranked(at_evaluation: Iterable[RiskAtEvaluation]) -> list[RiskAtEvaluation]:
    """The priority list: highest score first; ties by pseudonym so the order is reproducible."""
    return sorted(at_evaluation, key=lambda risk: (-risk.score, risk.subject))


def precision_at(priority_list: Sequence[RiskAtEvaluation], positives: Collection[str], k: int) -> float | None:
    """Share of the top k with an outcome in the follow-up; None when fewer than k are ranked."""
    if len(priority_list) < k:
        return None
    return sum(1 for risk in priority_list[:k] if risk.subject in positives) / k


def calibration(at_evaluation: Iterable[RiskAtEvaluation], positives: Collection[str]) -> dict[str, LevelRate]:
    """Per level at the evaluation time: how many subjects, how many had an outcome in the follow-up."""
    counts = {level: [0, 0] for level in LEVELS}
    for risk in at_evaluation:
        counts[risk.level][0] += 1
        counts[risk.level][1] += risk.subject in positives
    return {level: LevelRate(subjects, hits) for level, (subjects, hits) in counts.items()}


def follow_up_positives(run: LabelledRun) -> set[str]:
    """Subjects with an outcome after the evaluation time, within the follow-up."""
    end = run.evaluation_time + run.follow_up_ms
    return {outcome.subject for outcome in run.outcomes if run.evaluation_time < outcome.occurred_at <= end}


def figures(run: LabelledRun, cutoffs: Sequence[int] = PRECISION_CUTOFFS) -> Figures:
    found = detections(run.outcomes, run.alerts)
    high_alerts = sum(1 for alert in run.alerts if alert.level_after in HIGH_OR_ABOVE)
    positives = follow_up_positives(run)
    priority_list = ranked(run.at_evaluation)
    subjects = len(run.regions)
    called = pages(run.alerts)
    paged_found = detections(run.outcomes, [alert for alert in run.alerts if alert.paged])
    return Figures(
        subjects=subjects,
        outcomes=len(found),
        detected=sum(1 for detection in found if detection.lead_ms is not None),
        sensitivity=sensitivity(found),
        median_lead_days=median_lead_days(found),
        lead_days=tuple(sorted(d.lead_ms / DAY_MS for d in found if d.lead_ms is not None)),
        alerts=len(run.alerts),
        high_alerts=high_alerts,
        alerts_per_1000_per_week=alerts_per_1000_per_week(len(run.alerts), subjects, run.period_ms),
        high_alerts_per_1000_per_week=alerts_per_1000_per_week(high_alerts, subjects, run.period_ms),
        alerts_by_trigger=dict(sorted(Counter(alert.trigger for alert in run.alerts).items())),
        paged_detected=sum(1 for detection in paged_found if detection.lead_ms is not None),
        paged_sensitivity=sensitivity(paged_found),
        paged_alerts=sum(1 for alert in run.alerts if alert.paged),
        historical_alerts=sum(1 for alert in run.alerts if not alert.paged),
        pages=len(called),
        pages_per_1000_per_week=alerts_per_1000_per_week(len(called), subjects, run.period_ms),
        pages_by_trigger=dict(sorted(Counter(alert.trigger for alert in called).items())),
        ranked=len(priority_list),
        follow_up_positives=len(positives),
        precision={k: precision_at(priority_list, positives, k) for k in cutoffs},
        calibration=calibration(run.at_evaluation, positives),
    )


def figures_by_region(run: LabelledRun, cutoffs: Sequence[int] = PRECISION_CUTOFFS) -> dict[str, Figures]:
    """The same figures per home region; outcomes of subjects absent from the log fall under "unknown"."""
    regions = set(run.regions.values()) | {run.region_of(outcome.subject) for outcome in run.outcomes}
    return {region: figures(run.restricted_to(region), cutoffs) for region in sorted(regions)}
