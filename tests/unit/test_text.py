"""The one text normaliser: identity numbers in any spelling, canonical text, and answers that
never fail however strange the request (no connection is dropped for a 500)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.errors import FieldError
from schemas.text import (
    WITHHELD,
    free_text_fault,
    normalised,
    text_fault,
    withhold_identity_numbers,
    withhold_identity_numbers_in_bytes,
)
from services.api.problems import install_problems
from tests.support.scenario import spellings

NUMBER = "19850312-0001"  # fictitious: birth number 000 is never assigned


@pytest.mark.parametrize(("name", "spelling"), spellings(NUMBER).items())
def test_every_spelling_is_found_withheld_and_refused_in_free_text(name: str, spelling: str) -> None:
    text = f"Polisen Malmö, ärende {spelling} klart"
    assert withhold_identity_numbers(text) == f"Polisen Malmö, ärende {WITHHELD} klart"
    assert free_text_fault(text, max_length=200) is not None
    # A sender's JSON escapes are in the raw bytes as written; json.dumps would escape their backslashes.
    raw = ('{"unit": "' + text + '"}').encode() if name == "JSON escapes" else json.dumps(
        {"unit": text}, ensure_ascii=name != "arabic-indic").encode()
    masked = withhold_identity_numbers_in_bytes(raw)
    assert WITHHELD.encode() in masked and b"0312" not in masked.replace(b"\\u00", b"")
    assert "8503120001" not in normalised(masked.decode()).replace("-", "").replace(" ", "")


def test_the_mask_keeps_every_other_byte_as_it_was() -> None:
    raw = b'\xc3\x01{"unit": "Kriminalv\xc3\xa5rden \xff", "n": "' + NUMBER.encode() + b'"}'
    assert withhold_identity_numbers_in_bytes(raw) == raw.replace(NUMBER.encode(), WITHHELD.encode())


def test_text_that_is_no_number_is_left_alone() -> None:
    for text in ("Brottskod 0301, 3 kap. 5 §", "2026-03-01T08:15:00+01:00", "d23f0824-128b-4f33-8c5c-7fd0a6a3a450"):
        assert withhold_identity_numbers(text) == text and free_text_fault(text, max_length=200) is None


@pytest.mark.parametrize(("text", "multiline", "reason"), [
    ("a\x00b", True, "control character U+0000"),
    ("a\tb", False, "control character U+0009"),
    ("a\x1bb", True, "U+001B"),
    ("a\ud800b", True, "lone surrogate U+D800"),
    ("x" * 201, False, "longer than 200"),
    ("Malmo\u0308", False, "NFC"),
])
def test_text_that_is_not_canonical_is_refused_with_the_reason(text: str, multiline: bool, reason: str) -> None:
    fault = text_fault(text, max_length=200, multiline=multiline)
    assert fault is not None and reason in fault


def test_free_text_may_hold_tab_and_newline() -> None:
    assert text_fault("rad ett\n\trad två", max_length=200, multiline=True) is None


def test_field_errors_quote_nothing_that_cannot_be_answered() -> None:
    error = FieldError("payload.a\x00\ud800", f"'{NUMBER}' is not one of x")
    assert error.field == "payload.a\\u0000\\ud800" and NUMBER not in error.reason
    json.dumps(error.reason).encode("utf-8")


async def _call(app: Any, path: bytes, query: bytes = b"", *, method: str = "GET",
                headers: list[tuple[bytes, bytes]] | None = None,
                chunks: tuple[bytes, ...] = (b"",)) -> tuple[list[dict[str, Any]], BaseException | None]:
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": method, "path": path.decode("latin-1"), "raw_path": path,
             "query_string": query, "headers": headers or [], "http_version": "1.1", "scheme": "http",
             "server": ("test", 80), "root_path": "", "app": app}
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except BaseException as raised:  # the server closes the connection on anything raised
        return sent, raised
    return sent, None


def _answer(sent: list[dict[str, Any]]) -> tuple[int, dict[str, str], dict[str, Any]]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body)


def _app() -> Any:
    from fastapi import FastAPI, HTTPException, Query

    app = FastAPI()

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("a defect")

    @app.post("/notes")
    async def notes(body: dict[str, str]) -> dict[str, str]:
        return body

    @app.get("/refuses")
    async def refuses(n: int = Query(1, le=5)) -> None:
        raise HTTPException(403, "region: outside your scope")

    install_problems(app)
    return app


async def test_an_unexpected_failure_is_a_500_problem_and_the_connection_stays_open() -> None:
    sent, raised = await _call(_app(), b"/fails")
    assert raised is None, "nothing is raised to the server, which would close the keep-alive connection"
    status, headers, document = _answer(sent)
    assert status == 500 and headers["content-type"] == "application/problem+json"
    assert document["type"] == "urn:riskwatch:problem:server-error" and "defect" not in document["detail"]


@pytest.mark.parametrize(("path", "query", "status", "field"), [
    (b"/refuses", b"", 403, "region"),
    (b"/refuses", b"n=99", 422, "n"),
    (b"/refuses", b"n=%00", 400, "n"),
    (b"/refuses", b"unknown=%00", 400, "unknown"),
    (b"/refuses", b"n=%ff", 400, "n"),
    (b"/ps_%00", b"", 400, "path"),
    (b"/ps_%ed%a0%80", b"", 400, "path"),
    (b"/nothing", b"", 404, None),
])
async def test_every_refusal_is_problem_details_naming_the_field(path: bytes, query: bytes, status: int,
                                                                 field: str | None) -> None:
    sent, raised = await _call(_app(), path, query)
    assert raised is None
    answered, headers, document = _answer(sent)
    assert answered == status and headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail", "errors"} <= set(document) and document["status"] == status
    assert [e["field"] for e in document["errors"]] == ([field] if field else [])


async def test_query_api_bodies_over_the_limit_or_not_json_are_413_and_415() -> None:
    big = b'{"note": "' + b"x" * (64 * 1024) + b'"}'
    cases = [
        ([(b"content-type", b"application/json"), (b"content-length", str(len(big)).encode())], (big,), 413),
        ([(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")], (big[:40_000], big[40_000:]),
         413),
        ([(b"content-type", b"text/plain"), (b"content-length", b"14")], (b'{"note": "ok"}',), 415),
        ([(b"content-type", b"application/json"), (b"content-length", b"14")], (b'{"note": "ok"}',), 200),
    ]
    for headers, chunks, status in cases:
        sent, raised = await _call(_app(), b"/notes", method="POST", headers=headers, chunks=chunks)
        assert raised is None and _answer(sent)[0] == status, (headers, _answer(sent))
