"""The access log's contract on the in-memory twin."""

from __future__ import annotations

import pytest

from tests.support.contracts.access_log import AccessLogContract
from tests.support.contracts.world import World, memory_world


class TestMemoryAccessLog(AccessLogContract):
    @pytest.fixture
    def port(self) -> World:
        return memory_world()
