"""The query API's reads in PostgreSQL (cases, alerts, reviews; the others in reads_subjects.py), and
`query_ports`, which the composition root calls to give the API all its ports on one pool."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.adapters.postgres.access_log import PostgresAccessLog, transient_as_unavailable
from services.adapters.postgres.workflow import (
    ALERT_COLUMNS,
    CASE_COLUMNS,
    REVIEW_COLUMNS,
    STEP_COLUMNS,
    PostgresWorkflowStore,
    row,
    rows,
)
from services.adapters.postgres.reads_subjects import (
    PostgresStreamStatusReads,
    PostgresSubjectReads,
    PostgresWatchReads,
)
from services.api.ports import AlertFilter, CaseFilter, QueryPorts, Row, Scope

# extreme first, then high: the review queue's order after the due time
LEVEL_ORDER = "array_position(ARRAY['extreme', 'high', 'moderate', 'low'], level)"


def scope_clause(scope: Scope, parameters: list[Any], *, alerts: bool = False) -> str:
    """SQL condition on rows of cases, alerts or reviews: those of the scope."""
    clauses = []
    if scope.field is not None:
        parameters.append(sorted(scope.units))
        clauses.append(f"{scope.field} = ANY(${len(parameters)}::text[])")
    if alerts and not scope.supervisor:
        clauses.append("NOT for_supervisor")
    return " AND ".join(clauses) or "TRUE"


class PostgresCaseReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def queue(self, scope: Scope, filters: CaseFilter, limit: int) -> list[Row]:
        parameters: list[Any] = []
        clauses = [scope_clause(scope, parameters)]
        if filters.status is None:
            clauses.append("status <> 'closed'")
        else:
            parameters.append(filters.status)
            clauses.append(f"status = ${len(parameters)}")
        for column, value in (("region", filters.region), ("priority", filters.priority)):
            if value is not None:
                parameters.append(value)
                clauses.append(f"{column} = ${len(parameters)}")
        if filters.trigger is not None:
            parameters.append(filters.trigger)
            clauses.append(f"${len(parameters)} = ANY(triggers)")
        order = "priority, updated_at DESC, seq DESC" if filters.sort == "priority" else "updated_at DESC, seq DESC"
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                f"SELECT {CASE_COLUMNS} FROM alert_case WHERE {' AND '.join(clauses)} ORDER BY {order} "
                f"LIMIT ${len(parameters) + 1}",
                *parameters, limit,
            ))

    async def case(self, case_id: str) -> Row | None:
        with transient_as_unavailable():
            return row(await self._pool.fetchrow(
                f"SELECT {CASE_COLUMNS} FROM alert_case WHERE case_id = $1::uuid", case_id))

    async def alerts(self, case_id: str) -> list[Row]:
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                f"SELECT {ALERT_COLUMNS} FROM alert WHERE case_id = $1::uuid ORDER BY seq", case_id))

    async def steps(self, case_id: str) -> list[Row]:
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                f"SELECT {STEP_COLUMNS} FROM case_workflow WHERE case_id = $1::uuid ORDER BY at, event_id", case_id))

    async def last_seq(self) -> int:
        with transient_as_unavailable():
            return int(await self._pool.fetchval("SELECT coalesce(max(seq), 0) FROM alert_case"))

    async def changed_after(self, seq: int, scope: Scope, limit: int) -> list[Row]:
        parameters: list[Any] = [seq]
        where = scope_clause(scope, parameters)
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                f"SELECT {CASE_COLUMNS} FROM alert_case WHERE seq > $1 AND {where} ORDER BY seq "
                f"LIMIT ${len(parameters) + 1}",
                *parameters, limit,
            ))


class PostgresAlertReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def queue(self, scope: Scope, filters: AlertFilter, limit: int, offset: int) -> tuple[list[Row], int]:
        parameters: list[Any] = []
        clauses = [scope_clause(scope, parameters, alerts=True), "NOT paged" if filters.history else "paged"]
        for column, value in (("region", filters.region), ("level_after", filters.level),
                              ("trigger", filters.trigger), ("status", filters.status),
                              ("subject", filters.subject)):
            if value is not None:
                parameters.append(value)
                clauses.append(f"{column} = ${len(parameters)}")
        for template, moment in (("created_at >= ${}", filters.since), ("created_at < ${}", filters.until)):
            if moment is not None:
                parameters.append(moment)
                clauses.append(template.format(len(parameters)))
        where = " AND ".join(clauses)
        with transient_as_unavailable():
            async with self._pool.acquire() as connection:
                total = await connection.fetchval(f"SELECT count(*) FROM alert WHERE {where}", *parameters)
                found = await connection.fetch(
                    f"""SELECT {ALERT_COLUMNS} FROM alert WHERE {where}
                        ORDER BY priority, created_at DESC, seq DESC
                        LIMIT ${len(parameters) + 1} OFFSET ${len(parameters) + 2}""",
                    *parameters, limit, offset,
                )
        return rows(found), int(total)

    async def alert(self, alert_id: str) -> Row | None:
        with transient_as_unavailable():
            return row(await self._pool.fetchrow(
                f"SELECT {ALERT_COLUMNS} FROM alert WHERE alert_id = $1::uuid", alert_id))

    async def steps(self, alert_id: str) -> list[Row]:
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                f"SELECT {STEP_COLUMNS} FROM alert_workflow WHERE alert_id = $1::uuid ORDER BY at, event_id",
                alert_id,
            ))

    async def last_seq(self) -> int:
        with transient_as_unavailable():
            return int(await self._pool.fetchval("SELECT coalesce(max(seq), 0) FROM alert"))

    async def paged_after(self, seq: int, scope: Scope, limit: int) -> list[Row]:
        parameters: list[Any] = [seq]
        where = scope_clause(scope, parameters, alerts=True)
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                f"SELECT {ALERT_COLUMNS} FROM alert WHERE seq > $1 AND paged AND {where} ORDER BY seq "
                f"LIMIT ${len(parameters) + 1}",
                *parameters, limit,
            ))


class PostgresReviewReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def queue(self, scope: Scope, overdue: bool | None, limit: int) -> list[Row]:
        parameters: list[Any] = []
        clauses = ["status = 'open'", scope_clause(scope, parameters)]
        if overdue is not None:
            clauses.append("overdue_at <= now()" if overdue else "overdue_at > now()")
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                f"""SELECT {REVIEW_COLUMNS} FROM review WHERE {' AND '.join(clauses)}
                    ORDER BY due_at, {LEVEL_ORDER}, review_id LIMIT ${len(parameters) + 1}""",
                *parameters, limit,
            ))

    async def overdue_counts(self, scope: Scope) -> list[Row]:
        parameters: list[Any] = []
        where = scope_clause(scope, parameters)
        with transient_as_unavailable():
            return rows(await self._pool.fetch(
                f"""SELECT region, caseload, count(*) AS overdue FROM review
                    WHERE status = 'open' AND overdue_at <= now() AND {where}
                    GROUP BY region, caseload ORDER BY overdue DESC, region NULLS LAST, caseload NULLS LAST""",
                *parameters,
            ))


def query_ports(pool: asyncpg.Pool) -> QueryPorts:
    """Every port of the query API on this pool."""
    return QueryPorts(cases=PostgresCaseReads(pool), alerts=PostgresAlertReads(pool),
                      reviews=PostgresReviewReads(pool), access_log=PostgresAccessLog(pool),
                      workflow=PostgresWorkflowStore(pool), subjects=PostgresSubjectReads(pool),
                      watch=PostgresWatchReads(pool), status=PostgresStreamStatusReads(pool))
