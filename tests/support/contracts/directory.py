"""The contracts of UserDirectory and ClientDirectory (services.api.auth), for PostgreSQL and the twins.

A subclass provides the `users` and `clients` fixtures. The database is shared: each test
makes names of its own and looks only at those.
"""

from __future__ import annotations

import secrets
import uuid

import pytest

from services.api.auth import (
    ClientAuthenticator,
    ClientDirectory,
    DuplicateName,
    Principal,
    Role,
    TokenAuthenticator,
    UserDirectory,
    UserError,
    add_client,
    add_user,
    revoke_client,
    revoke_user,
    token_hash,
)
from services.ingest.clients import AgencyClient


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class UserDirectoryContract:
    async def test_a_user_is_found_by_token_until_revoked(self, users: UserDirectory) -> None:
        name = unique("analyst")
        token = await add_user(users, name, Role.INTELLIGENCE_ANALYST, ["syd", "vast"], supervisor=True)
        authenticator = TokenAuthenticator(users)
        assert await authenticator.authenticate(token) == Principal(
            name, Role.INTELLIGENCE_ANALYST, frozenset({"syd", "vast"}), True)
        assert await authenticator.authenticate(token + "x") is None
        assert await revoke_user(users, name)
        assert not await revoke_user(users, name), "revoked once"
        assert not await revoke_user(users, unique("nobody"))
        assert await authenticator.authenticate(token) is None

    async def test_a_name_is_taken_once(self, users: UserDirectory) -> None:
        name = unique("operator")
        await add_user(users, name, Role.OPERATOR, [])
        with pytest.raises(UserError, match="exists already"):
            await add_user(users, name, Role.ADMIN, [])
        await revoke_user(users, name)
        with pytest.raises(UserError, match="exists already"):
            await add_user(users, name, Role.OPERATOR, [])

    async def test_the_same_token_hash_is_refused(self, users: UserDirectory) -> None:
        hashed = token_hash(secrets.token_hex(16))
        await users.add_user(unique("admin"), Role.ADMIN, frozenset(), False, hashed)
        with pytest.raises(DuplicateName):
            await users.add_user(unique("admin"), Role.ADMIN, frozenset(), False, hashed)

    async def test_users_are_listed_by_name_with_their_revocation(self, users: UserDirectory) -> None:
        prefix = unique("list")
        names = [f"{prefix}-b", f"{prefix}-a", f"{prefix}-c"]
        for name in names:
            await add_user(users, name, Role.PROBATION_OFFICER, ["Kriminalvården Frivård Malmö"])
        await revoke_user(users, names[0])
        listed = [entry for entry in await users.users() if entry.name.startswith(prefix)]
        assert [entry.name for entry in listed] == sorted(names)
        assert [entry.revoked for entry in listed] == [False, True, False]
        assert listed[0].scope == frozenset({"Kriminalvården Frivård Malmö"})
        assert listed[0].role == Role.PROBATION_OFFICER


class ClientDirectoryContract:
    async def test_a_client_is_found_by_token_until_revoked(self, clients: ClientDirectory) -> None:
        name = unique("police")
        token = await add_client(clients, name, "police", ["Polisen Region Syd", " Polisen Region Väst "])
        authenticator = ClientAuthenticator(clients)
        assert await authenticator.authenticate(token) == AgencyClient(
            name, "police", frozenset({"Polisen Region Syd", "Polisen Region Väst"}))
        assert await authenticator.authenticate(token + "x") is None
        assert await revoke_client(clients, name)
        assert not await revoke_client(clients, name)
        assert await authenticator.authenticate(token) is None

    async def test_a_client_name_is_taken_once_and_checked(self, clients: ClientDirectory) -> None:
        name = unique("healthcare")
        await add_client(clients, name, "healthcare", ["Region Skåne"])
        with pytest.raises(UserError, match="exists already"):
            await add_client(clients, name, "police", ["Polisen Region Syd"])
        with pytest.raises(UserError, match="--agency"):
            await add_client(clients, unique("x"), "fbi", ["Quantico"])
        with pytest.raises(UserError, match="--units"):
            await add_client(clients, unique("x"), "police", [" "])
        with pytest.raises(UserError, match="local operator"):
            await add_client(clients, "local-operator:me", "police", ["Polisen Region Syd"])

    async def test_clients_are_listed_by_name(self, clients: ClientDirectory) -> None:
        prefix = unique("list")
        for suffix in ("b", "a"):
            await add_client(clients, f"{prefix}-{suffix}", "prosecution", ["Åklagarmyndigheten Malmö"])
        await revoke_client(clients, f"{prefix}-a")
        listed = [entry for entry in await clients.clients() if entry.name.startswith(prefix)]
        assert [(entry.name, entry.revoked) for entry in listed] == [(f"{prefix}-a", True), (f"{prefix}-b", False)]
        assert listed[1].agency == "prosecution"
        assert listed[1].units == frozenset({"Åklagarmyndigheten Malmö"})
