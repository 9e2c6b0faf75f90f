"""The risk stage's twin tables (archive, states, history, alerts, cases, outbox, quarantine, tracking) as dicts
and lists, shared by the in-memory risk, outbox, quarantine and casework adapters."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.alerts import StoredAlert
from projections.ports import ArchivedEvent, BatchEffects, HistoryRow, ProjectionRow, StoreRefused
from projections.quarantine import Quarantined, QuarantineEntry


@dataclass
class MemoryCase:
    case_id: str
    subject: str
    status: str
    priority: int
    level: str
    region: str | None
    caseload: str | None
    triggers: list[str]
    alert_count: int
    explanation: str


@dataclass
class MemoryReview:
    subject: str
    level: str
    due_at: float  # epoch seconds, as the tables' other times
    overdue_at: float
    interval_hours: int
    region: str | None
    caseload: str | None
    opened_at: float
    status: str = "open"
    next_due_at: float | None = None


@dataclass
class MemoryOutboxRow:
    id: int
    topic: str
    key: str
    message: bytes
    created_at: float
    published: bool = False


@dataclass
class Tables:
    """Riskwatch's tables the risk stage, the relay, the quarantine and the scheduler use."""

    archive: dict[str, ArchivedEvent] = field(default_factory=dict)
    projections: dict[str, tuple[ProjectionRow, int]] = field(default_factory=dict)  # subject -> (row, version)
    state_events: dict[str, dict[str, tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    history: dict[tuple[str, str], HistoryRow] = field(default_factory=dict)
    alerts: dict[str, StoredAlert] = field(default_factory=dict)
    alert_case: dict[str, str] = field(default_factory=dict)  # alert id -> case id
    cases: dict[str, MemoryCase] = field(default_factory=dict)
    # (event id, case id, action, actor, note)
    case_workflow: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    outbox: list[MemoryOutboxRow] = field(default_factory=list)
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    tracking: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (cluster, topic, partition) -> offset
    backfill: set[str] = field(default_factory=set)
    reviews: list[MemoryReview] = field(default_factory=list)


class MemoryDatabase:
    """The twins' shared storage: one set of tables, a clock, and the lock units of work take."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.tables = Tables()
        self.clock = clock
        self.units = asyncio.Lock()
        self._ids = 0

    def next_id(self) -> int:
        self._ids += 1
        return self._ids


# ---- what PostgreSQL refuses, refused alike: checked before anything is written -------------

QUARANTINE_STAGES = ("normalize", "risk")  # the table's check constraint

def canonical_uuid(value: str) -> str:
    return str(uuid.UUID(value))


def check_uuids(values: Iterable[str | None]) -> None:
    for value in values:
        if value is None:
            continue
        try:
            uuid.UUID(value)
        except (ValueError, TypeError, AttributeError):
            raise StoreRefused(f'invalid input syntax for type uuid: "{value}"', reason_class="database_refused",
                               kind="InvalidTextRepresentationError") from None


def check_text(values: Iterable[Any]) -> None:
    """PostgreSQL's text and jsonb hold no NUL: refused as PostgreSQL refuses it."""
    for value in values:
        if isinstance(value, str):
            if "\x00" in value:
                raise StoreRefused("unsupported Unicode escape sequence", reason_class="text_encoding",
                                   kind="UntranslatableCharacterError", detail="\\u0000 cannot be converted to text.")
        elif isinstance(value, dict):
            check_text(value.keys())
            check_text(value.values())
        elif isinstance(value, (list, tuple)):
            check_text(value)


def check_effects(effects: BatchEffects) -> None:
    check_uuids([e.event_id for e in effects.archive] + [h.event_id for h in effects.history]
                + [a.alert_id for a in effects.alerts] + [a.causing_event_id for a in effects.alerts])
    for event in effects.archive:
        check_text([event.subject, event.source_type, event.agency, event.region])
    for row in effects.projections:
        check_text([row.subject, row.assessment, row.level, row.region, row.caseload, row.policy_version,
                     [(event_id, event) for _, event_id, event in row.state_added]])
    for history in effects.history:
        check_text([history.subject, history.level, history.explanation, history.policy_version])
    for alert in effects.alerts:
        check_text([alert.subject, alert.trigger, alert.level_before, alert.level_after, alert.explanation,
                     alert.factors, alert.region, alert.caseload, alert.policy_version, alert.topic])
    for topic, key, _ in effects.risk_changes:
        check_text([topic, key])
    check_quarantined(effects.quarantined)


def check_quarantined(rows: Sequence[Quarantined]) -> None:
    check_uuids([r.event_id for r in rows])
    for r in rows:
        if r.stage not in QUARANTINE_STAGES:
            raise StoreRefused(f'new row for relation "quarantine" violates check constraint: stage {r.stage!r}',
                               reason_class="database_refused", kind="CheckViolationError")
    for r in rows:
        check_text([r.stage, r.topic, r.reason_class, r.reason])
