"""The contract of projections.ports.RiskStore: the risk batch's unit of work."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from projections.alerts import StoredAlert
from projections.ports import ArchivedEvent, BatchEffects, HistoryRow, ProjectionRow, StoreRefused
from projections.quarantine import Quarantined
from tests.support.contracts import StoragePorts

TOPIC = "subject-events.v1"
DAY = 86_400_000
T0 = 1_772_323_200_000  # 2026-03-01


def new_subject() -> str:
    return "ps_" + uuid.uuid4().hex


def new_id() -> str:
    return str(uuid.uuid4())


def archived(subject: str, event_id: str, at: int = T0, *, body: bytes = b"avro") -> ArchivedEvent:
    return ArchivedEvent(event_id, subject, "police.crime_report", "police", "stockholm", at, at + 1000, body)


def state_row(subject: str, added: list[tuple[int, str, dict[str, Any]]], *, at: int = T0, level: str = "high",
              next_review_at: int | None = None, state_from: int | None = None,
              region: str | None = "stockholm") -> ProjectionRow:
    return ProjectionRow(subject=subject, state_added=added, state_from=state_from,
                         assessment={"level": level, "at": at}, level=level, score=3.5, region=region,
                         caseload=None, policy_version="2026.1", assessed_at=at, next_review_at=next_review_at)


def history(subject: str, event_id: str, at: int = T0) -> HistoryRow:
    return HistoryRow(subject, event_id, at, "high", 3.5, "a crime report", "2026.1")


def alert(subject: str, causing_event_id: str, *, paged: bool = True, priority: int = 2) -> StoredAlert:
    alert_id = new_id()
    return StoredAlert(alert_id=alert_id, subject=subject, trigger="escalation", priority=priority,
                       level_before="moderate", level_after="high", score=3.5, explanation="escalated",
                       factors=[{"factor": "violence", "weight": 1.0}], region="stockholm", caseload=None,
                       event_time=T0, causing_event_id=causing_event_id, policy_version="2026.1",
                       topic="alerts.v1", message=f'{{"alert_id": "{alert_id}"}}'.encode(), paged=paged)


def one_event(subject: str, event_id: str, offset: int, at: int = T0) -> BatchEffects:
    """The effects of one event: archived, its subject's state row, a history row, a risk change."""
    return BatchEffects(
        archive=[archived(subject, event_id, at)],
        projections=[state_row(subject, [(at, event_id, {"event_id": event_id, "t": at})], at=at)],
        history=[history(subject, event_id, at)],
        risk_changes=[("risk-changes.v1", subject, b'{"level": "high"}')],
        offsets={(TOPIC, 0): offset},
    )


def quarantined(offset: int, reason: str = "invalid_value", *, event_id: str | None = None) -> Quarantined:
    return Quarantined("risk", TOPIC, 0, offset, b"key", b"record", event_id, reason, "ValueError: bad")


class RiskStoreContract:
    """Subclasses provide `port`: StoragePorts over empty storage."""

    async def test_a_committed_batch_is_visible_with_its_offsets(self, port: StoragePorts) -> None:
        subject, event_id = new_subject(), new_id()
        cluster = new_id()
        async with port.risk.batch(cluster, {(TOPIC, 0): [5, 6]}) as unit:
            assert unit.fresh == {(TOPIC, 0): [5, 6]}
            await unit.commit(one_event(subject, event_id, 6))
        assert await port.risk.applied_positions(cluster, [(TOPIC, 0), (TOPIC, 1)]) == {(TOPIC, 0): 7}
        async with port.risk.batch(cluster, {(TOPIC, 0): [6, 7]}) as unit:
            assert unit.fresh == {(TOPIC, 0): [7]}, "offsets applied are not fresh again"
            assert await unit.archived([event_id, new_id()]) == {event_id}
            heads = await unit.lock_states([subject, new_subject()])
            assert list(heads) == [subject] and heads[subject].version == 1 and heads[subject].assessed_at == T0
            assert await unit.state_events([subject]) == {subject: [{"event_id": event_id, "t": T0}]}
        assert [s for s, _ in await port.archive.projection_assessments()] == [subject]
        assert [b async for b in port.archive.archived_bodies()] == [(subject, b"avro")]

    async def test_offsets_are_tracked_per_cluster_and_never_go_back(self, port: StoragePorts) -> None:
        cluster, other = new_id(), new_id()
        async with port.risk.batch(cluster, {(TOPIC, 0): [9]}) as unit:
            await unit.commit(BatchEffects(offsets={(TOPIC, 0): 9}))
        async with port.risk.batch(cluster, {(TOPIC, 0): [3]}) as unit:
            assert unit.fresh == {(TOPIC, 0): []}
            await unit.commit(BatchEffects(offsets={(TOPIC, 0): 3}))
        assert await port.risk.applied_positions(cluster, [(TOPIC, 0)]) == {(TOPIC, 0): 10}
        assert await port.risk.applied_positions(other, [(TOPIC, 0)]) == {}
        async with port.risk.batch(other, {(TOPIC, 0): [3]}) as unit:
            assert unit.fresh == {(TOPIC, 0): [3]}, "another cluster's offsets are its own"

    async def test_a_unit_left_without_commit_leaves_nothing(self, port: StoragePorts) -> None:
        subject, event_id, cluster = new_subject(), new_id(), new_id()
        async with port.risk.batch(cluster, {(TOPIC, 0): [1]}) as unit:
            await unit.write(one_event(subject, event_id, 1))
            assert await unit.archived([event_id]) == {event_id}, "a unit reads its own writes"
        with pytest.raises(RuntimeError, match="gone"):
            async with port.risk.batch(cluster, {(TOPIC, 0): [1]}) as unit:
                await unit.write(one_event(subject, event_id, 1))
                raise RuntimeError("gone")
        async with port.risk.batch(cluster, {(TOPIC, 0): [1]}) as unit:
            assert unit.fresh == {(TOPIC, 0): [1]}
            assert await unit.archived([event_id]) == set()
            assert await unit.lock_states([subject]) == {}
        assert await port.risk.applied_positions(cluster, [(TOPIC, 0)]) == {}
        assert (await port.outbox.backlog()).messages == 0

    async def test_a_refused_commit_leaves_nothing_not_even_earlier_writes(self, port: StoragePorts) -> None:
        subject, event_id, cluster = new_subject(), new_id(), new_id()
        poisoned = one_event(new_subject(), new_id(), 2)
        poisoned.projections[0] = state_row(poisoned.projections[0].subject, [], region="a\x00b")
        with pytest.raises(StoreRefused) as refused:
            async with port.risk.batch(cluster, {(TOPIC, 0): [1, 2]}) as unit:
                await unit.write(one_event(subject, event_id, 1))
                await unit.commit(poisoned)
        assert refused.value.reason_class == "text_encoding"
        async with port.risk.batch(cluster, {(TOPIC, 0): [1, 2]}) as unit:
            assert unit.fresh == {(TOPIC, 0): [1, 2]}
            assert await unit.archived([event_id]) == set()
        assert await port.quarantine.entries() == []

    async def test_a_failed_part_leaves_no_trace_and_the_unit_goes_on(self, port: StoragePorts) -> None:
        first, second, cluster = new_subject(), new_subject(), new_id()
        first_id, second_id, bad_id = new_id(), new_id(), new_id()
        async with port.risk.batch(cluster, {(TOPIC, 0): [1, 2, 3]}) as unit:
            async with unit.part():
                await unit.write(one_event(first, first_id, 1))
            with pytest.raises(StoreRefused):
                async with unit.part():
                    await unit.write(one_event(second, bad_id, 2))
                    await unit.write(BatchEffects(history=[HistoryRow(second, bad_id, T0, "high", 1.0, "x\x00", "p")]))
            with pytest.raises(ValueError, match="not the store's"):
                async with unit.part():
                    await unit.write(one_event(second, new_id(), 2))
                    raise ValueError("not the store's")
            assert await unit.archived([bad_id]) == set()
            async with unit.part():
                await unit.write(one_event(second, second_id, 3))
            await unit.commit(BatchEffects(quarantined=[quarantined(2, event_id=bad_id)], offsets={(TOPIC, 0): 3}))
        async with port.risk.batch(cluster, {(TOPIC, 0): [4]}) as unit:
            assert await unit.archived([first_id, second_id, bad_id]) == {first_id, second_id}
            assert set(await unit.lock_states([first, second])) == {first, second}
        [entry] = await port.quarantine.entries()
        assert (entry.offset, entry.event_id) == (2, bad_id)
        assert await port.risk.applied_positions(cluster, [(TOPIC, 0)]) == {(TOPIC, 0): 4}

    async def test_an_event_id_that_is_no_uuid_is_refused(self, port: StoragePorts) -> None:
        async with port.risk.batch(new_id(), {(TOPIC, 0): [1]}) as unit:
            with pytest.raises(StoreRefused) as refused:
                async with unit.part():
                    await unit.archived(["not-a-uuid"])
            assert refused.value.reason_class == "database_refused"
            assert await unit.archived([new_id()]) == set(), "the unit goes on after the part"

    async def test_archive_and_history_rows_already_stored_are_skipped(self, port: StoragePorts) -> None:
        subject, event_id, cluster = new_subject(), new_id(), new_id()
        async with port.risk.batch(cluster, {(TOPIC, 0): [1]}) as unit:
            await unit.commit(one_event(subject, event_id, 1))
        again = one_event(subject, event_id, 2)
        again.archive[0] = archived(subject, event_id, body=b"replayed")
        async with port.risk.batch(cluster, {(TOPIC, 1): [1]}) as unit:
            await unit.commit(again)
        assert [b async for b in port.archive.archived_bodies()] == [(subject, b"avro")]

    async def test_state_versions_count_writes_and_state_events_drop_behind_the_cut_off(
            self, port: StoragePorts) -> None:
        subject, cluster = new_subject(), new_id()
        ids = [new_id() for _ in range(3)]
        async with port.risk.batch(cluster, {(TOPIC, 0): [1, 2, 3]}) as unit:
            for n, event_id in enumerate(ids[:2]):
                await unit.write(BatchEffects(projections=[
                    state_row(subject, [(T0 + n * DAY, event_id, {"n": n})], at=T0 + n * DAY)]))
            assert (await unit.lock_states([subject]))[subject].version == 2
            await unit.commit(BatchEffects(projections=[
                state_row(subject, [(T0 + 2 * DAY, ids[2], {"n": 2})], at=T0 + 2 * DAY, state_from=T0 + DAY)],
                offsets={(TOPIC, 0): 3}))
        async with port.risk.batch(cluster, {(TOPIC, 0): [4]}) as unit:
            head = (await unit.lock_states([subject]))[subject]
            assert head == (3, T0 + 2 * DAY)
            events = (await unit.state_events([subject]))[subject]
            assert sorted(e["n"] for e in events) == [1, 2]

    async def test_an_alert_is_stored_once_and_only_new_ones_reach_the_outbox(self, port: StoragePorts) -> None:
        subject, event_id, cluster = new_subject(), new_id(), new_id()
        paged, history_only = alert(subject, event_id), alert(subject, event_id, paged=False)
        async with port.risk.batch(cluster, {(TOPIC, 0): [1]}) as unit:
            effects = one_event(subject, event_id, 1)
            effects.alerts.extend([paged, history_only])
            assert await unit.commit(effects) == {paged.alert_id, history_only.alert_id}
        async with port.risk.batch(cluster, {(TOPIC, 0): [2]}) as unit:
            assert await unit.commit(BatchEffects(alerts=[paged], offsets={(TOPIC, 0): 2})) == set()
        sent: list[tuple[str, str, bytes]] = []

        async def publish(messages: list[Any]) -> None:
            sent.extend((m.topic, m.key, m.message) for m in messages)

        assert await port.outbox.relay(publish, limit=100) == 3
        assert sent == [("risk-changes.v1", subject, b'{"level": "high"}'), ("alerts.v1", subject, paged.message),
                        ("alerts.v1", subject, history_only.message)]

    async def test_backfilled_events_are_known_to_the_unit(self, port: StoragePorts) -> None:
        backfilled, live = new_id(), new_id()
        await port.mark_backfilled([backfilled])
        async with port.risk.batch(new_id(), {(TOPIC, 0): [1]}) as unit:
            assert await unit.backfilled([backfilled, live]) == {backfilled}
            assert await unit.backfilled([]) == set()

    async def test_units_sharing_a_partition_serialise_and_the_second_sees_the_first(self, port: StoragePorts) -> None:
        cluster = new_id()
        seen: list[dict[tuple[str, int], list[int]]] = []

        async def second() -> None:
            async with port.risk.batch(cluster, {(TOPIC, 0): [1, 2]}) as unit:
                seen.append(unit.fresh)
                await unit.commit(BatchEffects(offsets={(TOPIC, 0): 2}))

        async with port.risk.batch(cluster, {(TOPIC, 0): [1]}) as unit:
            task = asyncio.create_task(second())
            await unit.commit(BatchEffects(offsets={(TOPIC, 0): 1}))
        await task
        assert seen == [{(TOPIC, 0): [2]}]
        assert await port.risk.applied_positions(cluster, [(TOPIC, 0)]) == {(TOPIC, 0): 3}

    async def test_a_committed_unit_takes_no_more_writes(self, port: StoragePorts) -> None:
        async with port.risk.batch(new_id(), {(TOPIC, 0): [1]}) as unit:
            await unit.commit(BatchEffects(offsets={(TOPIC, 0): 1}))
            with pytest.raises(RuntimeError):
                await unit.commit(BatchEffects(offsets={(TOPIC, 0): 1}))
