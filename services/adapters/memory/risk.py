"""The risk store's in-memory twin: the tables as dicts, a unit of work as a journal applied at commit.

Same semantics as services/adapters/postgres/risk.py, checked by tests/support/contracts/risk.py:
units of work are serialised (the PostgreSQL adapter serialises those sharing a partition); a
unit reads its own writes; nothing of it is visible before its commit, nor anything after a
failed one; archive rows and history rows already stored are skipped; alerts are stored once
(by id), and only new ones reach the outbox and the cases; a value PostgreSQL would refuse (NUL
in text, an event id that is no UUID) is refused with StoreRefused, before anything is written.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from projections.ports import BatchEffects, Partition, StateHead
from services.adapters.memory.casework import attach_to_cases
from services.adapters.memory.quarantine import add_quarantined
from services.adapters.memory.stage_tables import (MemoryDatabase, MemoryOutboxRow, Tables, canonical_uuid,
                                                   check_effects,
                                             check_text, check_uuids)


class MemoryRiskStore:
    """projections.ports.RiskStore and ArchiveReader on a MemoryDatabase."""

    def __init__(self, database: MemoryDatabase | None = None) -> None:
        self.database = database or MemoryDatabase()

    @asynccontextmanager
    async def batch(self, cluster_id: str,
                    offsets: Mapping[Partition, Sequence[int]]) -> AsyncIterator[MemoryRiskUnit]:
        async with self.database.units:
            tables = self.database.tables
            tracked = {tp: tables.tracking.get((cluster_id, *tp), -1) for tp in offsets}
            fresh = {tp: [o for o in offs if o > tracked[tp]] for tp, offs in offsets.items()}
            yield MemoryRiskUnit(self.database, cluster_id, list(offsets), fresh)

    async def applied_positions(self, cluster_id: str, partitions: Sequence[Partition]) -> dict[Partition, int]:
        tracking = self.database.tables.tracking
        return {tp: tracking[(cluster_id, *tp)] + 1 for tp in partitions if tracking.get((cluster_id, *tp), -1) >= 0}

    async def projection_assessments(self) -> list[tuple[str, dict[str, Any]]]:
        projections = self.database.tables.projections
        return [(subject, copy.deepcopy(projections[subject][0].assessment)) for subject in sorted(projections)]

    async def archived_bodies(self, prefetch: int = 20_000) -> AsyncIterator[tuple[str, bytes]]:
        rows = sorted(self.database.tables.archive.values(), key=lambda e: (e.subject, e.event_time, e.event_id))
        for row in rows:
            yield row.subject, row.body


class MemoryRiskUnit:
    """projections.ports.RiskUnit: reads and writes on a copy of the tables; the writes replayed at commit."""

    def __init__(self, database: MemoryDatabase, cluster_id: str, partitions: list[Partition],
                 fresh: dict[Partition, list[int]]) -> None:
        self.database = database
        self.cluster_id = cluster_id
        self.partitions = partitions
        self._fresh = fresh
        self.staged = copy.deepcopy(database.tables)
        self.journal: list[BatchEffects] = []
        self.committed = False
        self.broken = False

    @property
    def fresh(self) -> dict[Partition, list[int]]:
        return self._fresh

    async def archived(self, event_ids: Sequence[str]) -> set[str]:
        self._usable()
        check_uuids(event_ids)
        return {event_id for event_id in event_ids if canonical_uuid(event_id) in self.staged.archive}

    async def backfilled(self, event_ids: Sequence[str]) -> set[str]:
        self._usable()
        check_uuids(event_ids)
        return {event_id for event_id in event_ids if canonical_uuid(event_id) in self.staged.backfill}

    async def lock_states(self, subjects: Sequence[str]) -> dict[str, StateHead]:
        self._usable()
        check_text(subjects)
        stored = self.staged.projections
        found = {subject: stored[subject] for subject in subjects if subject in stored}
        return {subject: StateHead(version, row.assessed_at) for subject, (row, version) in sorted(found.items())}

    async def state_events(self, subjects: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        self._usable()
        check_text(subjects)
        return {subject: [copy.deepcopy(event) for _, event in self.staged.state_events[subject].values()]
                for subject in subjects if self.staged.state_events.get(subject)}

    @asynccontextmanager
    async def part(self) -> AsyncIterator[None]:
        self._usable()
        staged, journal = copy.deepcopy(self.staged), len(self.journal)
        try:
            yield
        except BaseException:
            self.staged, self.broken = staged, False
            del self.journal[journal:]
            raise

    async def write(self, effects: BatchEffects) -> set[str]:
        self._usable()
        try:
            new = apply_effects(self.database, self.staged, effects)
        except BaseException:
            self.broken = True  # as a failed statement aborts a PostgreSQL transaction (a part restores it)
            raise
        self.journal.append(copy.deepcopy(effects))
        return new

    async def commit(self, effects: BatchEffects) -> set[str]:
        new = await self.write(effects)
        tables = self.database.tables
        for entry in self.journal:  # checked on the copy already: applying them cannot fail
            apply_effects(self.database, tables, entry)
        for tp in self.partitions:
            tables.tracking.setdefault((self.cluster_id, *tp), -1)
        for tp, offset in effects.offsets.items():
            key = (self.cluster_id, *tp)
            if key in tables.tracking:
                tables.tracking[key] = max(tables.tracking[key], offset)
        self.committed = True
        return new

    def _usable(self) -> None:
        if self.committed:
            raise RuntimeError("the unit of work was committed already")
        if self.broken:
            raise RuntimeError("a write of this unit failed: leave the block")


def apply_effects(database: MemoryDatabase, tables: Tables, effects: BatchEffects) -> set[str]:
    """Write `effects` into `tables`, after checking every value as PostgreSQL would; the new alert ids."""
    check_effects(effects)
    now = database.clock()
    add_quarantined(database, tables, effects.quarantined)
    for archived in effects.archive:
        tables.archive.setdefault(canonical_uuid(archived.event_id), archived)
    for row in effects.projections:
        kept = tables.projections.get(row.subject)
        tables.projections[row.subject] = (row, kept[1] + 1 if kept else 1)
        events = tables.state_events.setdefault(row.subject, {})
        if row.state_from is not None:
            for event_id in [i for i, (t, _) in events.items() if t < row.state_from]:
                del events[event_id]
        for event_time, event_id, compact in row.state_added:
            events.setdefault(event_id, (event_time, copy.deepcopy(compact)))
    for history in effects.history:
        tables.history.setdefault((history.subject, canonical_uuid(history.event_id)), history)
    new_alerts = []
    for alert in effects.alerts:
        if canonical_uuid(alert.alert_id) not in tables.alerts:
            tables.alerts[canonical_uuid(alert.alert_id)] = alert
            new_alerts.append(alert)
    attach_to_cases(tables, [alert for alert in new_alerts if alert.paged])
    for topic, key, message in list(effects.risk_changes) + [(a.topic, a.subject, a.message) for a in new_alerts]:
        tables.outbox.append(MemoryOutboxRow(database.next_id(), topic, key, message, now))
    return {alert.alert_id for alert in new_alerts}
