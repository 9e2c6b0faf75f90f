"""The workflow's store contract on the in-memory twin."""

from __future__ import annotations

import pytest

from tests.support.contracts.workflow import WorkflowContract
from tests.support.contracts.world import World, memory_world


class TestMemoryWorkflow(WorkflowContract):
    @pytest.fixture
    def port(self) -> World:
        return memory_world()
