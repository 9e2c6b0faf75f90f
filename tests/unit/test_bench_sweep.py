"""The history-length sweep keeps, for each length, the fastest of its measurements."""

from __future__ import annotations

import pytest

from services.tools.benchmark import sweep as module
from services.tools.benchmark.sweep import SweepPoint, sweep


def test_each_length_keeps_its_fastest_round_and_the_lengths_are_measured_in_turn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # round by round, the machine slows down for N=10 and speeds up for N=1000
    times = {10: iter([100.0, 120.0, 140.0]), 1000: iter([300.0, 200.0, 250.0])}
    order: list[int] = []

    def measure(length: int, count: int) -> SweepPoint:
        order.append(length)
        return SweepPoint(length, count, {"model": next(times[length]), "save": 0.0}, 1.0)

    monkeypatch.setattr(module, "measure", measure)
    measured = sweep(lengths=(10, 1000), count=5, rounds=3)
    assert order == [10, 1000] * 3
    assert [point.total_us for point in measured.points] == [100.0, 200.0]
    assert measured.rounds == 3 and measured.ratio == pytest.approx(2.0)


def test_one_round_measures_the_real_work_at_every_length() -> None:
    measured = sweep(lengths=(10, 100), count=5, rounds=1)
    assert [point.history for point in measured.points] == [10, 100]
    assert all(point.events == 5 and point.total_us > 0 and point.cold_load_us > 0 for point in measured.points)
