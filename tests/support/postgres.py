"""An embedded PostgreSQL of its own (no broker), migrated, for the adapters' contract suites."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence

import asyncpg
import pytest

from services.adapters.postgres.casework import PostgresReviews, record_backfill
from services.adapters.postgres.outbox import PostgresOutbox
from services.adapters.postgres.pool import create_pool, migrate
from services.adapters.postgres.quarantine import PostgresQuarantine
from services.adapters.postgres.risk import PostgresRiskStore
from services.runtime.embedded import embedded_stack
from tests.support.contracts import CaseView, StoragePorts

# every table the risk stage, the relay, the quarantine and the scheduler write
TABLES = ("event_archive", "subject_projection", "risk_state_event", "risk_history", "alert", "alert_case",
          "case_workflow", "outbox", "quarantine", "tracking", "backfill_event", "review")


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with embedded_stack(tmp_path_factory.mktemp("contracts"), broker=False, database=True) as (_, database):
        assert database is not None

        async def prepare() -> None:
            pool = await create_pool(database.database_url, max_size=1)
            try:
                await migrate(pool)
            finally:
                await pool.close()

        asyncio.run(prepare())
        yield database.database_url


@pytest.fixture
async def postgres_pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on emptied tables (the contract tests share the database, one test at a time)."""
    pool = await create_pool(postgres_url, max_size=4)
    try:
        await pool.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
        yield pool
    finally:
        await pool.close()


def postgres_ports(pool: asyncpg.Pool) -> StoragePorts:
    async def mark_backfilled(event_ids: Sequence[str]) -> None:
        await record_backfill(pool, event_ids)

    async def cases() -> list[CaseView]:
        rows = await pool.fetch(
            """SELECT c.case_id::text AS case_id, c.subject, c.status, c.priority, c.level, c.triggers, c.alert_count,
                      ARRAY(SELECT a.alert_id::text FROM alert a WHERE a.case_id = c.case_id ORDER BY 1) AS alert_ids,
                      (SELECT count(*) FROM case_workflow w WHERE w.case_id = c.case_id AND w.action = 'reopened')
                          AS reopened
               FROM alert_case c ORDER BY c.subject""")
        return [CaseView(r["case_id"], r["subject"], r["status"], r["priority"], r["level"], sorted(r["triggers"]),
                         r["alert_count"], list(r["alert_ids"]), r["reopened"]) for r in rows]

    async def acknowledge(case_id: str) -> None:
        await pool.execute("UPDATE alert_case SET status = 'acknowledged' WHERE case_id = $1::uuid", case_id)

    risk = PostgresRiskStore(pool)
    return StoragePorts(risk, PostgresOutbox(pool), PostgresQuarantine(pool), PostgresReviews(pool), mark_backfilled,
                        archive=risk, cases=cases, acknowledge=acknowledge)
