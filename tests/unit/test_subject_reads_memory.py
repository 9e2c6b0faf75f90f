"""The subject, watch-list and stream-status reads' contract on the in-memory twins."""

from __future__ import annotations

import pytest

from tests.support.contracts.subjects import StreamStatusContract, SubjectReadsContract, WatchReadsContract
from tests.support.contracts.world import World, memory_world


@pytest.fixture
def port() -> World:
    return memory_world()


class TestMemorySubjectReads(SubjectReadsContract):
    pass


class TestMemoryWatchReads(WatchReadsContract):
    pass


class TestMemoryStreamStatus(StreamStatusContract):
    pass
