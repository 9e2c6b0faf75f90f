"""In-memory twins of the ports, for unit tests: dicts and lists, with the semantics of the real
adapters (uniqueness, conflicts, ordering), checked by the same contract suites."""

from __future__ import annotations


class ManualClock:
    """Monotonic seconds that pass only when told: for bounds tested without waiting."""

    def __init__(self, start: float = 0.0, tick: float = 0.0) -> None:
        self.now = start
        self.tick = tick  # added on every reading, so that two readings are never equal when > 0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
