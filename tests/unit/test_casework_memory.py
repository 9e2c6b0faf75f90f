"""The workload (cases, the scheduler's reviews) on the in-memory twin against its contracts."""

from __future__ import annotations

import pytest

from tests.support.contracts import StoragePorts
from tests.support.contracts.casework import CasesContract, ReviewsContract
from tests.support.memory import memory_ports


class TestMemoryReviews(ReviewsContract):
    @pytest.fixture
    def port(self) -> StoragePorts:
        return memory_ports()


class TestMemoryCases(CasesContract):
    @pytest.fixture
    def port(self) -> StoragePorts:
        return memory_ports()
