"""The worker's C allocator settings (services.bootstrap.lean_allocator) are taken where they apply."""

from __future__ import annotations

import platform
import sys

import pytest

from services.bootstrap import lean_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_glibc_takes_every_setting() -> None:
    assert lean_allocator() is True
