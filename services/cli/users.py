"""`riskwatch users`: users of the query API with the embedded bearer tokens (no OIDC provider)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import click

from services.api.auth import NATIONAL, Role, UserError, add_user, revoke_user
from services.runtime.state import load_settings
from services.runtime.settings import Settings

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
    token = with_database(lambda pool: add_user(pool, name, Role(role), scope, supervisor=supervisor))
    click.echo(f"created {role} {name}; the token below is shown once:", err=True)
    click.echo(token)


@users_command.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke a user's token at once."""
    if not with_database(lambda pool: revoke_user(pool, name)):
        raise click.ClickException(f"no active user called {name!r}")
    click.echo(f"revoked {name}")


@users_command.command("list")
def list_users() -> None:
    """Users, roles and scopes (never tokens)."""
    rows = with_database(lambda pool: pool.fetch(
        "SELECT name, role, scope, supervisor, revoked_at FROM app_user ORDER BY name"))
    for row in rows:
        flags = (" supervisor" if row["supervisor"] else "") + (" REVOKED" if row["revoked_at"] else "")
        click.echo(f"{row['name']}\t{row['role']}\t{','.join(row['scope']) or '-'}{flags}")


def with_database(action: Callable[[asyncpg.Pool], Awaitable[T]], settings: Settings | None = None) -> T:
    """`action` on a pool of the configured (or running embedded) database, migrated; a UserError is one line."""
    from services.adapters.postgres.pool import create_pool, migrate

    settings = settings or load_settings()
    if not settings.database_url:
        raise click.ClickException("no database: start `riskwatch up`, or set RISKWATCH_DATABASE_URL")

    async def run() -> T:
        pool = await create_pool(settings.database_url or "")
        try:
            await migrate(pool)
            return await action(pool)
        finally:
            await pool.close()

    try:
        return asyncio.run(run())
    except UserError as error:
        raise click.ClickException(str(error)) from None
