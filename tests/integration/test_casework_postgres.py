"""The workload (cases, the scheduler's reviews) on PostgreSQL against its contracts, on an embedded PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.contracts import StoragePorts
from tests.support.contracts.casework import CasesContract, ReviewsContract
from tests.support.postgres import postgres_ports, postgres_pool, postgres_url  # noqa: F401 (fixtures)


class TestPostgresReviews(ReviewsContract):
    @pytest.fixture
    def port(self, postgres_pool: asyncpg.Pool) -> StoragePorts:  # noqa: F811
        return postgres_ports(postgres_pool)


class TestPostgresCases(CasesContract):
    @pytest.fixture
    def port(self, postgres_pool: asyncpg.Pool) -> StoragePorts:  # noqa: F811
        return postgres_ports(postgres_pool)
