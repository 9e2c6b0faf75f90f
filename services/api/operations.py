"""What the API serves for operators beside its endpoints: /metrics, request metrics, the AsyncAPI
document of the topics, and live feeds whose clients leave without an error in the log."""

from __future__ import annotations

import functools
import logging
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.asyncapi import asyncapi_document
from services.runtime.metrics import RequestMetrics, add_metrics_route
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


def add_operations(app: FastAPI, settings: Settings) -> None:
    app.state.settings = settings  # the operations status reads the consumer groups' lag
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    add_metrics_route(app, token)
    app.add_middleware(DroppedClients)
    app.add_middleware(RequestMetrics)  # outermost: it also counts what the others answer
    document = functools.cache(lambda: asyncapi_document(settings))

    @app.get("/asyncapi.json", tags=["operations"], summary="The AsyncAPI 3.0 document of every topic")
    async def asyncapi() -> dict[str, Any]:
        return document()


class DroppedClients:
    """A client that closes a live feed (Server-Sent Events) ends it; that is not an error.

    FastAPI's event stream writes on into a stream already closed when the client left and
    raises anyio.BrokenResourceError (in an exception group) after the response has started;
    without this every closed browser tab would log a traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except BaseException as error:
            if scope["type"] != "http" or not _client_gone(error):
                raise
            log.debug("a client left %s", scope.get("path"))


def _client_gone(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_client_gone(inner) for inner in error.exceptions)
    return isinstance(error, (anyio.BrokenResourceError, anyio.ClosedResourceError))
