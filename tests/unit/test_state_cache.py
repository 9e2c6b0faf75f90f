"""The risk stage's kept states: bounded by subjects and by the events they hold, least recently used out."""

from __future__ import annotations

from projections.model import SubjectState
from streams.risk import StateCache
from tests.support.scenario import risk_event


def state(subject: str, events: int) -> SubjectState:
    return SubjectState(subject, tuple(risk_event(f"{subject}-{n}", n, "police.crime_report", offence="assault")
                                       for n in range(events)))


def test_a_state_is_reused_only_at_the_version_it_was_kept_with() -> None:
    cache = StateCache(4, events=100)
    kept = state("a", 2)
    cache.keep({"a": (3, kept)})
    assert cache.get("a", 3) is kept
    assert cache.get("a", 4) is None  # written elsewhere since: read again
    assert cache.get("b", 1) is None


def test_the_least_recently_used_go_first_when_too_many_subjects_are_kept() -> None:
    cache = StateCache(2, events=100)
    cache.keep({"a": (1, state("a", 1)), "b": (1, state("b", 1))})
    assert cache.get("a", 1) is not None  # now b is the least recently used
    cache.keep({"c": (1, state("c", 1))})
    assert (cache.get("a", 1) is not None, cache.get("b", 1), cache.get("c", 1) is not None) == (True, None, True)
    assert (len(cache), cache.events) == (2, 2)


def test_the_events_held_are_bounded_too() -> None:
    cache = StateCache(100, events=10)
    cache.keep({"a": (1, state("a", 4)), "b": (1, state("b", 4))})
    cache.keep({"c": (1, state("c", 4))})  # 12 events: the oldest state goes
    assert cache.get("a", 1) is None
    assert (len(cache), cache.events) == (2, 8)


def test_a_state_kept_again_counts_its_events_once() -> None:
    cache = StateCache(100, events=10)
    cache.keep({"a": (1, state("a", 3))})
    cache.keep({"a": (2, state("a", 5))})
    assert (len(cache), cache.events) == (1, 5)
    cache.forget({"a", "unknown"})
    assert (len(cache), cache.events) == (0, 0)


def test_the_state_kept_last_stays_however_many_events_it_holds() -> None:
    cache = StateCache(100, events=10)
    cache.keep({"a": (1, state("a", 3))})
    long_known = state("b", 25)
    cache.keep({"b": (1, long_known)})
    assert cache.get("b", 1) is long_known
    assert cache.get("a", 1) is None
    assert (len(cache), cache.events) == (1, 25)
