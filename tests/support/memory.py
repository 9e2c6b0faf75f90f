"""The in-memory twins over one MemoryDatabase, as the contract suites and the processor tests use them."""

from __future__ import annotations

from collections.abc import Sequence

from services.adapters.memory.casework import MemoryReviews, record_backfill
from services.adapters.memory.outbox import MemoryOutbox
from services.adapters.memory.quarantine import MemoryQuarantine
from services.adapters.memory.risk import MemoryRiskStore
from services.adapters.memory.stage_tables import MemoryDatabase
from tests.support.contracts import CaseView, StoragePorts


def memory_ports(database: MemoryDatabase | None = None) -> StoragePorts:
    database = database or MemoryDatabase()

    async def mark_backfilled(event_ids: Sequence[str]) -> None:
        record_backfill(database, event_ids)

    async def cases() -> list[CaseView]:
        tables = database.tables
        return sorted((CaseView(c.case_id, c.subject, c.status, c.priority, c.level, sorted(c.triggers), c.alert_count,
                                sorted(a for a, target in tables.alert_case.items() if target == c.case_id),
                                sum(1 for _, case, action, *_ in tables.case_workflow
                                    if case == c.case_id and action == "reopened"))
                       for c in tables.cases.values()), key=lambda view: view.subject)

    async def acknowledge(case_id: str) -> None:
        database.tables.cases[case_id].status = "acknowledged"

    risk = MemoryRiskStore(database)
    return StoragePorts(risk, MemoryOutbox(database), MemoryQuarantine(database), MemoryReviews(database),
                        mark_backfilled, archive=risk, cases=cases, acknowledge=acknowledge)
