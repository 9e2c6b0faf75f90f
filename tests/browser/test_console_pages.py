"""The console's pages and the API docs as served, without a browser: every asset they name is
shipped and served by the API itself, and each page carries its Content-Security-Policy."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from services.api.app import create_api
from services.api.console import CONSOLE_POLICY, PAGES, Page
from services.runtime.settings import Settings


@pytest_asyncio.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # The app without its lifespan: pages and assets need neither the database nor the broker.
    transport = httpx.ASGITransport(app=create_api(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield client


def assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"#]+)"', html)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
async def test_each_page_is_served_with_its_policy_and_only_shipped_assets(http: httpx.AsyncClient,
                                                                          page: Page) -> None:
    response = await http.get(f"/console/{page.path}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONSOLE_POLICY
    assert "<script>" not in response.text and " style=" not in response.text, "nothing inline: the CSP forbids it"
    for url in assets(response.text):
        assert url.startswith("/"), f"{url} is not on this host"
        if url.startswith("/console/static/"):
            assert (await http.get(url)).status_code == 200, url


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_api_docs_load_nothing_from_another_host(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "img-src 'self' data:" in policy
    assert not re.search(r"https?://", response.text), "no CDN, no web font"
    shipped = [url for url in assets(response.text) if url.startswith("/console/static/")]
    assert len(shipped) >= 2, "the viewer's script and icon are shipped"
    for url in shipped:
        assert (await http.get(url)).status_code == 200, url


async def test_an_unknown_console_page_is_404(http: httpx.AsyncClient) -> None:
    assert (await http.get("/console/nothing-here")).status_code == 404
    assert (await http.get("/console")).headers["location"] == "/console/"
