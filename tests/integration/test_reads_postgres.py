"""The query reads' contract on the real embedded PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import pytest

from tests.support.contracts.postgres import contract_template, port
from tests.support.contracts.reads import AlertReadsContract, CaseReadsContract, ReviewReadsContract

pytestmark = pytest.mark.integration
__all__ = ["contract_template", "port"]


class TestPostgresCaseReads(CaseReadsContract):
    pass


class TestPostgresAlertReads(AlertReadsContract):
    pass


class TestPostgresReviewReads(ReviewReadsContract):
    pass
