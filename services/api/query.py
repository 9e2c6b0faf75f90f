"""The query API under /v1: cases, alerts and their workflow, reviews, subjects, watch lists, users, access log.

`query_services` gives the endpoints their ports inside the API's lifespan and runs the
escalation of unacknowledged cases for as long as the process lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI

from services.api import admin, alerts, cases, reviews, subjects, watch
from services.api.auth import authenticator_for
from services.api.common import QueryState
from services.api.ports import QueryPorts
from services.runtime.settings import Settings
from services.workflow.cases import run_escalation

router = APIRouter(prefix="/v1")
for module in (cases, alerts, reviews, subjects, watch, admin):
    router.include_router(module.router)


@contextlib.asynccontextmanager
async def query_services(app: FastAPI, settings: Settings, pool: Any, producer: Any, *,
                         ports: QueryPorts | None = None) -> AsyncIterator[None]:
    """The endpoints' state on `ports` (the composition root's: services.adapters.postgres.reads.query_ports)
    and the escalation loop on its workflow store. `pool` still serves the authenticator (services/api/auth.py);
    `producer` is the API's Kafka producer."""
    if ports is None:
        ports = _postgres_ports(pool)
    app.state.query = QueryState(ports, producer, authenticator_for(settings, pool), settings.live_poll_seconds)
    escalation = asyncio.create_task(run_escalation(
        ports.workflow, dt.timedelta(seconds=settings.alert_ack_timeout_seconds), settings.escalation_interval_seconds
    ))
    try:
        yield
    finally:
        escalation.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await escalation


def _postgres_ports(pool: Any) -> QueryPorts:
    """Transitional, for callers that pass only the pool: the PostgreSQL ports. Remove once the
    composition root passes `ports` (this layer may not import the adapters)."""
    ports: QueryPorts = importlib.import_module("services.adapters.postgres.reads").query_ports(pool)
    return ports
