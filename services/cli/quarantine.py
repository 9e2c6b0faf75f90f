"""`riskwatch quarantine`: records a stage set aside because of their content; list and retry them."""

from __future__ import annotations

import asyncio
from typing import Sequence

import click

from projections.quarantine import QuarantineEntry
from services.adapters.postgres.pool import create_pool
from services.adapters.postgres.quarantine import PostgresQuarantine
from services.runtime.state import load_settings
from services.runtime.settings import Settings
from streams.kafka import new_producer


@click.group("quarantine")
def quarantine_command() -> None:
    """Records the stream stages could not process because of their content."""


@quarantine_command.command("list")
@click.option("--all", "include_retried", is_flag=True, help="Also the records already retried.")
def list_quarantined(include_retried: bool) -> None:
    """Quarantined records, oldest first, with stage, position and reason."""
    entries = asyncio.run(_entries(load_settings(), include_retried))
    for entry in entries:
        retried = f"  retried {entry.retried_at:%Y-%m-%d %H:%M:%S}" if entry.retried_at else ""
        click.echo(f"{entry.id}  {entry.quarantined_at:%Y-%m-%d %H:%M:%S}  {entry.stage}  "
                   f"{entry.topic}[{entry.partition}]@{entry.offset}  event {entry.event_id or '-'}  "
                   f"{entry.reason_class}: {entry.reason}{retried}")
    click.echo(f"{len(entries)} record(s)" + ("" if include_retried else " waiting for a retry"), err=True)


@quarantine_command.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every record not retried yet.")
def retry(ids: tuple[int, ...], every: bool) -> None:
    """Send quarantined records back to the topic they came from, once their cause is fixed.

    The stage processes each one again; one that fails again is quarantined again, as a new row.
    """
    if bool(ids) == every:
        raise click.UsageError("name the records to retry (their ids) or give --all")
    sent = asyncio.run(retry_quarantined(load_settings(), None if every else ids))
    for entry in sent:
        click.echo(f"{entry.id}  sent back to {entry.topic}  event {entry.event_id or '-'}")
    missing = sorted(set(ids) - {entry.id for entry in sent})
    if missing:
        raise click.ClickException(f"not in quarantine or already retried: {', '.join(map(str, missing))}")


async def _entries(settings: Settings, include_retried: bool) -> list[QuarantineEntry]:
    assert settings.database_url, "no database configured: start `riskwatch up` or set RISKWATCH_DATABASE_URL"
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        return await PostgresQuarantine(pool).entries(include_retried=include_retried)
    finally:
        await pool.close()


async def retry_quarantined(settings: Settings, ids: Sequence[int] | None) -> list[QuarantineEntry]:
    """Republish the named records (None: every one not retried yet), then mark them retried.

    Marked only once the broker has them: a retry cut short is retried again, and the stages
    recognise an event they already applied by its id.
    """
    assert settings.database_url, "no database configured: start `riskwatch up` or set RISKWATCH_DATABASE_URL"
    pool = await create_pool(settings.database_url, max_size=1)
    producer = new_producer(settings)
    await producer.start()
    try:
        entries = await PostgresQuarantine(pool).entries(ids=ids)
        sends = [await producer.send(entry.topic, entry.record, key=entry.key) for entry in entries]
        await asyncio.gather(*sends)
        await PostgresQuarantine(pool).mark_retried([entry.id for entry in entries])
        return entries
    finally:
        await producer.stop()
        await pool.close()
