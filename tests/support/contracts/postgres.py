"""Fixtures that run a contract suite on PostgreSQL: the stack's server, one fresh database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from services.runtime.stack import Stack
from tests.support.contracts.world import World, postgres_world, template_database


@pytest_asyncio.fixture(scope="module")
async def contract_template(stack: Stack) -> AsyncIterator[str]:
    assert stack.settings.database_url
    async with template_database(stack.settings.database_url) as name:
        yield name


@pytest_asyncio.fixture
async def port(stack: Stack, contract_template: str) -> AsyncIterator[World]:
    assert stack.settings.database_url
    async with postgres_world(stack.settings.database_url, contract_template) as world:
        yield world
