"""The quarantine's in-memory twin (services/adapters/postgres/quarantine.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import fields, replace

from projections.quarantine import Quarantined, QuarantineEntry
from services.adapters.memory.stage_tables import MemoryDatabase, Tables, check_quarantined


_RECORD_FIELDS = tuple(field.name for field in fields(Quarantined))


def add_quarantined(database: MemoryDatabase, tables: Tables, rows: Sequence[Quarantined]) -> None:
    at = dt.datetime.fromtimestamp(database.clock(), tz=dt.UTC)
    for r in rows:
        tables.quarantine.append(QuarantineEntry(**{name: getattr(r, name) for name in _RECORD_FIELDS},
                                                 id=database.next_id(), quarantined_at=at, retried_at=None))


class MemoryQuarantine:
    """projections.ports.Quarantine on a MemoryDatabase."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database

    async def write(self, rows: Sequence[Quarantined]) -> None:
        check_quarantined(rows)
        add_quarantined(self.database, self.database.tables, rows)

    async def entries(self, *, include_retried: bool = False,
                      ids: Sequence[int] | None = None) -> list[QuarantineEntry]:
        wanted = set(ids) if ids is not None else None
        return [entry for entry in self.database.tables.quarantine
                if (include_retried or entry.retried_at is None) and (wanted is None or entry.id in wanted)]

    async def mark_retried(self, ids: Sequence[int]) -> None:
        at = dt.datetime.fromtimestamp(self.database.clock(), tz=dt.UTC)
        wanted = set(ids)
        self.database.tables.quarantine = [replace(entry, retried_at=at) if entry.id in wanted else entry
                                           for entry in self.database.tables.quarantine]
