"""`riskwatch demo`: the embedded stack with synthetic events flowing in and alerts printed as they come.

The demo owns a directory of its own under the state dir and starts it empty each time, so a
second run shows the same story again instead of a log of duplicates. The synthetic window
ends at the start of the current month, so event times lie in the recent past, as a live feed
would have them. The review scheduler stays off: it runs on the wall clock, and months of
replayed events would make every review fall due at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from services.adapters.postgres.pool import create_pool
from services.api.auth import NATIONAL, Role, add_user, local_operator
from services.ingest.gateway import IngestGateway, Submission, open_gateway
from services.runtime.state import RUNTIME_FILE
from services.runtime.settings import Settings
from services.runtime.stack import Stack, started_stack
from services.tools.synthetic import add_months, subject_histories
from services.tools.synthetic.units import TOWNS
from streams.kafka import client_options
from streams.topology import ALERTS

DEMO_DIR = "demo"
PROGRESS_EVERY_SECONDS = 10.0

Echo = Callable[[str], None]

# One console user per role, made afresh with the demo's database; supervisors, so that the
# escalated alerts show too. The probation officer has every synthetic probation office.
CONSOLE_USERS = (
    ("demo.analyst", Role.INTELLIGENCE_ANALYST, (NATIONAL,)),
    ("demo.probation", Role.PROBATION_OFFICER, tuple(sorted({town.probation for town in TOWNS}))),
    ("demo.operator", Role.OPERATOR, ()),
    ("demo.admin", Role.ADMIN, ()),
)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    subjects: int
    seed: int
    months: int
    rate: float  # events per second


@dataclass(frozen=True, slots=True)
class FeedEvent:
    recorded_time: dt.datetime
    line: bytes


class DemoAlreadyRunning(RuntimeError):
    pass


def demo_settings(settings: Settings) -> Settings:
    """A fresh embedded stack in <state dir>/demo; the scheduler off (see the module docstring)."""
    state_dir = settings.state_dir / DEMO_DIR
    running = state_dir / RUNTIME_FILE
    if running.exists():
        pid = json.loads(running.read_text()).get("pid")
        if isinstance(pid, int) and _alive(pid):
            raise DemoAlreadyRunning(f"a demo already runs from {state_dir} (pid {pid})")
    shutil.rmtree(state_dir, ignore_errors=True)
    return settings.model_copy(update={
        "state_dir": state_dir, "kafka_bootstrap_servers": None, "database_url": None, "scheduler_enabled": False,
    })


def feed(options: DemoOptions, today: dt.date) -> list[FeedEvent]:
    """The synthetic population's events in the order the agencies recorded them, across subjects."""
    end = today.replace(day=1)
    start = add_months(end, -options.months)
    events = [
        FeedEvent(dt.datetime.fromisoformat(str(event.document["recorded_time"])), event.to_json_line().encode())
        for history in subject_histories(options.subjects, options.seed, start, options.months)
        for event in history.events
    ]
    return sorted(events, key=lambda event: event.recorded_time)


def run_demo(settings: Settings, options: DemoOptions, echo: Echo) -> None:
    """Until SIGINT or SIGTERM: stream the feed at the chosen pace and print every alert."""
    events = feed(options, dt.date.today())
    with started_stack(settings, workers=1, api=True) as stack:
        tokens = asyncio.run(_console_users(stack.settings))
        _banner(stack, options, len(events), tokens, echo)
        asyncio.run(_run(stack, events, options.rate, echo))
        # A second Ctrl-C must not cut the orderly shutdown of the stack short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        echo("stopping...")


async def _run(stack: Stack, events: list[FeedEvent], rate: float, echo: Echo) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    shown: set[str] = set()
    tasks = [asyncio.create_task(_stream(stack, events, rate, shown, echo)),
             asyncio.create_task(_show_alerts(stack.settings, shown, echo))]
    stopped = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a feed or alert reader that failed says why
        await stopped
    finally:
        for task in (*tasks, stopped):
            task.cancel()
        await asyncio.gather(*tasks, stopped, return_exceptions=True)


async def _stream(stack: Stack, events: list[FeedEvent], rate: float, shown: set[str], echo: Echo) -> None:
    if not events:
        echo("the synthetic population recorded no events in its window; try more subjects")
        return
    async with open_gateway(stack.settings, local_operator()) as gateway:
        # The worker needs some seconds to join its consumer group. Events sent meanwhile would
        # pile up and reach it all at once, out of the pace (and, across agencies, out of order).
        echo("waiting for the stream worker to start...")
        await _submit(gateway, events[0], 0, echo)
        await stack.wait_until_idle()
        started = last_progress = time.monotonic()
        for index, event in enumerate(events[1:], start=1):
            await asyncio.sleep(max(0.0, started + (index - 1) / rate - time.monotonic()))
            await _submit(gateway, event, index, echo)
            if time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
                last_progress = time.monotonic()
                echo(f"  ... {index + 1} of {len(events)} events sent (recorded up to "
                     f"{event.recorded_time:%Y-%m-%d}), {len(shown)} alerts so far")
    echo(f"all {len(events)} events sent, {len(shown)} alerts so far. The stack keeps running for you to explore "
         f"the API; Ctrl-C stops everything.")


async def _submit(gateway: IngestGateway, event: FeedEvent, index: int, echo: Echo) -> None:
    for outcome in await gateway.submit([Submission(event.line, "json", f"demo:{index + 1}")]):
        for error in outcome.errors:
            echo(f"  refused {outcome.source}: {error.field}: {error.reason}")


async def _show_alerts(settings: Settings, shown: set[str], echo: Echo) -> None:
    consumer = AIOKafkaConsumer(ALERTS, **client_options(settings), group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        async for message in consumer:
            alert = json.loads(message.value)
            if alert["alert_id"] in shown:  # the outbox relay may publish an alert twice
                continue
            shown.add(alert["alert_id"])
            echo(format_alert(alert))
    finally:
        await consumer.stop()


def format_alert(alert: dict[str, Any]) -> str:
    """Two lines: when, priority, trigger, subject and audience; then the explanation."""
    happened = dt.datetime.fromtimestamp(alert["event_time"] / 1000, tz=dt.timezone.utc)
    audience = alert["audience"]
    where = audience["region"] or "region withheld (protected victim)"
    if audience["caseload"]:
        where += f", caseload {audience['caseload']}"
    return (f"ALERT {happened:%Y-%m-%d %H:%M} UTC  priority {alert['priority']}  {alert['trigger']}  "
            f"{alert['subject'][:15]}…  {alert['level_before']} -> {alert['level_after']}  {where}\n"
            f"      {alert['explanation']}")


async def _console_users(settings: Settings) -> list[tuple[str, Role, str]]:
    """The demo's users and their sign-in tokens."""
    assert settings.database_url, "the demo stack runs its own database"
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        return [(name, role, await add_user(pool, name, role, scope, supervisor=role != Role.OPERATOR))
                for name, role, scope in CONSOLE_USERS]
    finally:
        await pool.close()


def _banner(stack: Stack, options: DemoOptions, events: int, tokens: list[tuple[str, Role, str]],
            echo: Echo) -> None:
    state_dir = stack.settings.state_dir
    echo("riskwatch demo is up")
    echo(f"  console    {stack.api_url}/console/   sign in with a token below (valid for this demo run)")
    for name, role, token in tokens:
        echo(f"    {role.value:<22} {name:<16} {token}")
    echo(f"  API        {stack.api_url}   (interactive docs: {stack.api_url}/docs)")
    echo(f"  ingest     POST {stack.api_url}/v1/events   or   RISKWATCH_STATE_DIR={state_dir} riskwatch ingest --as-operator FILE")
    echo(f"  logs       {state_dir / 'logs'}")
    echo(f"  feed       {events} synthetic events of {options.subjects} subjects (seed {options.seed}), "
         f"{options.rate:g} a second")
    echo("Alerts follow as the stream workers raise them. Ctrl-C stops everything.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process holds the pid
    return True
