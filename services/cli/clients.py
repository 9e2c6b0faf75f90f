"""`riskwatch clients`: agency systems allowed to submit events, and how `riskwatch ingest` is one."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from services import bootstrap
from services.api.auth import ClientDirectory, add_client, client_authenticator_for, revoke_client
from services.cli.users import with_port
from services.ingest.clients import AgencyClient, local_operator
from services.runtime.settings import Settings
from services.runtime.state import RUNTIME_FILE
from streams.topology import AGENCIES

T = TypeVar("T")


def with_clients(action: Callable[[ClientDirectory], Awaitable[T]], settings: Settings | None = None) -> T:
    """`action` on the client directory of the configured (or running embedded) database, migrated."""
    return with_port(bootstrap.client_directory, action, settings)


@click.group("clients")
def clients_command() -> None:
    """Agency systems that submit events (POST /v1/events, riskwatch ingest) and their tokens."""


@clients_command.command("add")
@click.argument("name")
@click.option("--agency", type=click.Choice(AGENCIES), required=True, help="The only agency it submits events of.")
@click.option("--units", required=True, metavar="UNIT,UNIT",
              help="Comma-separated units it submits for (the events' `unit`), e.g. 'Polisen Region Syd'.")
def add(name: str, agency: str, units: str) -> None:
    """Register an agency system and print its token: shown this once, only its hash is kept."""
    token = with_clients(lambda clients: add_client(clients, name, agency, units.split(",")))
    click.echo(f"created {agency} client {name}; the token below is shown once:", err=True)
    click.echo(token)


@clients_command.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke a client's token at once."""
    if not with_clients(lambda clients: revoke_client(clients, name)):
        raise click.ClickException(f"no active client called {name!r}")
    click.echo(f"revoked {name}")


@clients_command.command("list")
def list_clients() -> None:
    """Clients, agencies and units (never tokens)."""
    for entry in with_clients(lambda clients: clients.clients()):
        click.echo(f"{entry.name}\t{entry.agency}\t{','.join(sorted(entry.units))}"
                   + (" REVOKED" if entry.revoked else ""))


def ingesting_client(settings: Settings, token: str | None, as_operator: bool) -> AgencyClient:
    """Who `riskwatch ingest` submits as: the client of the token, or the local operator."""
    if as_operator:
        if token:
            raise click.UsageError("--as-operator or --token, not both")
        if not _local_stack(settings):
            raise click.UsageError("--as-operator: only against the embedded stack running from this state dir; "
                                   "elsewhere ingest with an agency client's --token")
        operator = local_operator()
        click.echo(f"ingesting as {operator.name}: every agency and unit allowed, recorded under that name", err=True)
        return operator
    if not token:
        raise click.UsageError("--token (or RISKWATCH_CLIENT_TOKEN): the token of an agency client from "
                               "`riskwatch clients add`; or --as-operator on the local embedded stack")
    async def authenticate(clients: ClientDirectory) -> AgencyClient | None:
        return await client_authenticator_for(settings, clients).authenticate(token)

    client = with_clients(authenticate, settings)
    if client is None:
        raise click.ClickException("--token: not an agency client's token, or revoked")
    return client


def _local_stack(settings: Settings) -> bool:
    """Whether the configured stack is the embedded one recorded in the state dir by `riskwatch up`."""
    running = settings.state_dir / RUNTIME_FILE
    if not running.exists():
        return False
    recorded = json.loads(running.read_text())
    return bool(recorded.get("database_url") == settings.database_url
                and recorded.get("kafka_bootstrap_servers") == settings.kafka_bootstrap_servers)
