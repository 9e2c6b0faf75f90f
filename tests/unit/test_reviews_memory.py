"""The scheduler's reviews on the in-memory twin against the reviews' contract."""

from __future__ import annotations

import pytest

from tests.support.contracts import StoragePorts
from tests.support.contracts.casework import ReviewsContract
from tests.support.memory import memory_ports


class TestMemoryReviews(ReviewsContract):
    @pytest.fixture
    def port(self) -> StoragePorts:
        return memory_ports()
