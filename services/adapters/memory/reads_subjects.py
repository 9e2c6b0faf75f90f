"""The query API's reads of subjects, watch lists and the streams' state, in memory."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from services.adapters.memory.tables import MemoryTables
from services.api.ports import Row

LAST_HOUR = dt.timedelta(hours=1)


class MemorySubjectReads:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    async def projection(self, subject: str) -> Row | None:
        found = self.tables.projections.get(subject)
        return None if found is None else dict(found)

    async def history(self, subject: str, limit: int) -> list[Row]:
        points = sorted((p for p in self.tables.history if p["subject"] == subject),
                        key=lambda p: (p["event_time"], p["event_id"]), reverse=True)
        return [{name: p[name] for name in ("event_id", "event_time", "level", "score", "explanation")}
                for p in points[:limit]]

    async def archived_events(self, event_ids: Sequence[str]) -> list[Row]:
        found = sorted((self.tables.archive[e] for e in set(event_ids) if e in self.tables.archive),
                       key=lambda e: (e["event_time"], e["event_id"]))
        return [{name: e[name] for name in ("event_id", "source_type", "agency", "event_time")} for e in found]

    async def identity(self, subject: str) -> Row | None:
        found = self.tables.identities.get(subject)
        return None if found is None else dict(found)


class MemoryWatchReads:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    async def watch_events(self, source_types: Sequence[str], start: dt.datetime, end: dt.datetime,
                           caseloads: Sequence[str] | None) -> list[Row]:
        found = []
        for event in self.tables.archive.values():
            projection = self.tables.projections.get(event["subject"])
            if (projection is None or event["source_type"] not in source_types
                    or not start <= event["event_time"] < end
                    or (caseloads is not None and projection["caseload"] not in caseloads)):
                continue
            found.append({"event_id": event["event_id"], "subject": event["subject"],
                          "source_type": event["source_type"], "event_time": event["event_time"],
                          "body": event["body"], "level": projection["level"], "score": projection["score"],
                          "caseload": projection["caseload"]})
        return sorted(found, key=lambda e: (e["event_time"], e["event_id"]))

    async def priority(self, region: str | None, limit: int, offset: int) -> tuple[list[Row], int]:
        found = sorted((p for p in self.tables.projections.values() if p["region"] == region),
                       key=lambda p: (-p["score"], p["subject"]))
        return [{"subject": p["subject"], "level": p["level"], "score": p["score"], "caseload": p["caseload"],
                 "assessed_at": p["assessed_at"], "components": p["assessment"].get("components"),
                 "overridden": p["assessment"].get("override") is not None}
                for p in found[offset:offset + limit]], len(found)


class MemoryStreamStatusReads:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    async def alert_latency(self) -> Row:
        now = self.tables.clock()
        seconds = sorted(
            max(0.0, (alert["created_at"] - self.tables.accepted[alert["causing_event_id"]]).total_seconds())
            for alert in self.tables.alerts.values()
            if alert["created_at"] > now - LAST_HOUR and alert["escalated_from"] is None
            and alert["causing_event_id"] in self.tables.accepted
        )
        return {"alerts": len(seconds), "p50_seconds": _percentile(seconds, 0.5),
                "p95_seconds": _percentile(seconds, 0.95), "max_seconds": seconds[-1] if seconds else None}

    async def backlogs(self) -> Row:
        now = self.tables.clock()
        statuses = [alert["status"] for alert in self.tables.alerts.values()]
        return {"outbox_backlog": len(self.tables.outbox),  # no relay publishes here
                "dead_letters": len(self.tables.dead_letters),
                "dead_letters_last_hour": sum(1 for at in self.tables.dead_letters if at > now - LAST_HOUR),
                "unacknowledged_alerts": statuses.count("open"), "escalated_alerts": statuses.count("escalated")}


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """As percentile_cont: linear between the two nearest of the ordered values."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
