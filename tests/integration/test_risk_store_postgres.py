"""The risk store's PostgreSQL adapter against the risk store's contract, on an embedded PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.contracts import StoragePorts
from tests.support.contracts.risk import RiskStoreContract
from tests.support.postgres import postgres_ports, postgres_pool, postgres_url  # noqa: F401 (fixtures)


class TestPostgresRiskStore(RiskStoreContract):
    @pytest.fixture
    def port(self, postgres_pool: asyncpg.Pool) -> StoragePorts:  # noqa: F811
        return postgres_ports(postgres_pool)
