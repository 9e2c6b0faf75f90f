"""A client that leaves a live feed (Server-Sent Events) ends it without an error in the log.

FastAPI's event stream raises anyio.BrokenResourceError when it writes on after the client
left; a feed that yields fast makes it happen on most disconnects.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterable, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.sse import EventSourceResponse, ServerSentEvent

from services.api.operations import DroppedClients
from services.runtime.embedded import free_port
from tests.support.polling import until_blocking


def live_feed_app() -> FastAPI:
    app = FastAPI()

    @app.get("/live", response_class=EventSourceResponse)
    async def live() -> AsyncIterable[ServerSentEvent]:
        while True:
            for _ in range(50):
                yield ServerSentEvent(event="alert", data={"explanation": "x" * 2000})
            await asyncio.sleep(0.001)  # the feed's pace: room for the disconnect to arrive mid-write

    app.add_middleware(DroppedClients)
    return app


@pytest.fixture
def server() -> Iterator[str]:
    port = free_port("127.0.0.1")
    running = uvicorn.Server(uvicorn.Config(live_feed_app(), host="127.0.0.1", port=port, log_config=None,
                                            lifespan="off"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "the server thread ended"
        return running.started

    until_blocking(started, what="the server started", timeout=10)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


def test_leaving_clients_log_no_error(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="services.api.operations")
    for leave_after in range(10, 130, 10):
        with httpx.Client() as http, http.stream("GET", f"{server}/live") as response:
            for number, _ in enumerate(response.iter_lines()):
                if number >= leave_after:
                    break
    until_blocking(lambda: any("a client left" in record.getMessage() for record in caplog.records),
                   what="a disconnect reaching the stream while it wrote", timeout=10)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text
