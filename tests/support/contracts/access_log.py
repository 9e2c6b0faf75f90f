"""The contract of the access log (services/api/ports.py AccessLog)."""

from __future__ import annotations

import uuid

import pytest

from services.api.ports import AccessEntry, AccessQuery
from tests.support.contracts.world import World, now, subject


class Undone(Exception):
    pass


def entry(actor: str, subjects: tuple[str, ...] = (), **values: object) -> AccessEntry:
    fields: dict[str, object] = {"actor": actor, "role": "intelligence_analyst", "action": "consultation",
                                 "endpoint": "GET /v1/cases", "subjects": subjects, "purpose": "case triage",
                                 "query": {}, **values}
    return AccessEntry(**fields)  # type: ignore[arg-type]


class AccessLogContract:
    async def test_rows_read_back_newest_first(self, port: World) -> None:
        actor = f"ann-{uuid.uuid4().hex[:8]}"
        person = subject()
        log = port.ports.access_log
        await log.record(entry(actor, (person,), query={"status": "open", "limit": 5}))
        await log.record(entry(actor, (), action="disclosure", purpose="court order"))
        rows, total = await log.read(AccessQuery(actor=actor), 10, 0)
        assert total == 2
        assert [r["action"] for r in rows] == ["disclosure", "consultation"] and rows[0]["id"] > rows[1]["id"]
        assert set(rows[1]) == {"id", "at", "actor", "role", "action", "endpoint", "subjects", "purpose", "query"}
        assert rows[1]["subjects"] == [person] and rows[1]["query"] == {"status": "open", "limit": 5}
        assert rows[1]["role"] == "intelligence_analyst" and rows[1]["endpoint"] == "GET /v1/cases"

    async def test_the_filters_and_the_pages(self, port: World) -> None:
        actor, other = f"ann-{uuid.uuid4().hex[:8]}", f"bo-{uuid.uuid4().hex[:8]}"
        person = subject()
        log = port.ports.access_log
        before = now()
        for number in range(3):
            await log.record(entry(actor, (person,) if number == 1 else (), purpose=f"p{number}"))
        await log.record(entry(other, (person,)))
        assert [r["purpose"] for r in (await log.read(AccessQuery(actor=actor), 10, 0))[0]] == ["p2", "p1", "p0"]
        rows, total = await log.read(AccessQuery(subject=person), 10, 0)
        assert total == 2 and {r["actor"] for r in rows} == {actor, other}
        rows, total = await log.read(AccessQuery(actor=actor), 1, 1)
        assert total == 3 and [r["purpose"] for r in rows] == ["p1"]
        assert (await log.read(AccessQuery(actor=actor, since=before), 10, 0))[1] == 3
        assert (await log.read(AccessQuery(actor=actor, until=before), 10, 0))[1] == 0

    async def test_a_row_kept_only_if_its_block_ends_normally(self, port: World) -> None:
        actor = f"ann-{uuid.uuid4().hex[:8]}"
        log = port.ports.access_log
        async with log.recorded(entry(actor, purpose="kept")):
            pass
        with pytest.raises(Undone):
            async with log.recorded(entry(actor, purpose="undone")):
                raise Undone
        rows, total = await log.read(AccessQuery(actor=actor), 10, 0)
        assert total == 1 and rows[0]["purpose"] == "kept"
