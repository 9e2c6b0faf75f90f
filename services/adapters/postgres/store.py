"""The risk stage's store with what the tools read beside it: the outbox's backlog, how far the
pipeline has come (services/runtime/stack.py waits on it for an idle stack), counts for the benchmark
and the command line, and what a batch run reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from projections.ports import OutboxMessage
from services.adapters.postgres.outbox import PostgresOutbox
from services.adapters.postgres.pool import port_errors
from services.adapters.postgres.risk import PostgresRiskStore


class Store(PostgresRiskStore):
    async def relay_outbox(self, publish: Callable[[list[OutboxMessage]], Awaitable[None]], limit: int) -> int:
        return await PostgresOutbox(self.pool).relay(publish, limit)

    async def outbox_backlog(self) -> int:
        return (await PostgresOutbox(self.pool).backlog()).messages

    async def tracked_offsets(self, cluster_id: str, topic: str) -> dict[int, int]:
        """partition -> the last offset of `topic` the risk stage applied on this cluster."""
        with port_errors():
            rows = await self.pool.fetch(
                "SELECT kafka_partition, kafka_offset FROM tracking WHERE cluster_id = $1 AND topic = $2",
                cluster_id, topic,
            )
        return {row["kafka_partition"]: row["kafka_offset"] for row in rows}

    async def accepted_unarchived(self, cluster_id: str) -> int:
        """Events the gateway accepted on this cluster that the risk stage has not archived yet (a
        record in quarantine waits for an operator, not for the workers, and is not counted)."""
        with port_errors():
            count = await self.pool.fetchval(
                """SELECT count(*) FROM ingested_event i WHERE cluster_id = $1 AND topic IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM event_archive a WHERE a.event_id = i.event_id)
                   AND NOT EXISTS (SELECT 1 FROM quarantine q
                                   WHERE q.event_id = i.event_id AND q.retried_at IS NULL)""",
                cluster_id,
            )
        return int(count)

    # ---- counts the command line and the benchmark show ------------------------------------

    async def archived_count(self) -> int:
        with port_errors():
            return int(await self.pool.fetchval("SELECT count(*) FROM event_archive"))

    async def has_archived(self) -> bool:
        with port_errors():
            return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM event_archive)"))

    async def projection_count(self) -> int:
        """Subjects with a projection: the tracked subjects."""
        with port_errors():
            return int(await self.pool.fetchval("SELECT count(*) FROM risk_projection"))

    async def tracked_total(self, cluster_id: str, topic: str) -> int:
        """Records of `topic` applied on this cluster, by the tracking rows written with the archive."""
        with port_errors():
            return int(await self.pool.fetchval(
                "SELECT coalesce(sum(kafka_offset + 1), 0)::bigint FROM tracking WHERE cluster_id = $1 AND topic = $2",
                cluster_id, topic,
            ))

    # ---- what a batch run reports of the subjects its file concerns ------------------------

    async def subjects_of_events(self, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(event id, subject) of the archived events among `event_ids`."""
        with port_errors():
            rows = await self.pool.fetch("SELECT event_id::text AS event_id, subject FROM event_archive "
                                         "WHERE event_id = ANY($1::uuid[])", list(event_ids))
        return [(row["event_id"], row["subject"]) for row in rows]

    async def projections_of(self, subjects: Sequence[str]) -> list[dict[str, Any]]:
        with port_errors():
            rows = await self.pool.fetch("SELECT subject, state, assessment, level, score, region, caseload "
                                         "FROM risk_projection WHERE subject = ANY($1::text[])", list(subjects))
        return [dict(row) for row in rows]

    async def alerts_of(self, subjects: Sequence[str]) -> list[dict[str, Any]]:
        """The subjects' alerts, with the causing event's recorded time (epoch ms)."""
        with port_errors():
            rows = await self.pool.fetch(
                """SELECT a.alert_id::text AS alert_id, a.subject, a.trigger, a.priority, a.level_before, a.level_after,
                          a.score, a.explanation, a.factors, a.region, a.caseload, a.causing_event_id::text AS causing,
                          a.policy_version, a.paged, a.case_id::text AS case_id,
                          (extract(epoch FROM a.event_time) * 1000)::bigint AS event_time,
                          (extract(epoch FROM coalesce(e.recorded_time, a.event_time)) * 1000)::bigint AS recorded_time
                   FROM alert a LEFT JOIN event_archive e ON e.event_id = a.causing_event_id
                   WHERE a.subject = ANY($1::text[])""",
                list(subjects),
            )
        return [dict(row) for row in rows]
