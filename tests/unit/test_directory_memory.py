"""The in-memory user and client directories pass the contracts of the PostgreSQL ones."""

from __future__ import annotations

import pytest

from services.adapters.memory.directory import MemoryClientDirectory, MemoryUserDirectory
from tests.support.contracts.directory import ClientDirectoryContract, UserDirectoryContract


class TestMemoryUserDirectory(UserDirectoryContract):
    @pytest.fixture
    def users(self) -> MemoryUserDirectory:
        return MemoryUserDirectory()


class TestMemoryClientDirectory(ClientDirectoryContract):
    @pytest.fixture
    def clients(self) -> MemoryClientDirectory:
        return MemoryClientDirectory()
