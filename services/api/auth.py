"""Who is asking: bearer tokens, roles and scopes.

Embedded default: users created with `riskwatch users add`, each with a random token of
which only the SHA-256 is stored. Production: OIDC access tokens (JWT) checked against the
provider's JWKS, the role and scope read from claims. Either way a request ends up with a
Principal, and every endpoint says which roles it admits; scope is checked on the data.

Agency systems submitting events are clients, not users: `riskwatch clients add` tokens or
OIDC client-credentials tokens, each bound to one agency and its units.

Users and clients are kept behind two ports, `UserDirectory` and `ClientDirectory`: the
PostgreSQL adapter (services/adapters/postgres/directory.py) and an in-memory twin implement them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from schemas.rules import REGIONS
from services.ingest.clients import CLIENT_TOKEN_PREFIX, LOCAL_OPERATOR, AgencyClient, local_operator
from services.ingest.ports import StoreUnavailable
from services.runtime.settings import Settings
from streams.topology import AGENCIES

__all__ = ["CLIENT_TOKEN_PREFIX", "LOCAL_OPERATOR", "AgencyClient", "StoreUnavailable", "local_operator"]

log = logging.getLogger(__name__)

TOKEN_PREFIX = "rw_"
NATIONAL = "national"  # an analyst scope covering every region, and alerts no region may be named for
JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class Role(StrEnum):
    INTELLIGENCE_ANALYST = "intelligence_analyst"  # scope: police regions
    PROBATION_OFFICER = "probation_officer"  # scope: caseload units
    OPERATOR = "operator"  # stream health only, never personal data
    ADMIN = "admin"  # everything, the access log included


PERSONAL_DATA_ROLES = (Role.INTELLIGENCE_ANALYST, Role.PROBATION_OFFICER, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    scope: frozenset[str]
    supervisor: bool = False

    @property
    def national(self) -> bool:
        return self.role == Role.ADMIN or (self.role == Role.INTELLIGENCE_ANALYST and NATIONAL in self.scope)

    def covers(self, region: str | None, caseload: str | None) -> bool:
        """Whether a subject or alert of this region and caseload is within the scope."""
        if self.national:
            return True
        if self.role == Role.INTELLIGENCE_ANALYST:
            return region is not None and region in self.scope
        if self.role == Role.PROBATION_OFFICER:
            return caseload is not None and caseload in self.scope
        return False


class UserError(ValueError):
    """A user cannot be created as asked; the message names the option."""


def check_scope(role: Role, scope: Iterable[str]) -> frozenset[str]:
    entries = frozenset(entry.strip() for entry in scope if entry.strip())
    if role == Role.INTELLIGENCE_ANALYST:
        unknown = sorted(entries - set(REGIONS) - {NATIONAL})
        if unknown or not entries:
            raise UserError(f"--scope: an analyst's scope is one or more of {', '.join(REGIONS)} or {NATIONAL}"
                            + (f"; not {', '.join(unknown)}" if unknown else ""))
    elif role == Role.PROBATION_OFFICER:
        if not entries:
            raise UserError("--scope: a probation officer's scope is one or more caseload units, "
                            "e.g. 'Kriminalvården Frivård Malmö'")
    elif entries:
        raise UserError(f"--scope: an {role.value} has no scope")
    return entries


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# ---- the ports: where users and agency clients are kept ---------------------------------------


class DuplicateName(Exception):
    """A user or client of that name (or, astronomically unlikely, that token) exists already."""


@dataclass(frozen=True, slots=True)
class UserEntry:
    name: str
    role: Role
    scope: frozenset[str]
    supervisor: bool
    revoked: bool


class UserDirectory(Protocol):
    """Users of the query API with tokens of `riskwatch users add`; only the SHA-256 of a token is kept."""

    async def add_user(self, name: str, role: Role, scope: frozenset[str], supervisor: bool,
                       token_hash: bytes) -> None:
        """Raises DuplicateName when the name (or the token hash) is taken."""

    async def revoke_user(self, name: str) -> bool:
        """Whether an active user of that name was revoked now."""

    async def user_by_token(self, token_hash: bytes) -> Principal | None:
        """The active (not revoked) user holding the token."""

    async def users(self) -> list[UserEntry]:
        """Every user, revoked ones included, by name."""


@dataclass(frozen=True, slots=True)
class ClientEntry:
    name: str
    agency: str
    units: frozenset[str]
    revoked: bool


class ClientDirectory(Protocol):
    """Agency clients with tokens of `riskwatch clients add`; only the SHA-256 of a token is kept."""

    async def add_client(self, name: str, agency: str, units: frozenset[str], token_hash: bytes) -> None:
        """Raises DuplicateName when the name (or the token hash) is taken."""

    async def revoke_client(self, name: str) -> bool:
        """Whether an active client of that name was revoked now."""

    async def client_by_token(self, token_hash: bytes) -> AgencyClient | None:
        """The active (not revoked) client holding the token."""

    async def clients(self) -> list[ClientEntry]:
        """Every client, revoked ones included, by name."""


async def add_user(users: UserDirectory, name: str, role: Role, scope: Iterable[str], *,
                   supervisor: bool = False) -> str:
    """Create a user and return the bearer token: the only time it exists outside the holder's hands."""
    if not name.strip():
        raise UserError("NAME: a user needs a name")
    entries = check_scope(role, scope)
    token = new_token()
    try:
        await users.add_user(name.strip(), role, entries, supervisor, token_hash(token))
    except DuplicateName:
        raise UserError(f"NAME: a user called {name.strip()!r} exists already") from None
    return token


async def revoke_user(users: UserDirectory, name: str) -> bool:
    return await users.revoke_user(name)


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None: ...


class TokenAuthenticator:
    """Tokens created by `riskwatch users add`."""

    def __init__(self, users: UserDirectory) -> None:
        self.users = users

    async def authenticate(self, token: str) -> Principal | None:
        return await self.users.user_by_token(token_hash(token))


class OidcVerifier:
    """OIDC access tokens: signature by a key of the provider's JWKS, expiry, issuer and audience.

    The JWKS is the configured one, or the `jwks_uri` of the issuer's discovery document
    (/.well-known/openid-configuration), read when the first token arrives.
    """

    def __init__(self, jwks_url: str | None, *, issuer: str, audience: str) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self._keys: jwt.PyJWKClient | None = None

    def _signing_key(self, token: str) -> Any:
        if self._keys is None:
            self._keys = jwt.PyJWKClient(self.jwks_url or discovered_jwks_url(self.issuer), cache_keys=True,
                                         lifespan=300)
        return self._keys.get_signing_key_from_jwt(token)

    async def claims(self, token: str) -> dict[str, Any] | None:
        try:
            # the discovery document and the JWKS are fetched with blocking I/O when not cached yet
            key = await asyncio.to_thread(self._signing_key, token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=JWT_ALGORITHMS, audience=self.audience, issuer=self.issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        except (OSError, ValueError, KeyError) as error:
            log.warning("OIDC provider's discovery document unavailable (%s); token refused", type(error).__name__)
            return None
        return claims


def discovered_jwks_url(issuer: str) -> str:
    """The `jwks_uri` of the issuer's OpenID Connect discovery document, which must name the same issuer."""
    with urllib.request.urlopen(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=5) as answer:
        document = json.loads(answer.read())
    if document.get("issuer") != issuer:
        raise ValueError("the discovery document names another issuer")
    return str(document["jwks_uri"])


class OidcAuthenticator:
    """People: the role, scope and supervisor flag from claims of a verified access token."""

    def __init__(self, verifier: OidcVerifier, *, role_claim: str, scope_claim: str, supervisor_claim: str) -> None:
        self.verifier = verifier
        self.role_claim = role_claim
        self.scope_claim = scope_claim
        self.supervisor_claim = supervisor_claim

    async def authenticate(self, token: str) -> Principal | None:
        claims = await self.verifier.claims(token)
        if claims is None:
            return None
        try:
            role = Role(str(claims.get(self.role_claim)))
        except ValueError:
            raise HTTPException(403, f"role: the token grants no Riskwatch role (claim {self.role_claim})") from None
        entries = _claim_list(claims.get(self.scope_claim))
        name = str(claims.get("preferred_username") or claims["sub"])
        return Principal(name, role, frozenset(entries), claims.get(self.supervisor_claim) is True)


def _claim_list(value: Any) -> list[str]:
    """A claim holding a list, or a space-separated string (as OAuth's own `scope`)."""
    if not value:
        return []
    return value.split() if isinstance(value, str) else [str(entry) for entry in value]


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    if not settings.oidc_issuer:
        return None
    assert settings.oidc_audience, "Settings require an audience with an issuer"
    return OidcVerifier(settings.oidc_jwks_url, issuer=settings.oidc_issuer, audience=settings.oidc_audience)


def authenticator_for(settings: Settings, users: UserDirectory) -> Authenticator:
    verifier = oidc_verifier(settings)
    if verifier is not None:
        return OidcAuthenticator(verifier, role_claim=settings.oidc_role_claim, scope_claim=settings.oidc_scope_claim,
                                 supervisor_claim=settings.oidc_supervisor_claim)
    return TokenAuthenticator(users)


# ---- agency clients: the systems that submit events -----------------------------------------

def check_units(units: Iterable[str]) -> frozenset[str]:
    entries = frozenset(unit.strip() for unit in units if unit.strip())
    if not entries:
        raise UserError("--units: an agency client submits for one or more units, e.g. 'Polisen Region Syd'")
    return entries


async def add_client(clients: ClientDirectory, name: str, agency: str, units: Iterable[str]) -> str:
    """Register an agency system and return its token: the only time it exists outside the system."""
    if not name.strip():
        raise UserError("NAME: a client needs a name")
    if name.strip().startswith(LOCAL_OPERATOR):
        raise UserError(f"NAME: {LOCAL_OPERATOR}… names the local operator")
    if agency not in AGENCIES:
        raise UserError(f"--agency: one of {', '.join(AGENCIES)}")
    entries = check_units(units)
    token = CLIENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        await clients.add_client(name.strip(), agency, entries, token_hash(token))
    except DuplicateName:
        raise UserError(f"NAME: a client called {name.strip()!r} exists already") from None
    return token


async def revoke_client(clients: ClientDirectory, name: str) -> bool:
    return await clients.revoke_client(name)


class ClientAuthenticator:
    """Client tokens from `riskwatch clients add`; with OIDC configured, client-credentials JWTs too."""

    def __init__(self, clients: ClientDirectory, oidc: OidcVerifier | None = None, *,
                 agency_claim: str = "riskwatch_agency", units_claim: str = "riskwatch_units") -> None:
        self.clients = clients
        self.oidc = oidc
        self.agency_claim = agency_claim
        self.units_claim = units_claim

    async def authenticate(self, token: str) -> AgencyClient | None:
        if token.startswith(CLIENT_TOKEN_PREFIX) or self.oidc is None:
            return await self.clients.client_by_token(token_hash(token))
        claims = await self.oidc.claims(token)
        if claims is None:
            return None
        agency = claims.get(self.agency_claim)
        units = frozenset(_claim_list(claims.get(self.units_claim)))
        if agency not in AGENCIES or not units:
            return None  # a valid token of the provider, but not one for an agency system
        # client_id (RFC 9068) names the registered client; older providers put it in azp
        return AgencyClient(str(claims.get("client_id") or claims.get("azp") or claims["sub"]), str(agency), units)


def client_authenticator_for(settings: Settings, clients: ClientDirectory) -> ClientAuthenticator:
    return ClientAuthenticator(clients, oidc_verifier(settings), agency_claim=settings.oidc_agency_claim,
                               units_claim=settings.oidc_units_claim)


_bearer = HTTPBearer(auto_error=False, description="A token from `riskwatch users add`, or an OIDC access token")


async def current_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "authorization: send a bearer token", headers={"WWW-Authenticate": "Bearer"})
    authenticator: Authenticator = request.app.state.query.authenticator
    principal = await authenticator.authenticate(credentials.credentials)
    if principal is None:
        raise HTTPException(401, "authorization: the token is not valid",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return principal


def allow(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only these roles (403 for the others)."""
    admitted = frozenset(roles)

    async def admitted_principal(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in admitted:
            raise HTTPException(403, f"role: {principal.role.value} may not use this endpoint")
        return principal

    return admitted_principal


def require_scope(principal: Principal, region: str | None, caseload: str | None) -> None:
    if not principal.covers(region, caseload):
        raise HTTPException(403, "scope: this is outside your region or caseload")
