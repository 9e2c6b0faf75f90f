"""The tests' one way of waiting: poll the condition, fail saying what did not happen."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support.polling import until, until_blocking


def test_the_first_truthy_answer_is_returned() -> None:
    answers = itertools.chain([0, None, []], itertools.repeat(["held"]))
    assert until_blocking(lambda: next(answers), what="an answer", interval=0) == ["held"]


def test_an_async_check_is_awaited() -> None:
    calls = itertools.count(1)

    async def third_time() -> int:
        call = next(calls)
        return call if call >= 3 else 0

    assert asyncio.run(until(third_time, what="the third call", interval=0)) == 3


def test_a_condition_that_never_holds_fails_naming_it() -> None:
    with pytest.raises(AssertionError, match="the port file: not within 0 s"):
        until_blocking(lambda: False, what="the port file", timeout=0, interval=0)
    with pytest.raises(AssertionError, match="the escalation: not within 0 s"):
        asyncio.run(until(lambda: False, what="the escalation", timeout=0, interval=0))


def test_a_check_may_fail_early() -> None:
    def exited() -> bool:
        raise AssertionError("the worker exited")

    with pytest.raises(AssertionError, match="the worker exited"):
        until_blocking(exited, what="the worker's metrics")
