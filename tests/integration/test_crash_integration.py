"""Kill the worker with SIGKILL mid-stream, restart it, and prove nothing was lost or doubled.

The same few thousand events run twice through fresh stacks with the same pseudonym key: once
undisturbed, once with the worker killed at several points. Projections (digest), archive,
history and alerts must be identical, and every alert is published.

Events go in rounds (the k-th event of every subject), each round applied before the next:
one subject's events sit on several agency topics, and the order in which normalize merges
them is up to the broker's fetches, while alerts depend on arrival order. Rounds give both
runs the same arrival order, so any difference is the crash's doing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import time
from pathlib import Path

import asyncpg
import pytest

from projections.digest import document_digest
from schemas.codec import decode_published
from services.adapters.postgres.pool import create_pool
from services.api.auth import local_operator
from services.adapters.kafka import KafkaEventPublisher
from services.adapters.postgres.ingest import PostgresIngestRecords
from services.ingest.gateway import BULK_TIMEOUT_SECONDS, IngestGateway, Submission
from services.runtime.state import pseudonym_key
from services.bootstrap import started_stack
from services.runtime.stack import Stack
from services.tools.synthetic import generate
from services.tools.synthetic.records import AgencyEvent
from streams.kafka import cluster_id, new_producer
from tests.conftest import stack_settings
from tests.support.polling import until_blocking

pytestmark = pytest.mark.integration

KEY = "5ad1" * 16


def synthetic_rounds(subjects: int) -> list[list[bytes]]:
    """Round k holds the k-th event of every subject that has one."""
    by_subject: dict[str, list[bytes]] = {}
    for record in generate(subjects, 11, dt.date(2026, 1, 1), 6):
        if isinstance(record, AgencyEvent):
            subject = json.dumps(record.document["subject"], sort_keys=True)
            by_subject.setdefault(subject, []).append(record.to_json_line().encode())
    depth = max(len(events) for events in by_subject.values())
    return [[events[k] for events in by_subject.values() if k < len(events)] for k in range(depth)]


async def ingest_chunk(stack: Stack, lines: list[bytes]) -> None:
    pool = await create_pool(stack.settings.database_url)
    producer = new_producer(stack.settings)
    await producer.start()
    try:
        gateway = IngestGateway(PostgresIngestRecords(pool), KafkaEventPublisher(producer),
                                pseudonym_key(stack.settings), await cluster_id(stack.settings),
                                timeout=BULK_TIMEOUT_SECONDS)
        outcomes = await gateway.submit([Submission(line, "json", f"line {n}") for n, line in enumerate(lines)],
                                        local_operator())
    finally:
        await producer.stop()
        await pool.close()
    refused = [outcome for outcome in outcomes if outcome.status != "accepted"]
    assert not refused, refused[:3]


async def snapshot(stack: Stack) -> dict[str, object]:
    from tests.support.api import read_topic

    connection = await asyncpg.connect(stack.settings.database_url)
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        projections = await connection.fetch("SELECT subject, assessment FROM risk_projection")
        alerts = await connection.fetch("SELECT alert_id::text, trigger, level_after FROM alert ORDER BY alert_id")
        archive = await connection.fetchval("SELECT count(*) FROM event_archive")
        history = await connection.fetchval("SELECT count(*) FROM risk_history")
    finally:
        await connection.close()
    published = {decode_published("alerts.v1", record.value)["alert_id"]
                 for record in await read_topic(stack, "alerts.v1")}
    return {
        "digest": document_digest((row["subject"], row["assessment"]) for row in projections),
        "alerts": [tuple(row) for row in alerts],
        "archive": archive,
        "history": history,
        "published": sorted(published),
    }


def run(state_dir: Path, rounds: list[list[bytes]], kills: dict[int, float], *, workers: int = 1,
        restart: bool = True) -> dict[str, object]:
    """Ingest round by round; after round r in `kills`, wait kills[r] s and SIGKILL a worker (restarted if asked)."""
    settings = stack_settings(state_dir, pseudonym_key=KEY, batch_size=100)
    with started_stack(settings, workers=workers, api=False) as stack:
        for index, lines in enumerate(rounds):
            asyncio.run(ingest_chunk(stack, lines))
            if index in kills:
                if workers > 1:
                    until_blocking(lambda: all(assigned_partitions(stack, w.pid) > 0 for w in stack.workers),
                                   what="every worker holding partitions")
                time.sleep(kills[index])  # how far into the round's processing the kill strikes: the fault, no wait
                killed = stack.workers.pop()
                killed.send_signal(signal.SIGKILL)
                killed.wait()
                if restart:
                    stack.start_worker()
            asyncio.run(stack.wait_until_idle(timeout=180, settle=0.2))
        return asyncio.run(snapshot(stack))


def assigned_partitions(stack: Stack, pid: int) -> float:
    """The worker's own report of how many partitions it holds (its /metrics)."""
    import httpx

    from services.runtime.metrics import port_file

    path = port_file(stack.settings.state_dir, pid)
    if not path.exists() or not (port := path.read_text().strip()):
        return 0.0
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("riskwatch_assigned_partitions"))


@pytest.fixture(scope="module")
def rounds() -> list[list[bytes]]:
    return synthetic_rounds(450)


@pytest.fixture(scope="module")
def undisturbed(rounds: list[list[bytes]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return run(tmp_path_factory.mktemp("undisturbed"), rounds, kills={})


def assert_same_effects(crashed: dict[str, object], undisturbed: dict[str, object], events: int) -> None:
    assert crashed["archive"] == undisturbed["archive"] == events
    assert crashed["history"] == undisturbed["history"]
    assert crashed["digest"] == undisturbed["digest"]
    assert crashed["alerts"] == undisturbed["alerts"]
    assert len(undisturbed["alerts"]) > 50
    assert crashed["published"] == sorted(alert[0] for alert in crashed["alerts"])


def test_sigkill_at_several_points_loses_and_duplicates_nothing(rounds, undisturbed, tmp_path: Path) -> None:
    events = sum(len(lines) for lines in rounds)
    assert events >= 2000
    # killed while a round is being normalized, while its batches are applied, and once settled
    crashed = run(tmp_path / "crashed", rounds, kills={0: 0.3, 1: 1.0, 3: 2.5})
    assert_same_effects(crashed, undisturbed, events)


def test_two_workers_share_partitions_and_one_takes_over_from_a_killed_one(rounds, undisturbed,
                                                                          tmp_path: Path) -> None:
    events = sum(len(lines) for lines in rounds)
    survivor = run(tmp_path / "scale-out", rounds, kills={1: 0.5}, workers=2, restart=False)
    assert_same_effects(survivor, undisturbed, events)
