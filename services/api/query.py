"""The query API under /v1: cases, alerts and their workflow, reviews, subjects, watch lists, users, access log.

`query_services` opens what the endpoints need inside the API's lifespan and runs the
escalation of unacknowledged cases for as long as the process lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI

from services.api import admin, alerts, cases, reviews, subjects, watch
from services.workflow.cases import run_escalation
from services.api.auth import authenticator_for
from services.api.common import QueryState
from services.runtime.settings import Settings

router = APIRouter(prefix="/v1")
for module in (cases, alerts, reviews, subjects, watch, admin):
    router.include_router(module.router)


@contextlib.asynccontextmanager
async def query_services(app: FastAPI, settings: Settings, pool: asyncpg.Pool,
                         producer: AIOKafkaProducer) -> AsyncIterator[None]:
    app.state.query = QueryState(pool, producer, authenticator_for(settings, pool), settings.live_poll_seconds)
    escalation = asyncio.create_task(run_escalation(
        pool, dt.timedelta(seconds=settings.alert_ack_timeout_seconds), settings.escalation_interval_seconds
    ))
    try:
        yield
    finally:
        escalation.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await escalation
