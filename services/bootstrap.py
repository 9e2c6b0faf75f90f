"""The composition root: builds the worker, the API, the gateway and the CLI commands from Settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import faust

    from projections.policy import Policy
    from services.runtime.settings import Settings
    from services.worker import WorkerPorts, WorkerRuntime


async def worker_ports(settings: Settings) -> WorkerPorts:
    """The worker's ports on PostgreSQL: one pool for the risk store, the outbox, the quarantine, the reviews."""
    from services.adapters.postgres.casework import PostgresReviews
    from services.adapters.postgres.outbox import PostgresOutbox
    from services.adapters.postgres.pool import create_pool
    from services.adapters.postgres.quarantine import PostgresQuarantine
    from services.adapters.postgres.store import Store
    from services.worker import WorkerPorts

    assert settings.database_url, "no database configured"
    pool = await create_pool(settings.database_url)
    # the risk store is the gateway's Store too: code given the worker's store may still submit through it
    return WorkerPorts(risk=Store(pool), outbox=PostgresOutbox(pool), quarantine=PostgresQuarantine(pool),
                       reviews=PostgresReviews(pool), close=pool.close)


def worker(settings: Settings, policy: Policy | None = None) -> tuple[faust.App, WorkerRuntime]:
    """The stream worker (services/worker.py) on the PostgreSQL adapters; the policy is the settings' unless given."""
    from projections.policy import default_policy, load_policy
    from services.worker import build_worker

    if policy is None:
        policy = load_policy(settings.policy_file) if settings.policy_file else default_policy()
    return build_worker(settings, policy, worker_ports)
