"""Waiting in tests: poll the condition that is waited for, never sleep a fixed time.

A check returns something truthy once the condition holds (that value is returned), and may
raise itself to fail early (a process that exited, say). Past the timeout the test fails,
saying what did not happen. The pause between checks only spares the machine: it decides
nothing, however slow the machine is.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

INTERVAL = 0.1


@overload
async def until(check: Callable[[], Awaitable[T]], *, what: str, timeout: float = ..., interval: float = ...) -> T: ...
@overload
async def until(check: Callable[[], T], *, what: str, timeout: float = ..., interval: float = ...) -> T: ...
async def until(check: Callable[[], Any], *, what: str, timeout: float = 60.0, interval: float = INTERVAL) -> Any:
    """Call `check` (plain or async) until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        await asyncio.sleep(interval)


def until_blocking(check: Callable[[], T], *, what: str, timeout: float = 60.0, interval: float = INTERVAL) -> T:
    """The same outside an event loop (a synchronous test, a fixture starting a process)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(interval)
