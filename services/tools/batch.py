"""The batch runner: one JSON Lines file through the whole pipeline, and everything that came out.

The file goes through the ingest gateway, the agency topics, the stream workers and
PostgreSQL, exactly as live events do; the runner waits until every event is applied, then
reads the alerts and final projections back. On its own embedded stack (a fresh one in a
temporary directory) the result depends on nothing but the file and the policy: the
scheduler is off, so no wall-clock review ticks enter the log.

Projections do not depend on the order events arrive in, but alerts do: a release is an
alert only if the subject was already at high risk when it came in. Each agency has its own
topic, so a file sent in one go would reach the risk processor in no particular order across
agencies. The runner therefore sends the file in waves: wave k holds every subject's k-th
event in the order the agencies recorded them, and the next wave goes only when the pipeline
is idle. Each subject's events thus arrive one by one in recorded order, as they would live.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from services.adapters.postgres.store import Store

from projections.model import SubjectState
from projections.alerts import AlertRecord
from projections.policy import Policy
from projections.store import ms_to_datetime
from schemas.identity import IdentityNumberError, parse_identity_number
from services import bootstrap
from services.bootstrap import open_gateway, started_stack
from services.ingest.clients import local_operator
from services.ingest.gateway import Outcome, submit_lines
from services.runtime.progress import advance
from services.runtime.settings import Settings
from services.runtime.stack import Stack

# Rows fetched per query when reading results back for many event ids or subjects.
_FETCH_CHUNK = 20_000
# Waiting for the pipeline after each wave: a floor, plus time per event of the wave for large ones.
_IDLE_TIMEOUT_SECONDS = 120.0
_IDLE_SECONDS_PER_EVENT = 0.01
# Lines of the worker's log quoted when the pipeline fails.
_LOG_LINES = 20
# Between waves: how long the pipeline must stay idle to count as done (see Stack.wait_until_idle).
_SETTLE_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line: int
    event_id: str | None
    errors: tuple[tuple[str, str], ...]  # (field, reason)

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "event_id": self.event_id,
                "errors": [{"field": name, "reason": reason} for name, reason in self.errors]}


@dataclass(frozen=True, slots=True)
class BatchAlert(AlertRecord):
    """An alert as the pipeline stored it, with the time its causing event was recorded."""

    # The earliest a live system could raise it: when the causing event and every event its
    # factors rest on were on record. The batch feeds events faster than agencies recorded them.
    raised_at: int
    # False: history, as the processor judged it with the batch's clock (each event processed
    # when it was recorded): an event an agency recorded long after it happened pages no one.
    paged: bool = True
    case_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "subject": self.subject,
            "trigger": self.trigger,
            "priority": self.priority,
            "level_before": self.level_before,
            "level_after": self.level_after,
            "score": self.score,
            "explanation": self.explanation,
            "factors": self.factors,
            "audience": {"region": self.region, "caseload": self.caseload},
            "event_time": _iso(self.event_time),
            "raised_at": _iso(self.raised_at),
            "causing_event_id": self.causing_event_id,
            "policy_version": self.policy_version,
            "paged": self.paged,
            "case_id": self.case_id,
        }


@dataclass(frozen=True, slots=True)
class BatchSubject:
    """A subject's final projection and where its events are in the input."""

    subject: str
    level: str
    score: float
    region: str | None  # None: every region recorded could point at a protected victim
    caseload: str | None
    assessment: dict[str, Any]
    state: SubjectState
    lines: tuple[int, ...]
    event_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "level": self.level,
            "score": self.score,
            "region": self.region,
            "caseload": self.caseload,
            "assessed_at": _iso(self.assessment["at"]),
            "next_review_at": _iso(self.assessment["next_review_at"]),
            "explanation": self.assessment["explanation"],
            "components": self.assessment["components"],
            "contributions": self.assessment["contributions"],
            "override": self.assessment["override"],
            "input": {"lines": list(self.lines), "event_ids": list(self.event_ids)},
        }


@dataclass
class BatchResult:
    source: str
    policy_version: str
    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedLine] = field(default_factory=list)
    alerts: list[BatchAlert] = field(default_factory=list)
    subjects: list[BatchSubject] = field(default_factory=list)

    @property
    def workload(self) -> dict[str, int]:
        """Paged alerts (the live queue), the cases they opened, and the alerts recorded as history."""
        paged = [alert for alert in self.alerts if alert.paged]
        return {"paged_alerts": len(paged), "cases": len({alert.case_id for alert in paged if alert.case_id}),
                "historical_alerts": len(self.alerts) - len(paged)}

    def to_dict(self) -> dict[str, Any]:
        """The result file: pseudonyms only, with input line numbers and event ids to map back."""
        return {
            "input": self.source,
            "policy_version": self.policy_version,
            "ingest": {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": len(self.rejected)},
            "workload": self.workload,
            "rejected": [line.to_dict() for line in self.rejected],
            "alerts": [alert.to_dict() for alert in self.alerts],
            "subjects": [subject.to_dict() for subject in self.subjects],
        }


def read_policy(policy_file: Path | None) -> Policy:
    """The policy the workers will use; a malformed file fails here, before any stack starts."""
    return bootstrap.policy_from(policy_file)


@contextlib.contextmanager
def batch_settings(base: Settings, policy_file: Path | None) -> Iterator[Settings]:
    """Settings for one batch run: a fresh embedded stack in a temporary state dir, or the configured one.

    A configured broker or database keeps the configured state dir, so that its pseudonym key,
    and thus its pseudonyms, apply.
    """
    # The log is replayed as it happened: each alert pages or is history as it would have been live.
    updates: dict[str, Any] = {"scheduler_enabled": False, "paging_clock": "recorded",
                               "policy_file": policy_file.resolve() if policy_file else None}
    if not (base.embedded_broker and base.embedded_database):
        yield base.model_copy(update=updates)
        return
    with tempfile.TemporaryDirectory(prefix="riskwatch-batch-") as state_dir:
        yield base.model_copy(update={**updates, "state_dir": Path(state_dir)})


class BatchFailed(RuntimeError):
    """The pipeline stopped before every event was applied; the message quotes the worker's log."""


def run_batch(settings: Settings, input_path: Path, errors: TextIO, *, chunk: int = 2000) -> BatchResult:
    """Start the stack, ingest the file, wait until every event is applied, read the results, stop."""
    policy = read_policy(settings.policy_file)
    with started_stack(settings, workers=1, api=False) as stack:
        try:
            return asyncio.run(_ingest_and_collect(stack, input_path, policy.version, errors, chunk))
        except (RuntimeError, TimeoutError) as error:
            # a fresh stack's state dir, its logs with it, is gone once the run ends: quote the log now
            log = stack.logs / "worker-1.log"
            tail = log.read_text(errors="replace").splitlines()[-_LOG_LINES:] if log.exists() else []
            raise BatchFailed("\n".join([str(error).split("; see ", 1)[0] + "; the worker's log ended with:",
                                          *(f"  {line}" for line in tail)])) from None


async def _ingest_and_collect(stack: Stack, input_path: Path, policy_version: str, errors: TextIO,
                              chunk: int) -> BatchResult:
    result = BatchResult(source=input_path.name, policy_version=policy_version)
    lines_of: dict[str, list[int]] = {}
    with input_path.open("rb") as lines:
        waves = arrival_waves(lines, dt.date.today())
    async with open_gateway(stack.settings, local_operator()) as gateway:
        for wave in waves:
            async for outcomes in submit_lines(gateway, wave, input_path.name, chunk):
                for outcome in outcomes:
                    _tally(result, outcome, lines_of, errors)
                advance(len(outcomes))
            await stack.wait_until_idle(timeout=_IDLE_TIMEOUT_SECONDS + _IDLE_SECONDS_PER_EVENT * len(wave),
                                        settle=_SETTLE_SECONDS)
    async with bootstrap.store(stack.settings) as store:
        await _collect(store, result, lines_of)
    return result


def arrival_waves(lines: Iterable[bytes], today: dt.date) -> list[list[tuple[int, bytes]]]:
    """The numbered lines in waves: wave k holds each subject's k-th event by recorded time.

    Ties keep the file's order. A line whose subject or recorded time cannot be read goes
    into the first wave: the gateway will say what is wrong with it. `today` reads the
    century of ten-digit identity numbers, so both ways of writing one number are one subject.
    """
    by_subject: dict[str, list[tuple[dt.datetime, int, bytes]]] = {}
    unreadable: list[tuple[int, bytes]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
            subject = _subject_key(document["subject"], today)
            recorded = dt.datetime.fromisoformat(document["recorded_time"])
            by_subject.setdefault(subject, []).append((recorded, number, line))
        except (ValueError, KeyError, TypeError):
            unreadable.append((number, line))
    waves: list[list[tuple[int, bytes]]] = [unreadable]
    for events in by_subject.values():
        try:
            events.sort(key=lambda item: (item[0], item[1]))
        except TypeError:  # times with and without an offset cannot be compared: keep the file's order
            events.sort(key=lambda item: item[1])
        for index, (_, number, line) in enumerate(events):
            if index >= len(waves):
                waves.append([])
            waves[index].append((number, line))
    return [sorted(wave) for wave in waves if wave]


def _subject_key(reference: dict[str, Any], today: dt.date) -> str:
    for kind in ("personal_identity_number", "coordination_number"):
        with contextlib.suppress(IdentityNumberError, KeyError, TypeError):
            return parse_identity_number(reference[kind], today=today).canonical
    return json.dumps(reference, sort_keys=True)


def _tally(result: BatchResult, outcome: Outcome, lines_of: dict[str, list[int]], errors: TextIO) -> None:
    line = int(outcome.source.rsplit(":", 1)[1])
    if outcome.status == "rejected":
        result.rejected.append(RejectedLine(line, outcome.event_id, tuple((e.field, e.reason) for e in outcome.errors)))
        for error in outcome.errors:
            errors.write(f"{outcome.source}: {error.field}: {error.reason}\n")
        return
    if outcome.status == "accepted":
        result.accepted += 1
    else:
        result.duplicates += 1
    assert outcome.event_id is not None
    lines_of.setdefault(outcome.event_id, []).append(line)


async def _collect(store: Store, result: BatchResult, lines_of: dict[str, list[int]]) -> None:
    """Alerts and projections of the subjects the file's events concern, nothing else of the stack."""
    events_of: dict[str, list[str]] = {}
    for ids in _chunks(sorted(lines_of)):
        for event_id, subject in await store.subjects_of_events(ids):
            events_of.setdefault(subject, []).append(event_id)
    subjects = sorted(events_of)
    for names in _chunks(subjects):
        recorded: dict[str, int] = {}
        for row in await store.projections_of(names):
            event_ids = sorted(events_of[row["subject"]])
            state = SubjectState.from_dict(row["state"])
            recorded.update((event.event_id, event.recorded_time) for event in state.events)
            result.subjects.append(BatchSubject(
                subject=row["subject"], level=row["level"], score=row["score"], region=row["region"],
                caseload=row["caseload"], assessment=row["assessment"], state=state,
                lines=tuple(sorted(line for event_id in event_ids for line in lines_of[event_id])),
                event_ids=tuple(event_ids),
            ))
        rows = await store.alerts_of(names)
        result.alerts.extend(BatchAlert(
            alert_id=row["alert_id"], subject=row["subject"], trigger=row["trigger"], priority=row["priority"],
            level_before=row["level_before"], level_after=row["level_after"], score=row["score"],
            explanation=row["explanation"], factors=row["factors"], region=row["region"], caseload=row["caseload"],
            event_time=row["event_time"], raised_at=_raised_at(row["recorded_time"], row["factors"], recorded),
            causing_event_id=row["causing"], policy_version=row["policy_version"], paged=row["paged"],
            case_id=row["case_id"],
        ) for row in rows)
    result.alerts.sort(key=lambda alert: (alert.event_time, alert.subject, alert.causing_event_id, alert.trigger))
    result.subjects.sort(key=lambda subject: (-subject.score, subject.subject))


def _raised_at(causing_recorded: int, factors: list[dict[str, Any]], recorded: dict[str, int]) -> int:
    behind = (recorded[event_id] for factor in factors for event_id in factor["event_ids"] if event_id in recorded)
    return max(causing_recorded, *behind)


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _FETCH_CHUNK):
        yield list(items[start:start + _FETCH_CHUNK])


def _iso(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else ms_to_datetime(epoch_ms).isoformat()
