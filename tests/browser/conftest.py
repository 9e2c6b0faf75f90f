"""The console in a real browser: Debian's Chromium driven by Playwright, against the session stack.

Every request the browser makes is routed through `Console.route`: one to any host but the
API's is aborted and remembered, and each test ends by asserting there was none. The browser
runs with its own background traffic (updates, sync, safe browsing) switched off, so what it
asks for is what the pages ask for.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Route, async_playwright, expect

from services.runtime.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# RISKWATCH_SCREENSHOTS=docs/console makes the tests photograph each page for the documentation.
SCREENSHOTS = os.environ.get("RISKWATCH_SCREENSHOTS")
TIMEOUT_MS = 20_000

expect.set_options(timeout=TIMEOUT_MS)


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make chromium` installs it (as root)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Console:
    """One browser context (its own sessionStorage: one signed-in user) on the API."""

    stack: Stack
    context: BrowserContext
    page: Page
    requested: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def route(self, route: Route) -> None:
        url = route.request.url
        self.requested.append(url)
        if urlsplit(url).hostname != "127.0.0.1" and not url.startswith(("data:", "blob:")):
            self.foreign.append(url)
            await route.abort()
            return
        await route.continue_()

    def on_console(self, message: ConsoleMessage) -> None:
        # A page whose script fails, or that the CSP stops, says so on the console. Refusals the
        # tests provoke (401) and the queue's look for the case API (404 until it exists) are not that.
        # ReDoc's "API docs by Redocly" logo points at its CDN, whatever the options: the CSP stops
        # it before any request, and the logo hides itself.
        if message.type == "error" and not re.search(r"status of 40[14]|cdn\.redoc\.ly/redoc/logo-mini\.svg' violates",
                                                      message.text):
            self.problems.append(message.text)

    def url(self, path: str) -> str:
        return f"{self.stack.api_url}{path}"

    async def sign_in(self, token: str) -> None:
        await self.page.goto(self.url("/console/"))
        await self.page.get_by_label("Bearer token").fill(token)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.locator("#who-name")).to_be_visible()

    async def sign_in_by_keyboard(self, token: str) -> None:
        """Tab to the token field, type, Enter: no mouse. Each element focused on the way shows it."""
        await self.page.goto(self.url("/console/"))
        for _ in range(5):
            await self.page.keyboard.press("Tab")
            focused = await self.page.evaluate(
                "() => { const e = document.activeElement; const s = getComputedStyle(e);"
                " return {id: e.id, outline: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }")
            assert focused["outline"] != "none" and focused["width"] >= 2, f"focus is not visible: {focused}"
            if focused["id"] == "token":
                break
        else:
            raise AssertionError("the token field cannot be reached with Tab")
        await self.page.keyboard.type(token)
        await self.page.keyboard.press("Enter")
        await expect(self.page.locator("#who-name")).to_be_visible()

    async def violations(self) -> list[dict[str, object]]:
        """What axe-core's WCAG 2.1 A and AA rules find on the page as it is now."""
        if not await self.page.evaluate("typeof axe !== 'undefined'"):
            await self.page.evaluate(AXE)
        result = await self.page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA)
        return [{"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
                for v in result["violations"]]

    async def accessible(self, name: str) -> None:
        """No WCAG 2.1 A/AA violation that axe-core finds; a photograph for the documentation if asked."""
        violations = await self.violations()
        assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)

    def api_paths(self) -> set[str]:
        return {urlsplit(url).path for url in self.requested if urlsplit(url).path.startswith(("/v1", "/metrics"))}


@pytest_asyncio.fixture
async def console(stack: Stack, browser: Browser) -> AsyncIterator[Console]:
    context = await browser.new_context(locale="sv-SE", viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    opened = Console(stack, context, page)
    await context.route("**/*", opened.route)
    page.on("console", opened.on_console)
    page.on("pageerror", lambda error: opened.problems.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert opened.foreign == [], "the console asked another host"
    assert opened.problems == [], "the page reported errors"
