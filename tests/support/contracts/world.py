"""What a contract test gets as its `port` fixture: the query API's ports and a way to seed the rows
the risk stage writes (alerts, cases, reviews), on the in-memory twin or on a PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from services.adapters.postgres.pool import create_pool, migrate
from schemas.codec import decode_published
from services.adapters.memory.reads import memory_query_ports
from services.adapters.memory.tables import MemoryTables
from services.adapters.postgres.reads import query_ports
from services.adapters.postgres.workflow import ALERT_COLUMNS, CASE_COLUMNS
from services.api.ports import QueryPorts, Row


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ago(**span: float) -> dt.datetime:
    return now() - dt.timedelta(**span)


def subject() -> str:
    return "ps_" + uuid.uuid4().hex


def unit_name() -> str:
    return f"Frivård Test {uuid.uuid4().hex[:8]}"


class Seeder(Protocol):
    async def alert(self, **values: Any) -> Row: ...

    async def case(self, **values: Any) -> Row: ...

    async def case_step(self, case_id: str, action: str, actor: str, at: dt.datetime) -> None: ...

    async def review(self, **values: Any) -> Row: ...

    async def outbox(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        """The messages queued under this key (a subject), in order."""
        ...

    async def projection(self, subject: str, **values: Any) -> None: ...

    async def history_point(self, subject: str, event_id: str, **values: Any) -> None: ...

    async def archived_event(self, event_id: str, subject: str, source_type: str, **values: Any) -> None: ...

    async def identity(self, pseudonym: str, identity_number: str, kind: str) -> None: ...

    async def accepted(self, event_id: str, at: dt.datetime) -> None:
        """The gateway accepted this event at that time."""
        ...

    async def dead_letter(self, at: dt.datetime) -> None: ...


@dataclass
class World:
    ports: QueryPorts
    seed: Seeder


def _alert(values: dict[str, Any]) -> dict[str, Any]:
    moment = now()
    return {"alert_id": str(uuid.uuid4()), "subject": subject(), "trigger": "level_crossed", "priority": 2,
            "status": "open", "level_before": "moderate", "level_after": "high", "score": 10.0,
            "explanation": "an alert", "region": "stockholm",
            "factors": [{"factor": "gravity", "value": 1.5, "event_ids": ["e-1"], "agencies": ["police"]}],
            "caseload": None, "event_time": moment, "created_at": moment, "causing_event_id": str(uuid.uuid4()),
            "policy_version": "test", "assignee": None, "for_supervisor": False, "escalated_from": None,
            "status_changed_at": None, "paged": True, "case_id": None, **values}


def _case(values: dict[str, Any]) -> dict[str, Any]:
    moment = now()
    return {"case_id": str(uuid.uuid4()), "subject": subject(), "status": "open", "priority": 2, "level": "high",
            "region": "stockholm", "caseload": None, "triggers": ["level_crossed"], "alert_count": 1,
            "explanation": "a case", "assignee": None, "opened_at": moment, "updated_at": moment,
            "escalated": False, **values}


def _review(values: dict[str, Any]) -> dict[str, Any]:
    moment = now()
    return {"review_id": str(uuid.uuid4()), "subject": subject(), "level": "high", "due_at": moment,
            "overdue_at": moment + dt.timedelta(days=1), "interval_hours": 720, "region": "stockholm",
            "caseload": None, "opened_at": moment, "status": "open", "completed_at": None, "reviewer": None,
            "decision": None, "next_due_at": None, **values}


class MemorySeeder:
    def __init__(self, tables: MemoryTables) -> None:
        self.tables = tables

    async def alert(self, **values: Any) -> Row:
        return self.tables.add_alert(**_alert(values))

    async def case(self, **values: Any) -> Row:
        return self.tables.add_case(**_case(values))

    async def case_step(self, case_id: str, action: str, actor: str, at: dt.datetime) -> None:
        self.tables.add_case_step(case_id, action, actor, at=at)

    async def review(self, **values: Any) -> Row:
        added = self.tables.add_review(**_review(values))
        return self.tables.review_view(self.tables.reviews[added["review_id"]], now())

    async def outbox(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        return [(topic, message) for topic, message_key, message in self.tables.outbox if message_key == key]


    async def projection(self, subject: str, **values: Any) -> None:
        self.tables.add_projection(subject, **_projection(values))

    async def history_point(self, subject: str, event_id: str, **values: Any) -> None:
        self.tables.add_history_point(subject, event_id, **_history(values))

    async def archived_event(self, event_id: str, subject: str, source_type: str, **values: Any) -> None:
        self.tables.add_archived_event(event_id, subject, source_type, **_archived(values))

    async def identity(self, pseudonym: str, identity_number: str, kind: str) -> None:
        self.tables.add_identity(pseudonym, identity_number, kind)

    async def accepted(self, event_id: str, at: dt.datetime) -> None:
        self.tables.accepted[event_id] = at

    async def dead_letter(self, at: dt.datetime) -> None:
        self.tables.dead_letters.append(at)


def _projection(values: dict[str, Any]) -> dict[str, Any]:
    return {"assessment": {"components": {"recency": 1.0}, "override": None}, "level": "high", "score": 10.0,
            "region": "stockholm", "caseload": None, "policy_version": "test", "assessed_at": now(),
            "next_review_at": None, **values}


def _history(values: dict[str, Any]) -> dict[str, Any]:
    return {"event_time": now(), "level": "high", "score": 10.0, "explanation": "a point", **values}


def _archived(values: dict[str, Any]) -> dict[str, Any]:
    return {"agency": "police", "region": "stockholm", "event_time": now(), "body": b"\x00", **values}


def memory_world() -> World:
    tables = MemoryTables()
    return World(memory_query_ports(tables), MemorySeeder(tables))


class PostgresSeeder:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def _insert(self, table: str, values: dict[str, Any], returning: str) -> Row:
        names = list(values)
        placeholders = ", ".join(f"${index}" for index in range(1, len(names) + 1))
        record = await self.pool.fetchrow(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders}) RETURNING {returning}",
            *values.values())
        assert record is not None
        return dict(record)

    async def alert(self, **values: Any) -> Row:
        return await self._insert("alert", _alert(values), ALERT_COLUMNS)

    async def case(self, **values: Any) -> Row:
        return await self._insert("alert_case", _case(values), CASE_COLUMNS)

    async def case_step(self, case_id: str, action: str, actor: str, at: dt.datetime) -> None:
        await self.pool.execute("INSERT INTO case_workflow (event_id, case_id, action, actor, at) "
                                "VALUES ($1, $2, $3, $4, $5)", str(uuid.uuid4()), case_id, action, actor, at)

    async def review(self, **values: Any) -> Row:
        return await self._insert("review", _review(values), """review_id::text AS review_id, subject, level, due_at,
            overdue_at <= now() AS overdue, region, caseload, opened_at, status, completed_at, reviewer, decision,
            next_due_at""")

    async def outbox(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch("SELECT topic, message FROM outbox WHERE message_key = $1 ORDER BY id", key)
        return [(row["topic"], decode_published(row["topic"], row["message"])) for row in rows]


    async def projection(self, subject: str, **values: Any) -> None:
        await self._insert("subject_projection", {"subject": subject, **_projection(values)}, "subject")

    async def history_point(self, subject: str, event_id: str, **values: Any) -> None:
        await self._insert("risk_history", {"subject": subject, "event_id": event_id, "policy_version": "test",
                                            **_history(values)}, "subject")

    async def archived_event(self, event_id: str, subject: str, source_type: str, **values: Any) -> None:
        archived = _archived(values)
        await self._insert("event_archive", {"event_id": event_id, "subject": subject, "source_type": source_type,
                                             "recorded_time": archived["event_time"], **archived}, "event_id")

    async def identity(self, pseudonym: str, identity_number: str, kind: str) -> None:
        await self._insert("subject_identity", {"pseudonym": pseudonym, "identity_number": identity_number,
                                                "kind": kind}, "pseudonym")

    async def accepted(self, event_id: str, at: dt.datetime) -> None:
        await self._insert("ingested_event", {"event_id": event_id, "event_type": "police.crime_report",
                                              "cluster_id": "test", "content_hash": b"\x00", "accepted_at": at},
                           "event_id")

    async def dead_letter(self, at: dt.datetime) -> None:
        await self._insert("dead_letter", {"received_at": at, "source": "test", "reason": "test",
                                           "original": b"\x00"}, "id")


@asynccontextmanager
async def template_database(database_url: str) -> AsyncIterator[str]:
    """A database migrated once, to copy for each test; dropped at the end."""
    name = f"contract_template_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        pool = await create_pool(_with_database(database_url, name), max_size=1)
        try:
            await migrate(pool)
        finally:
            await pool.close()
        yield name
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@asynccontextmanager
async def postgres_world(database_url: str, template: str) -> AsyncIterator[World]:
    """A fresh database copied from the template, with the PostgreSQL adapters on it."""
    name = f"contract_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        pool = await create_pool(_with_database(database_url, name), max_size=4)
        try:
            yield World(query_ports(pool), PostgresSeeder(pool))
        finally:
            await pool.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def _with_database(database_url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(database_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
