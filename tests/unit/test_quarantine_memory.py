"""The quarantine's in-memory twin against the quarantine's contract."""

from __future__ import annotations

import pytest

from tests.support.contracts import StoragePorts
from tests.support.contracts.quarantine import QuarantineContract
from tests.support.memory import memory_ports


class TestMemoryQuarantine(QuarantineContract):
    @pytest.fixture
    def port(self) -> StoragePorts:
        return memory_ports()
