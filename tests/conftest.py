"""Shared fixtures. Integration tests run the real embedded broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from services.runtime.settings import Settings
from services.bootstrap import started_stack
from services.runtime.stack import Stack

# Every property test runs the same examples on every run and machine (no example database, no
# clock-based deadline): a failure is reproduced by running the test again. Tests set their own counts.
settings.register_profile("riskwatch", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile("riskwatch")


def stack_settings(state_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "state_dir": state_dir,
        "kafka_bootstrap_servers": None,
        "database_url": None,
        "partitions": 4,
        "batch_within_seconds": 0.02,
        "scheduler_enabled": False,
        # Stories happen in 2026-03: judge paging as if each event was processed when recorded.
        "paging_clock": "recorded",
        "http_port": 0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack (broker, PostgreSQL, one worker, the API) shared by integration tests."""
    with started_stack(stack_settings(tmp_path_factory.mktemp("stack")), workers=1) as running:
        yield running
