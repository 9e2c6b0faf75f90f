"""The subject, watch-list and stream-status reads' contract on the real embedded PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.contracts.postgres import contract_template, port
from tests.support.contracts.subjects import StreamStatusContract, SubjectReadsContract, WatchReadsContract

pytestmark = pytest.mark.integration
__all__ = ["contract_template", "port"]


class TestPostgresSubjectReads(SubjectReadsContract):
    pass


class TestPostgresWatchReads(WatchReadsContract):
    pass


class TestPostgresStreamStatus(StreamStatusContract):
    pass
