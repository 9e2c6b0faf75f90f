"""The outbox's in-memory twin against the outbox's contract."""

from __future__ import annotations

import pytest

from tests.support.contracts import StoragePorts
from tests.support.contracts.outbox import OutboxContract
from tests.support.memory import memory_ports


class TestMemoryOutbox(OutboxContract):
    @pytest.fixture
    def port(self) -> StoragePorts:
        return memory_ports()
