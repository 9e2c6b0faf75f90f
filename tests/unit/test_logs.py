"""Logs: JSON lines with the pipeline's fields when configured, plain text by default, never an identity."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import anyio
import pytest

from services.api.operations import _client_gone
from services.runtime.logs import JsonFormatter, TextFormatter, log_context, with_log_context

NUMBER = "19850212-1234"


def formatted(formatter: logging.Formatter, message: str, *args: object, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("riskwatch.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message, *args, extra=extra)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_carry_the_fields_and_withhold_identity_numbers() -> None:
    with log_context(stage="risk"):
        line = formatted(JsonFormatter(), "refused %s", NUMBER, topic="agency.police.v1", partition=3, offset=17,
                         event_id="0b9d1b8e-0000-4000-8000-000000000001")
    document = json.loads(line)
    assert document["level"] == "WARNING" and document["logger"] == "riskwatch.test"
    assert document["stage"] == "risk" and document["topic"] == "agency.police.v1"
    assert document["partition"] == 3 and document["offset"] == 17
    assert document["event_id"].startswith("0b9d1b8e")
    assert NUMBER not in line and "number withheld" in document["message"]
    assert "alert_id" not in document


def test_text_is_one_line_for_people_with_the_fields_at_the_end() -> None:
    line = formatted(TextFormatter(), "alert for %s", NUMBER, alert_id="a1")
    assert line.count("\n") == 1 and line.rstrip().endswith("[alert_id=a1]")
    assert "WARNING riskwatch.test: alert for <number withheld>" in line


def test_tracebacks_withhold_identity_numbers_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("riskwatch.test.exception")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise ValueError(f"bad {NUMBER}")
    except ValueError:
        logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert NUMBER not in stream.getvalue() and "ValueError" in json.loads(stream.getvalue())["exception"]


@pytest.mark.parametrize(("error", "gone"), [
    (anyio.BrokenResourceError(), True),
    (BaseExceptionGroup("stream", [anyio.BrokenResourceError(), anyio.ClosedResourceError()]), True),
    (BaseExceptionGroup("stream", [anyio.BrokenResourceError(), RuntimeError("bug")]), False),
    (RuntimeError("bug"), False),
])
def test_only_a_closed_stream_counts_as_a_client_that_left(error: BaseException, gone: bool) -> None:
    assert _client_gone(error) is gone


def test_a_task_logs_with_the_fields_of_its_context() -> None:
    lines: list[str] = []

    @with_log_context(stage="outbox relay")
    async def relay() -> None:
        async def inner() -> None:
            lines.append(formatted(JsonFormatter(), "relay failed"))
        await asyncio.create_task(inner())  # a task started inside inherits the context

    asyncio.run(relay())
    assert json.loads(lines[0])["stage"] == "outbox relay"
    assert "stage" not in json.loads(formatted(JsonFormatter(), "outside"))
