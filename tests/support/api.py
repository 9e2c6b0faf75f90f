"""Helpers for the query API tests: users with tokens, ingesting a story, reading the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.adapters.postgres.directory import PostgresClientDirectory, PostgresUserDirectory
from services.adapters.postgres.pool import create_pool
from services.api.auth import Role, add_client, add_user
from schemas.identity import parse_identity_number, pseudonym
from services.runtime.state import pseudonym_key
from services.runtime.stack import Stack
from streams.kafka import client_options
from tests.support.scenario import at, event, jsonl, new_person


@asynccontextmanager
async def database(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    assert stack.settings.database_url
    pool = await create_pool(stack.settings.database_url, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def user(stack: Stack, role: Role, scope: Iterable[str] = (), *, supervisor: bool = False) -> str:
    """A new user with a unique name; returns its bearer token."""
    async with database(stack) as pool:
        return await add_user(PostgresUserDirectory(pool), f"{role.value}-{uuid.uuid4().hex[:8]}", role, scope,
                              supervisor=supervisor)


def client(stack: Stack, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(base_url=stack.api_url, timeout=30, headers=headers)


_client_tokens: dict[tuple[int, str, frozenset[str]], str] = {}


async def agency_token(stack: Stack, agency: str, units: Iterable[str]) -> str:
    """The token of an agency client of this agency and units (one client per combination)."""
    key = (id(stack), agency, frozenset(units))
    if key not in _client_tokens:
        async with database(stack) as pool:
            _client_tokens[key] = await add_client(PostgresClientDirectory(pool), f"{agency}-{uuid.uuid4().hex[:8]}",
                                                   agency, key[2])
    return _client_tokens[key]


async def sender_headers(stack: Stack, *documents: Mapping[str, Any]) -> dict[str, str]:
    """Authorization of a client that may send these documents (of one agency); police for unreadable ones."""
    agencies = {str(d.get("agency") or "police") for d in documents} or {"police"}
    assert len(agencies) == 1, "one agency client sends one agency's events"
    units = {str(d.get("unit") or "Polisen Region Stockholm") for d in documents} or {"Polisen Region Stockholm"}
    return {"Authorization": f"Bearer {await agency_token(stack, agencies.pop(), units)}"}


async def post_documents(stack: Stack, *documents: dict[str, Any]) -> None:
    """Post the events, each run of one agency's by a client of that agency; all must be accepted."""
    async with client(stack) as http:
        for _, run in itertools.groupby(documents, key=lambda d: d["agency"]):
            sent = list(run)
            response = await http.post("/v1/events", content=jsonl(*sent), headers={
                "content-type": "application/x-ndjson", **await sender_headers(stack, *sent)})
            assert response.status_code == 202, response.text


async def ingest(stack: Stack, *documents: dict[str, Any]) -> None:
    """Post the events and wait until every one is folded into the projections."""
    await post_documents(stack, *documents)
    await stack.wait_until_idle()


def alias(stack: Stack, number: str) -> str:
    return pseudonym(parse_identity_number(number, today=dt.date(2026, 11, 1)), pseudonym_key(stack.settings))


async def access_rows(stack: Stack, after_id: int) -> list[asyncpg.Record]:
    async with database(stack) as pool:
        rows: list[asyncpg.Record] = await pool.fetch("SELECT * FROM access_log WHERE id > $1 ORDER BY id", after_id)
    return rows


async def last_access_id(stack: Stack) -> int:
    async with database(stack) as pool:
        return int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM access_log"))


def unique_unit() -> str:
    return f"Kriminalvården Frivård Test {uuid.uuid4().hex[:6]}"


@dataclass
class Story:
    """A high-risk subject in Stockholm, released from custody in a caseload of its own."""

    person: str  # the clear identity number
    subject: str  # its pseudonym
    caseload: str
    release_alert: str  # the release_at_high alert for the caseload


async def released_high_risk_subject(stack: Stack) -> Story:
    person, victim, caseload = new_person(), new_person(), unique_unit()
    await ingest(
        stack,
        event("social_services.separation_reported", person, at(0), {"imminent": True}, victims=[victim],
              unit="Socialtjänsten Södermalm"),
        event("police.crime_report", person, at(3), {"offence": "aggravated_assault", "strangulation": True,
                                                     "threat_to_kill": True}, victims=[victim]),
        event("prison_probation.custody_started", person, at(5), {"facility": "Anstalten Hall"}, unit=caseload),
        event("prison_probation.released", person, at(40), {"release_kind": "conditional"}, unit=caseload),
    )
    subject = alias(stack, person)
    async with database(stack) as pool:
        alert_id = await pool.fetchval(
            "SELECT alert_id::text FROM alert WHERE subject = $1 AND trigger = 'release_at_high'", subject)
    assert alert_id, "the story raises a release alert for the caseload"
    return Story(person, subject, caseload, alert_id)


async def read_topic(stack: Stack, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic, read outside any consumer group."""
    consumer = AIOKafkaConsumer(**client_options(stack.settings), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(stack.settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            for tp, batch in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                records.extend(batch)
                if batch[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


@dataclass
class ServerSentEvent:
    id: str | None
    event: str | None
    data: dict[str, Any]


async def next_event(lines: AsyncIterator[str], timeout: float = 15.0) -> ServerSentEvent:
    """The next event of an SSE stream; comments (keep-alives) are skipped."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        async for line in lines:
            if line.startswith(":"):
                continue
            if line == "":
                if "data" in fields:
                    return ServerSentEvent(fields.get("id"), fields.get("event"), json.loads(fields["data"]))
                fields = {}
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    raise EOFError("the stream ended")


async def comment(lines: AsyncIterator[str], timeout: float = 15.0) -> str:
    """The next comment line of an SSE stream (the feed opens with one saying where it starts)."""
    async with asyncio.timeout(timeout):
        async for line in lines:
            if line.startswith(":"):
                return line[1:].strip()
    raise EOFError("the stream ended")
