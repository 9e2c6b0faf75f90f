"""The `riskwatch` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from services.cli.batch import batch_command, demo_command, evaluate_command
from services.cli.bench import bench_command
from services.cli.clients import clients_command, ingesting_client
from services.cli.errors import NoStackError, unexpected_error, user_error
from services.cli.generate import generate_command
from services.cli.quarantine import quarantine_command
from services.cli.users import users_command
from services.runtime.state import RUNTIME_FILE, load_settings
from services.runtime.settings import Settings

if TYPE_CHECKING:
    from projections.policy import Policy
    from services.ingest.clients import AgencyClient
    from services.runtime.rebuild import RebuildResult
    from services.runtime.stack import Stack


class _Riskwatch(click.Group):
    """Errors a user can cause end in one line naming what to change; `--debug` shows the traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(user_error(error) or unexpected_error(error)) from None


@click.group(cls=_Riskwatch, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="riskwatch", prog_name="riskwatch")
@click.option("--debug", is_flag=True, help="Show the traceback of an error instead of one line.")
def main(debug: bool) -> None:
    """Riskwatch: live, explainable risk projections of high-risk perpetrators from agency events."""


main.add_command(generate_command)
main.add_command(users_command)
main.add_command(clients_command)
main.add_command(batch_command)
main.add_command(evaluate_command)
main.add_command(demo_command)
main.add_command(bench_command)
main.add_command(quarantine_command)


def _stack_settings(*, broker: bool = True) -> Settings:
    """The configured stack, or the running `riskwatch up`; none is a user's error, not an assertion."""
    settings = load_settings()
    missing = [variable for variable, unset in (
        ("RISKWATCH_KAFKA_BOOTSTRAP_SERVERS", broker and settings.embedded_broker),
        ("RISKWATCH_DATABASE_URL", settings.embedded_database)) if unset]
    if missing:
        raise NoStackError(f"no stack to work on: start `riskwatch up` (state dir {settings.state_dir}), "
                           f"or set {' and '.join(missing)}")
    return settings


def _policy(settings: Settings) -> Policy:
    from services.bootstrap import policy

    return policy(settings)


@main.command()
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True, help="Stream worker processes.")
def up(workers: int) -> None:
    """Start the whole stack in the foreground; Ctrl-C stops everything."""
    from services.bootstrap import started_stack

    settings = Settings()
    _refuse_second_stack(settings)
    with started_stack(settings, workers=workers) as stack:
        _print_stack(stack)
        failure = _supervise(stack)
    if failure is not None:
        click.echo(f"riskwatch stopped: {failure}", err=True)
        sys.exit(1)
    click.echo("riskwatch stopped")


def _refuse_second_stack(settings: Settings) -> None:
    running = settings.state_dir / RUNTIME_FILE
    if running.exists():
        pid = json.loads(running.read_text()).get("pid")
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(pid, 0)
            raise click.ClickException(f"a stack already runs from {settings.state_dir} (pid {pid})")
        running.unlink()


DATABASE_GIVE_UP_SECONDS = 60.0  # an embedded PostgreSQL that cannot be started again for this long


def _supervise(stack: Stack) -> str | None:
    """Until Ctrl-C or SIGTERM (None), or why it gave up.

    A worker that dies is restarted (it resumes from the tracked offsets); so is the embedded
    PostgreSQL, on the same data dir and socket: workers and API retry their connections
    meanwhile and carry on once it recovered.
    """
    stop: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    restarts: list[float] = []
    database_down_since: float | None = None
    while not stop:
        if stack.database is not None and not stack.database.alive():
            now = time.monotonic()
            if database_down_since is None:
                database_down_since = now
                click.echo("the embedded PostgreSQL stopped; starting it again", err=True)
            try:
                stack.database.restart()
            except Exception as error:  # not yet (e.g. the old server not gone): try again shortly
                if now - database_down_since > DATABASE_GIVE_UP_SECONDS:
                    return f"the embedded PostgreSQL could not be started again ({error})"
                time.sleep(1.0)
                continue
            click.echo(f"the embedded PostgreSQL runs again after {now - database_down_since:.1f} s", err=True)
            database_down_since = None
        if stack.api is not None and stack.api.poll() is not None:
            return f"the API exited with code {stack.api.returncode}"
        for index, process in enumerate(stack.workers):
            if process.poll() is None:
                continue
            restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
            if len(restarts) > 5:
                return "workers keep failing (more than 5 restarts a minute)"
            click.echo(f"worker {index + 1} exited with code {process.returncode}; restarting it", err=True)
            stack.workers[index] = stack.start_worker_process(index + 1)
        time.sleep(0.2)
    click.echo("stopping...")
    return None


def _print_stack(stack: Stack) -> None:
    settings = stack.settings
    rows = [
        ("broker", f"{settings.kafka_bootstrap_servers}" + (" (embedded, in memory)" if stack.broker else "")),
        ("database", _redact(settings.database_url or "") + (" (embedded)" if stack.database else "")),
        ("stream workers", f"{len(stack.workers)} (normalize, risk, outbox relay, scheduler)"),
        ("ingest", f"POST {stack.api_url}/v1/events   or   riskwatch ingest --as-operator FILE.jsonl"),
        ("API docs", f"{stack.api_url}/docs"),
        ("health", f"{stack.api_url}/healthz  {stack.api_url}/readyz"),
        ("state and logs", str(settings.state_dir)),
    ]
    width = max(len(name) for name, _ in rows)
    click.echo("riskwatch is up")
    for name, value in rows:
        click.echo(f"  {name.ljust(width)}  {value}")
    click.echo("Ctrl-C stops everything.")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


@main.command()
def worker() -> None:
    """Run one stream worker (normalize, risk, outbox relay, scheduler) against the configured stack."""
    from faust.worker import Worker

    from services import bootstrap
    from services.runtime.logs import logging_config

    settings = _stack_settings()
    app, _ = bootstrap.worker(settings, _policy(settings))
    runner = Worker(app, loglevel=settings.log_level, quiet=True,
                    logging_config=logging_config(settings.log_format, settings.log_level))
    # faust's terminal spinner would lower the root logger to DEBUG to spin on every record:
    # every client library's debug message formatted, and escape codes in the log file.
    runner.spinner = None
    runner.execute_from_commandline()


@main.command()
@click.option("--port", type=int, default=None, help="Port (default: the configured one).")
def serve(port: int | None) -> None:
    """Run the HTTP API (ingest, queries, live alerts, health, metrics) against the configured stack."""
    import uvicorn

    from services.bootstrap import api
    from services.runtime.logs import logging_config

    settings = _stack_settings()
    uvicorn.run(api(settings), host=settings.http_host, port=port or settings.http_port or 8080,
                log_config=logging_config(settings.log_format, settings.log_level),
                log_level=settings.log_level.lower())


@main.command()
def migrate() -> None:
    """Apply database migrations and create the topics."""
    from services.bootstrap import prepare

    applied = asyncio.run(prepare(_stack_settings()))
    click.echo("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


@main.command()
@click.argument("file", type=click.File("rb"))
@click.option("--chunk", type=click.IntRange(1, 100_000), default=2000, show_default=True,
              help="Events published per broker round trip.")
@click.option("--token", envvar="RISKWATCH_CLIENT_TOKEN", default=None,
              help="The agency client's token (`riskwatch clients add`); env RISKWATCH_CLIENT_TOKEN.")
@click.option("--as-operator", is_flag=True,
              help="Submit as the local operator (any agency, any unit), recorded under your login name; "
                   "only against the embedded stack of this state dir.")
@click.option("--backfill", is_flag=True,
              help="Load history: the file's events update projections and history, but none of their alerts "
                   "pages anyone (no case, no live feed, no escalation), however recent.")
def ingest(file: click.utils.LazyFile, chunk: int, token: str | None, as_operator: bool, backfill: bool) -> None:
    """Ingest a JSON Lines file through the gateway: bad lines are reported, good ones published."""
    from services.runtime.progress import count_lines, progress_bar

    settings = load_settings()
    client = ingesting_client(settings, token, as_operator)
    with progress_bar(f"ingest {Path(file.name).name}", count_lines(file.name)):
        totals = asyncio.run(_ingest(settings, client, file, chunk, sys.stderr, backfill=backfill))
    click.echo(f"accepted {totals['accepted']}, duplicates {totals['duplicate']}, rejected {totals['rejected']}"
               + (f", unavailable {totals['unavailable']} (retry)" if totals["unavailable"] else ""))
    if backfill:
        click.echo("backfill: the accepted events are history; their alerts are recorded and page no one")
    if totals["rejected"] or totals["unavailable"]:
        sys.exit(1)


async def _ingest(settings: Settings, client: AgencyClient, file: click.utils.LazyFile, chunk: int,
                  errors: TextIO, *, backfill: bool = False) -> dict[str, int]:
    from services.bootstrap import open_gateway
    from services.ingest.gateway import submit_lines
    from services.runtime.progress import advance

    totals = {"accepted": 0, "duplicate": 0, "rejected": 0, "unavailable": 0}
    try:
        async with open_gateway(settings, client) as gateway:
            for lines in _chunks(enumerate(file, start=1), chunk):
                if backfill:  # marked before they are sent, so that no worker pages them first
                    await gateway.records.record_backfill(_event_ids(line for _, line in lines))
                async for outcomes in submit_lines(gateway, lines, Path(file.name).name, chunk):
                    for outcome in outcomes:
                        totals[outcome.status] += 1
                        for error in outcome.errors:
                            errors.write(f"{outcome.source}: {error.field}: {error.reason}\n")
                    advance(len(outcomes))
    except NoStackError as error:
        raise click.ClickException(str(error)) from None
    return totals


def _chunks(lines: Iterable[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for numbered in lines:
        chunk.append(numbered)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _event_ids(lines: Iterable[bytes]) -> list[str]:
    """The event ids the lines name; a line without a valid one is refused by the gateway anyway."""
    ids = []
    for line in lines:
        try:
            ids.append(str(uuid.UUID(str(json.loads(line)["event_id"]))))
        except (ValueError, KeyError, TypeError):
            continue
    return ids


@main.command()
def asyncapi() -> None:
    """Print the AsyncAPI 3.0 document of every topic (JSON), as the API serves it at /asyncapi.json."""
    from services.api.asyncapi import asyncapi_document

    click.echo(json.dumps(asyncapi_document(Settings()), indent=2, ensure_ascii=False))


@main.command()
def rebuild() -> None:
    """Recompute every projection from the event archive and compare with the live ones."""
    result, live = asyncio.run(_rebuild(_stack_settings(broker=False)))  # a bar counts the archived events
    click.echo(f"rebuilt {result.subjects} projections from {result.events} events in {result.seconds:.2f} s "
               f"({result.events_per_second:,.0f} events/s)")
    click.echo(f"rebuild digest {result.digest}")
    click.echo(f"live digest    {live}")
    if result.digest != live:
        click.echo("the live projections differ from the rebuild", err=True)
        sys.exit(1)
    click.echo("identical")


async def _rebuild(settings: Settings) -> tuple[RebuildResult, str]:
    from services.bootstrap import store as open_store
    from services.runtime.progress import progress_bar
    from services.runtime.rebuild import live_digest, rebuild as run_rebuild

    policy = _policy(settings)
    async with open_store(settings) as store:
        with progress_bar("rebuild", await store.archived_count()):
            result = await run_rebuild(store, policy)
        return result, await live_digest(store)


if __name__ == "__main__":
    main()
