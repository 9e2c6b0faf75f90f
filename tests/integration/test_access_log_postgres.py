"""The access log's contract on the real embedded PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import pytest

from tests.support.contracts.access_log import AccessLogContract
from tests.support.contracts.postgres import contract_template, port

pytestmark = pytest.mark.integration
__all__ = ["contract_template", "port"]


class TestPostgresAccessLog(AccessLogContract):
    pass
