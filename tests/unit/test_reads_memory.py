"""The query reads' contract on the in-memory twins."""

from __future__ import annotations

import pytest

from tests.support.contracts.reads import AlertReadsContract, CaseReadsContract, ReviewReadsContract
from tests.support.contracts.world import World, memory_world


@pytest.fixture
def port() -> World:
    return memory_world()


class TestMemoryCaseReads(CaseReadsContract):
    pass


class TestMemoryAlertReads(AlertReadsContract):
    pass


class TestMemoryReviewReads(ReviewReadsContract):
    pass
