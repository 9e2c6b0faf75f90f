"""The web console at /console and the API documentation at /docs and /redoc, every byte of them
served from this package: police networks are closed, so no page may load anything from
another host, and the Content-Security-Policy says so to the browser.

The pages hold no personal data. Their scripts sign in with a bearer token kept in the tab's
sessionStorage and read everything from the documented /v1 API with it, so each read of
personal data is in the access log exactly as when done with curl.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from schemas.rules import REGIONS
from services.api.alerts import TRIGGERS

STATIC = "/console/static"
REGION_NAMES = {"nord": "Nord", "mitt": "Mitt", "stockholm": "Stockholm", "ost": "Öst", "vast": "Väst", "syd": "Syd",
                "bergslagen": "Bergslagen"}
assert set(REGION_NAMES) == set(REGIONS), "every police region has its name"
# Pages: the console's own scripts and styles only, data only from this origin.
CONSOLE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                  "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# Swagger UI and ReDoc style their widgets with inline styles and ReDoc searches in a worker
# it makes from a blob; still nothing from another host.
DOCS_POLICY = ("default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Page:
    path: str  # below /console/
    title: str
    name: str  # pages/<name>.html and static/<name>.js


PAGES = (
    Page("", "Sign in", "signin"),
    Page("queue", "Alert queue", "queue"),
    Page("subject", "Subject", "subject"),
    Page("priority", "Priority list", "priority"),
    Page("releases", "Release watch", "releases"),
    Page("operations", "Stream health", "operations"),
    Page("admin", "Access log", "admin"),
)


def _text(*parts: str) -> str:
    return resources.files(__name__).joinpath(*parts).read_text(encoding="utf-8")


def _options(values: dict[str, str]) -> str:
    return "\n".join(f'      <option value="{value}">{label}</option>' for value, label in values.items())


# The stream-health tables: id, caption, what the first column is.
METRIC_TABLES = (
    ("ingest", "Ingest gateway: events by outcome", "Outcome"),
    ("published", "Records published, by topic", "Topic"),
    ("dead-letters", "Dead letters, by stage and reason", "Stage and reason"),
    ("alerts", "Alerts raised, by trigger", "Trigger"),
    ("latency", "Mean durations", "Measured"),
)


def _metric_tables() -> str:
    return "\n".join(
        f'<div class="table-wrap"><table class="data"><caption>{caption}</caption><thead><tr>'
        f'<th scope="col">{first}</th><th scope="col">Since start</th><th scope="col">Now</th></tr></thead>'
        f'<tbody id="{name}-rows"></tbody></table></div>'
        for name, caption, first in METRIC_TABLES
    )


# Choices the pages offer, from the same lists the API checks its parameters against.
CHOICES = {
    "region_options": _options(REGION_NAMES),
    "trigger_options": _options({trigger: trigger.replace("_", " ") for trigger in TRIGGERS}),
    "metric_tables": _metric_tables(),
}


@cache
def render(page: Page) -> str:
    main = Template(_text("pages", f"{page.name}.html")).substitute(CHOICES)
    return Template(_text("pages", "layout.html")).substitute(
        title=page.title, page=page.name, main=main, static=STATIC,
        regions=html.escape(json.dumps(REGION_NAMES, ensure_ascii=False)),
    )


def _script_hashes(html: str) -> str:
    """CSP hashes of the page's inline scripts (FastAPI's docs pages start their viewer inline)."""
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)


def _docs_response(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={**HEADERS, "Content-Security-Policy": DOCS_POLICY.format(
        scripts=_script_hashes(html))})


def mount_console(app: FastAPI) -> None:
    """The console's pages and assets, and /docs and /redoc with shipped Swagger UI and ReDoc."""
    app.mount(STATIC, StaticFiles(packages=[(__name__, "static")]), name="console-static")
    favicon = f"{STATIC}/favicon.svg"
    openapi_url = app.openapi_url or "/openapi.json"
    swagger = bytes(get_swagger_ui_html(
        openapi_url=openapi_url, title=f"{app.title} API", swagger_favicon_url=favicon,
        swagger_js_url=f"{STATIC}/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/vendor/swagger-ui/swagger-ui.css",
        swagger_ui_parameters={"validatorUrl": None},  # the public validator is another host
    ).body).decode()
    redoc = bytes(get_redoc_html(
        openapi_url=openapi_url, title=f"{app.title} API", redoc_favicon_url=favicon, with_google_fonts=False,
        redoc_js_url=f"{STATIC}/vendor/redoc/redoc.standalone.js",
    ).body).decode()

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _docs_response(swagger)

    @app.get("/redoc", include_in_schema=False)
    async def redoc_ui() -> HTMLResponse:
        return _docs_response(redoc)

    @app.get("/console", include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/console/")

    pages = {page.path: page for page in PAGES}

    @app.get("/console/{path}", include_in_schema=False)
    @app.get("/console/", include_in_schema=False)
    async def console_page(path: str = "") -> HTMLResponse:
        page = pages.get(path)
        if page is None:
            raise HTTPException(404, "path: no such console page")
        return HTMLResponse(render(page), headers={**HEADERS, "Content-Security-Policy": CONSOLE_POLICY})
