"""The workflow's store contract on the real embedded PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import pytest

from tests.support.contracts.postgres import contract_template, port
from tests.support.contracts.workflow import WorkflowContract

pytestmark = pytest.mark.integration
__all__ = ["contract_template", "port"]


class TestPostgresWorkflow(WorkflowContract):
    pass
