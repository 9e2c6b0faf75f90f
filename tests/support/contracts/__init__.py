"""Contract suites: one abstract test class per port, subclassed for the in-memory twin (tests/unit)
and for the real adapter (tests/integration); both must pass the same tests.

Each subclass provides the `port` fixture; for the risk stage's ports a `StoragePorts` over empty storage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from projections.ports import ArchiveReader, Outbox, Quarantine, Reviews, RiskStore


class CaseView(NamedTuple):
    """A case as a test observes it (cases are read by the API, not through these ports)."""

    case_id: str
    subject: str
    status: str
    priority: int
    level: str
    triggers: list[str]
    alert_count: int
    alert_ids: list[str]  # sorted
    reopened: int  # case_workflow 'reopened' steps


@dataclass(frozen=True)
class StoragePorts:
    """The ports of one storage, and the test's own hands on it: marking events as backfilled (the
    gateway's part), reading cases and acknowledging one (the API's part)."""

    risk: RiskStore
    outbox: Outbox
    quarantine: Quarantine
    reviews: Reviews
    mark_backfilled: Callable[[Sequence[str]], Awaitable[None]]
    archive: ArchiveReader
    cases: Callable[[], Awaitable[list[CaseView]]]
    acknowledge: Callable[[str], Awaitable[None]]
