"""In-memory UserDirectory and ClientDirectory: names and token hashes unique, as in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.api.auth import ClientEntry, DuplicateName, Principal, Role, UserEntry
from services.ingest.clients import AgencyClient


@dataclass
class _User:
    entry: UserEntry
    token_hash: bytes


@dataclass
class MemoryUserDirectory:
    kept: dict[str, _User] = field(default_factory=dict)

    async def add_user(self, name: str, role: Role, scope: frozenset[str], supervisor: bool,
                       token_hash: bytes) -> None:
        if name in self.kept or any(user.token_hash == token_hash for user in self.kept.values()):
            raise DuplicateName(name)
        self.kept[name] = _User(UserEntry(name, role, frozenset(scope), supervisor, False), token_hash)

    async def revoke_user(self, name: str) -> bool:
        user = self.kept.get(name)
        if user is None or user.entry.revoked:
            return False
        user.entry = UserEntry(name, user.entry.role, user.entry.scope, user.entry.supervisor, True)
        return True

    async def user_by_token(self, token_hash: bytes) -> Principal | None:
        for user in self.kept.values():
            if user.token_hash == token_hash and not user.entry.revoked:
                return Principal(user.entry.name, user.entry.role, user.entry.scope, user.entry.supervisor)
        return None

    async def users(self) -> list[UserEntry]:
        return [self.kept[name].entry for name in sorted(self.kept)]


@dataclass
class _Client:
    entry: ClientEntry
    token_hash: bytes


@dataclass
class MemoryClientDirectory:
    kept: dict[str, _Client] = field(default_factory=dict)

    async def add_client(self, name: str, agency: str, units: frozenset[str], token_hash: bytes) -> None:
        if name in self.kept or any(client.token_hash == token_hash for client in self.kept.values()):
            raise DuplicateName(name)
        self.kept[name] = _Client(ClientEntry(name, agency, frozenset(units), False), token_hash)

    async def revoke_client(self, name: str) -> bool:
        client = self.kept.get(name)
        if client is None or client.entry.revoked:
            return False
        client.entry = ClientEntry(name, client.entry.agency, client.entry.units, True)
        return True

    async def client_by_token(self, token_hash: bytes) -> AgencyClient | None:
        for client in self.kept.values():
            if client.token_hash == token_hash and not client.entry.revoked:
                return AgencyClient(client.entry.name, client.entry.agency, client.entry.units)
        return None

    async def clients(self) -> list[ClientEntry]:
        return [self.kept[name].entry for name in sorted(self.kept)]
