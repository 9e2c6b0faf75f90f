"""The query API under /v1: cases, alerts and their workflow, reviews, subjects, watch lists, users, access log.

`query_services` gives the endpoints their ports inside the API's lifespan and runs the
escalation of unacknowledged cases for as long as the process lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI

from services.api import admin, alerts, cases, reviews, subjects, watch
from services.api.auth import Authenticator
from services.api.common import QueryState
from services.api.ports import QueryPorts
from services.runtime.settings import Settings
from services.workflow.cases import run_escalation

router = APIRouter(prefix="/v1")
for module in (cases, alerts, reviews, subjects, watch, admin):
    router.include_router(module.router)


@contextlib.asynccontextmanager
async def query_services(app: FastAPI, settings: Settings, ports: QueryPorts, authenticator: Authenticator,
                         producer: Any) -> AsyncIterator[None]:
    """The endpoints' state on `ports` (built by the composition root, services/bootstrap.py) and the
    escalation loop on its workflow store; `producer` is the API's Kafka producer."""
    app.state.query = QueryState(ports, producer, authenticator, settings.live_poll_seconds)
    escalation = asyncio.create_task(run_escalation(
        ports.workflow, dt.timedelta(seconds=settings.alert_ack_timeout_seconds), settings.escalation_interval_seconds
    ))
    try:
        yield
    finally:
        escalation.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await escalation
