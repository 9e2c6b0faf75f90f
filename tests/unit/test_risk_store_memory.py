"""The risk store's in-memory twin against the risk store's contract."""

from __future__ import annotations

import pytest

from tests.support.contracts import StoragePorts
from tests.support.contracts.risk import RiskStoreContract
from tests.support.memory import memory_ports


class TestMemoryRiskStore(RiskStoreContract):
    @pytest.fixture
    def port(self) -> StoragePorts:
        return memory_ports()
