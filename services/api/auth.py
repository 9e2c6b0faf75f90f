"""Who is asking: bearer tokens, roles and scopes.

Embedded default: users created with `riskwatch users add`, each with a random token of
which only the SHA-256 is stored. Production: OIDC access tokens (JWT) checked against the
provider's JWKS, the role and scope read from claims. Either way a request ends up with a
Principal, and every endpoint says which roles it admits; scope is checked on the data.

Agency systems submitting events are clients, not users: `riskwatch clients add` tokens or
OIDC client-credentials tokens, each bound to one agency and its units.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import logging
import os
import secrets
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import asyncpg
import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from schemas.errors import FieldError
from schemas.rules import REGIONS, shown
from streams.topology import AGENCIES
from services.runtime.settings import Settings

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


async def add_user(pool: asyncpg.Pool, name: str, role: Role, scope: Iterable[str], *, supervisor: bool = False) -> str:
    """Create a user and return the bearer token: the only time it exists outside the holder's hands."""
    if not name.strip():
        raise UserError("NAME: a user needs a name")
    entries = check_scope(role, scope)
    token = new_token()
    try:
        await pool.execute(
            "INSERT INTO app_user (name, role, scope, supervisor, token_hash) VALUES ($1, $2, $3, $4, $5)",
            name.strip(), role.value, sorted(entries), supervisor, token_hash(token),
        )
    except asyncpg.UniqueViolationError:
        raise UserError(f"NAME: a user called {name.strip()!r} exists already") from None
    return token


async def revoke_user(pool: asyncpg.Pool, name: str) -> bool:
    status = await pool.execute("UPDATE app_user SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
    return bool(status.endswith(" 1"))


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None: ...


class TokenAuthenticator:
    """Tokens created by `riskwatch users add`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def authenticate(self, token: str) -> Principal | None:
        row = await self.pool.fetchrow(
            "SELECT name, role, scope, supervisor FROM app_user WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash(token),
        )
        if row is None:
            return None
        return Principal(row["name"], Role(row["role"]), frozenset(row["scope"]), row["supervisor"])


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


def authenticator_for(settings: Settings, pool: asyncpg.Pool) -> Authenticator:
    verifier = oidc_verifier(settings)
    if verifier is not None:
        return OidcAuthenticator(verifier, role_claim=settings.oidc_role_claim, scope_claim=settings.oidc_scope_claim,
                                 supervisor_claim=settings.oidc_supervisor_claim)
    return TokenAuthenticator(pool)


# ---- agency clients: the systems that submit events -----------------------------------------

CLIENT_TOKEN_PREFIX = "rwc_"
LOCAL_OPERATOR = "local-operator"


@dataclass(frozen=True, slots=True)
class AgencyClient:
    """An agency system allowed to submit its agency's event types for its units.

    `agency` None is the local operator: someone at the machine of an embedded stack, who may
    submit anything and is recorded under their login name.
    """

    name: str
    agency: str | None
    units: frozenset[str]

    def refusal(self, event_type: str, unit: str) -> FieldError | None:
        """Why this client may not submit this event, or None when it may."""
        if self.agency is None:
            return None
        if event_type.split(".", 1)[0] != self.agency:
            return FieldError("event_type", f"{event_type} is not a {self.agency} event; client {self.name} "
                                            f"submits for {self.agency} only")
        if unit not in self.units:
            return FieldError("unit", f"{shown(unit)} is not one of the units of client {self.name}")
        return None


def local_operator() -> AgencyClient:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (e.g. a container's uid)
        user = f"uid-{os.getuid()}"
    return AgencyClient(f"{LOCAL_OPERATOR}:{user}", None, frozenset())


def check_units(units: Iterable[str]) -> frozenset[str]:
    entries = frozenset(unit.strip() for unit in units if unit.strip())
    if not entries:
        raise UserError("--units: an agency client submits for one or more units, e.g. 'Polisen Region Syd'")
    return entries


async def add_client(pool: asyncpg.Pool, name: str, agency: str, units: Iterable[str]) -> str:
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
        await pool.execute(
            "INSERT INTO agency_client (name, agency, units, token_hash) VALUES ($1, $2, $3, $4)",
            name.strip(), agency, sorted(entries), token_hash(token),
        )
    except asyncpg.UniqueViolationError:
        raise UserError(f"NAME: a client called {name.strip()!r} exists already") from None
    return token


async def revoke_client(pool: asyncpg.Pool, name: str) -> bool:
    status = await pool.execute("UPDATE agency_client SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
                                name)
    return bool(status.endswith(" 1"))


class ClientAuthenticator:
    """Client tokens from `riskwatch clients add`; with OIDC configured, client-credentials JWTs too."""

    def __init__(self, pool: asyncpg.Pool, oidc: OidcVerifier | None = None, *,
                 agency_claim: str = "riskwatch_agency", units_claim: str = "riskwatch_units") -> None:
        self.pool = pool
        self.oidc = oidc
        self.agency_claim = agency_claim
        self.units_claim = units_claim

    async def authenticate(self, token: str) -> AgencyClient | None:
        if token.startswith(CLIENT_TOKEN_PREFIX) or self.oidc is None:
            row = await self.pool.fetchrow(
                "SELECT name, agency, units FROM agency_client WHERE token_hash = $1 AND revoked_at IS NULL",
                token_hash(token),
            )
            return None if row is None else AgencyClient(row["name"], row["agency"], frozenset(row["units"]))
        claims = await self.oidc.claims(token)
        if claims is None:
            return None
        agency = claims.get(self.agency_claim)
        units = frozenset(_claim_list(claims.get(self.units_claim)))
        if agency not in AGENCIES or not units:
            return None  # a valid token of the provider, but not one for an agency system
        # client_id (RFC 9068) names the registered client; older providers put it in azp
        return AgencyClient(str(claims.get("client_id") or claims.get("azp") or claims["sub"]), str(agency), units)


def client_authenticator_for(settings: Settings, pool: asyncpg.Pool) -> ClientAuthenticator:
    return ClientAuthenticator(pool, oidc_verifier(settings), agency_claim=settings.oidc_agency_claim,
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
