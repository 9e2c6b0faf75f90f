"""The embedded PostgreSQL as the stack starts it: checkpoints paced for the pipeline's writes."""

from __future__ import annotations

import asyncpg

from services.runtime.embedded import CHECKPOINT_PACE
from tests.support.postgres import postgres_pool, postgres_url  # noqa: F401 (fixtures)


async def test_checkpoints_are_paced_for_the_pipeline(postgres_pool: asyncpg.Pool) -> None:  # noqa: F811
    async with postgres_pool.acquire() as connection:
        settings = {name: await connection.fetchval("SELECT current_setting($1)", name) for name in CHECKPOINT_PACE}
    assert settings == {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}
