"""`riskwatch quarantine`: records a stage set aside because of their content; list and retry them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import click

from projections.quarantine import QuarantineEntry
from services import bootstrap
from services.ingest.ports import OutgoingRecord
from services.runtime.settings import Settings
from services.runtime.state import load_settings

# How long the broker may take to acknowledge the records sent back.
RETRY_TIMEOUT_SECONDS = 120.0


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
    async with bootstrap.quarantine(settings) as quarantine:
        return await quarantine.entries(include_retried=include_retried)


async def retry_quarantined(settings: Settings, ids: Sequence[int] | None) -> list[QuarantineEntry]:
    """Republish the named records (None: every one not retried yet), then mark them retried.

    Marked only once the broker has them: a retry cut short is retried again, and the stages
    recognise an event they already applied by its id.
    """
    async with bootstrap.quarantine(settings) as quarantine, bootstrap.publisher(settings) as publisher:
        entries = await quarantine.entries(ids=ids)
        deliveries = await publisher.publish(
            [OutgoingRecord(entry.topic, entry.key, entry.record, []) for entry in entries],
            RETRY_TIMEOUT_SECONDS)
        if not all(delivery.acknowledged for delivery in deliveries):
            raise click.ClickException("the broker did not acknowledge every record sent back; nothing is marked "
                                       "retried: retry again")
        await quarantine.mark_retried([entry.id for entry in entries])
        return entries
