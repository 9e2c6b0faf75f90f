"""The contract of projections.ports.Quarantine: written, listed oldest first, marked retried."""

from __future__ import annotations

import pytest

from projections.ports import StoreRefused
from projections.quarantine import Quarantined
from tests.support.contracts import StoragePorts
from tests.support.contracts.risk import TOPIC, new_id


def row(offset: int, *, stage: str = "normalize", event_id: str | None = None, key: bytes | None = b"k") -> Quarantined:
    return Quarantined(stage, TOPIC, 1, offset, key, b"record %d" % offset, event_id, "invalid_value",
                       "ValueError: bad value")


class QuarantineContract:
    async def test_records_are_listed_oldest_first_until_retried(self, port: StoragePorts) -> None:
        event_id = new_id()
        await port.quarantine.write([row(1, event_id=event_id), row(2, key=None)])
        await port.quarantine.write([row(3, stage="risk")])
        entries = await port.quarantine.entries()
        assert [(e.offset, e.stage, e.key, e.event_id) for e in entries] == [
            (1, "normalize", b"k", event_id), (2, "normalize", None, None), (3, "risk", b"k", None)]
        assert all(e.retried_at is None and e.record == b"record %d" % e.offset for e in entries)
        assert entries[0].id < entries[1].id < entries[2].id

        await port.quarantine.mark_retried([entries[0].id, entries[2].id])
        assert [e.offset for e in await port.quarantine.entries()] == [2]
        every = await port.quarantine.entries(include_retried=True)
        assert [(e.offset, e.retried_at is not None) for e in every] == [(1, True), (2, False), (3, True)]
        named = await port.quarantine.entries(ids=[entries[0].id, entries[1].id])
        assert [e.offset for e in named] == [2], "a named record already retried is not listed"
        assert [e.offset for e in await port.quarantine.entries(include_retried=True, ids=[entries[0].id])] == [1]

    async def test_nothing_written_is_nothing_listed(self, port: StoragePorts) -> None:
        await port.quarantine.write([])
        assert await port.quarantine.entries(include_retried=True) == []

    async def test_a_stage_the_quarantine_does_not_know_is_refused(self, port: StoragePorts) -> None:
        with pytest.raises(StoreRefused):
            await port.quarantine.write([row(1, stage="ingest")])
        assert await port.quarantine.entries(include_retried=True) == []
