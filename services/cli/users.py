"""`riskwatch users`: users of the query API with the embedded bearer tokens (no OIDC provider)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import click

from services import bootstrap
from services.api.auth import NATIONAL, Role, StoreUnavailable, UserDirectory, UserError, add_user, revoke_user
from services.runtime.settings import Settings
from services.runtime.state import load_settings

T = TypeVar("T")


@click.group("users")
def users_command() -> None:
    """Users of the query API and their bearer tokens."""


@users_command.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--scope", multiple=True, metavar="REGION|UNIT",
              help=f"Repeatable. Analysts: police regions (or {NATIONAL}); probation officers: caseload units.")
@click.option("--supervisor", is_flag=True, help="Also receives escalated alerts of the scope.")
def add(name: str, role: str, scope: tuple[str, ...], supervisor: bool) -> None:
    """Create a user and print the bearer token: it is shown this once, only its hash is kept."""
    token = with_users(lambda users: add_user(users, name, Role(role), scope, supervisor=supervisor))
    click.echo(f"created {role} {name}; the token below is shown once:", err=True)
    click.echo(token)


@users_command.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke a user's token at once."""
    if not with_users(lambda users: revoke_user(users, name)):
        raise click.ClickException(f"no active user called {name!r}")
    click.echo(f"revoked {name}")


@users_command.command("list")
def list_users() -> None:
    """Users, roles and scopes (never tokens)."""
    for entry in with_users(lambda users: users.users()):
        flags = (" supervisor" if entry.supervisor else "") + (" REVOKED" if entry.revoked else "")
        click.echo(f"{entry.name}\t{entry.role.value}\t{','.join(sorted(entry.scope)) or '-'}{flags}")


P = TypeVar("P")


def with_users(action: Callable[[UserDirectory], Awaitable[T]], settings: Settings | None = None) -> T:
    """`action` on the user directory of the configured (or running embedded) database, migrated."""
    return with_port(bootstrap.user_directory, action, settings)


def with_port(open_port: Callable[[Settings], AbstractAsyncContextManager[P]], action: Callable[[P], Awaitable[T]],
              settings: Settings | None = None) -> T:
    """`action` on a port the composition root opens on the configured stack; a UserError is one line."""
    settings = settings or load_settings()
    if not settings.database_url:
        raise click.ClickException("no database: start `riskwatch up`, or set RISKWATCH_DATABASE_URL")

    async def run() -> T:
        async with open_port(settings) as port:
            return await action(port)

    try:
        return asyncio.run(run())
    except UserError as error:
        raise click.ClickException(str(error)) from None
    except StoreUnavailable as error:
        raise click.ClickException(f"RISKWATCH_DATABASE_URL: the database did not answer ({error})") from None


__all__ = ["users_command", "with_port", "with_users"]
