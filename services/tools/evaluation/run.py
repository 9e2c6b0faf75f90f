"""An evaluation: the labelled log through the whole pipeline once per policy, then the figures."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from projections.model import SubjectState, assess
from projections.policy import Policy
from projections.store import ms_to_datetime
from services.api.auth import NATIONAL
from services.tools.batch import BatchResult, batch_settings, read_policy, run_batch
from services.tools.evaluation.metrics import (
    WARNING_WINDOW_MS,
    Figures,
    LabelledRun,
    RaisedAlert,
    RiskAtEvaluation,
    SevereOutcome,
    figures,
    figures_by_region,
)
from services.tools.evaluation.truth import outcomes_from_log, outcomes_from_truth
from services.runtime.state import pseudonym_key
from services.runtime.settings import Settings

FOLLOW_UP_MS = WARNING_WINDOW_MS


class EvaluationError(ValueError):
    """The evaluation cannot be run as asked; the message says why."""


@dataclass(frozen=True)
class PolicyEvaluation:
    label: str
    policy_version: str
    accepted: int
    duplicates: int
    rejected: int
    overall: Figures
    by_region: dict[str, Figures]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "policy_version": self.policy_version,
            "ingest": {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected},
            "overall": self.overall.to_dict(),
            "by_region": {region: result.to_dict() for region, result in self.by_region.items()},
        }


@dataclass(frozen=True)
class Evaluation:
    input_name: str
    ground_truth: str  # where the outcomes came from, in words
    first_event: int
    last_event: int
    evaluation_time: int
    follow_up_ms: int
    policies: tuple[PolicyEvaluation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_name,
            "ground_truth": self.ground_truth,
            "period": {"first_event": _iso(self.first_event), "last_event": _iso(self.last_event)},
            "evaluation_time": _iso(self.evaluation_time),
            "follow_up_days": self.follow_up_ms // 86_400_000,
            "warning_window_days": WARNING_WINDOW_MS // 86_400_000,
            "policies": [policy.to_dict() for policy in self.policies],
        }


def evaluate_log(base: Settings, input_path: Path, truth_path: Path | None, policy_files: Sequence[Path | None],
                 evaluation_time: int | None, today: dt.date, errors: TextIO) -> Evaluation:
    """Run the log once per policy (each on a fresh stack) and compute the figures of each run.

    `evaluation_time` None: the last event time minus the follow-up, so every subject ranked
    at it has a full follow-up within the log.
    """
    policies = [read_policy(path) for path in policy_files]
    embedded = base.embedded_broker and base.embedded_database
    if len(policy_files) > 1 and not embedded:
        raise EvaluationError("comparing policies needs a fresh stack for each run: leave "
                              "RISKWATCH_KAFKA_BOOTSTRAP_SERVERS and RISKWATCH_DATABASE_URL unset")
    if embedded and base.pseudonym_key is None:
        # One key for every run, so pseudonyms agree between the runs and the truth file.
        base = base.model_copy(update={"pseudonym_key": SecretStr(secrets.token_hex(32))})
    key = pseudonym_key(base)
    if truth_path is not None:
        outcomes = outcomes_from_truth(truth_path, key, today)
        ground_truth = f"truth file {truth_path.name}: every severe outcome, reported or not"
    else:
        outcomes = outcomes_from_log(input_path, key, today)
        ground_truth = ("derived from the log: police crime reports of aggravated assault, attempted murder or "
                        "murder, at their event time (unreported outcomes are not counted)")
    evaluations: list[PolicyEvaluation] = []
    period: tuple[int, int] | None = None
    at = evaluation_time
    for path, policy in zip(policy_files, policies, strict=True):
        with batch_settings(base, path) as settings:
            result = run_batch(settings, input_path, errors)
        period = period or _period(result)
        at = at if at is not None else max(period[0], period[1] - FOLLOW_UP_MS)
        run = labelled_run(result, outcomes, policy, at, period)
        evaluations.append(PolicyEvaluation(
            label=path.name if path else f"default ({policy.version})", policy_version=policy.version,
            accepted=result.accepted, duplicates=result.duplicates, rejected=len(result.rejected),
            overall=figures(run), by_region=figures_by_region(run),
        ))
    assert period is not None and at is not None
    return Evaluation(input_path.name, ground_truth, period[0], period[1], at, FOLLOW_UP_MS, tuple(evaluations))


def labelled_run(result: BatchResult, outcomes: Sequence[SevereOutcome], policy: Policy, evaluation_time: int,
                 period: tuple[int, int]) -> LabelledRun:
    """The batch's alerts and projections, and each subject assessed at the evaluation time."""
    return LabelledRun(
        # a subject no region may be named for (protected victims) counts under the national scope
        regions={subject.subject: subject.region or NATIONAL for subject in result.subjects},
        alerts=[RaisedAlert(alert.subject, alert.trigger, alert.level_after, alert.raised_at, alert.priority,
                            alert.paged)
                for alert in result.alerts],
        outcomes=outcomes,
        at_evaluation=[risk for subject in result.subjects
                       if (risk := risk_at(subject.state, evaluation_time, policy)) is not None],
        evaluation_time=evaluation_time,
        follow_up_ms=FOLLOW_UP_MS,
        period_ms=period[1] - period[0],
    )


def risk_at(state: SubjectState, at: int, policy: Policy) -> RiskAtEvaluation | None:
    """The assessment from what had been recorded by `at`; None for a subject nobody knew of then."""
    known = tuple(event for event in state.events if event.recorded_time <= at)
    if not known:
        return None
    assessment = assess(SubjectState(state.subject, known), at, policy)
    return RiskAtEvaluation(state.subject, assessment.level.label, assessment.score)


def _period(result: BatchResult) -> tuple[int, int]:
    times = [event.event_time for subject in result.subjects for event in subject.state.events]
    if not times:
        raise EvaluationError("no event of the log reached the pipeline: nothing to evaluate")
    return min(times), max(times)


def _iso(epoch_ms: int) -> str:
    return ms_to_datetime(epoch_ms).isoformat()
