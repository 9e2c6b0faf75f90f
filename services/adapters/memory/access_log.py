"""The access log in memory: rows numbered in order, newest first when read."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from services.adapters.memory.tables import MemoryTables, as_json
from services.api.ports import AccessEntry, AccessQuery, Row

ACTIONS = ("consultation", "disclosure", "alteration")


def append_access(tables: MemoryTables, entry: AccessEntry) -> dict[str, Any]:
    if entry.action not in ACTIONS:  # the table's CHECK
        raise ValueError(f"action: {entry.action!r} is not an access")
    row = {"id": tables.next_access_id(), "at": tables.clock(), "actor": entry.actor, "role": entry.role,
           "action": entry.action, "endpoint": entry.endpoint, "subjects": list(entry.subjects),
           "purpose": entry.purpose, "query": as_json(dict(entry.query))}
    tables.access_log.append(row)
    return row


class MemoryAccessLog:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    async def record(self, entry: AccessEntry) -> None:
        append_access(self.tables, entry)

    @contextlib.asynccontextmanager
    async def recorded(self, entry: AccessEntry) -> AsyncIterator[None]:
        row = append_access(self.tables, entry)
        try:
            yield
        except BaseException:
            self.tables.access_log.remove(row)
            raise

    async def read(self, query: AccessQuery, limit: int, offset: int) -> tuple[list[Row], int]:
        found = [
            row for row in self.tables.access_log
            if (query.actor is None or row["actor"] == query.actor)
            and (query.subject is None or query.subject in row["subjects"])
            and (query.since is None or row["at"] >= query.since)
            and (query.until is None or row["at"] < query.until)
        ]
        found.sort(key=lambda row: row["id"], reverse=True)
        return [dict(row) for row in found[offset:offset + limit]], len(found)
