"""Fixtures of the pure core's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from projections import model


@pytest.fixture(scope="module", params=[0, model.LEDGER_FROM], ids=["ledger", "short-from-scratch"])
def ledger_from(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every state on the ledger, then the shipped threshold (short states scored from scratch)."""
    shipped = model.LEDGER_FROM
    model.LEDGER_FROM = request.param
    yield
    model.LEDGER_FROM = shipped
