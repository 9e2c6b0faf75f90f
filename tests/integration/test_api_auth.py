"""Authentication: OIDC tokens against a JWKS endpoint, scope rules, the alert workflow's states, and
`riskwatch users` against the running stack."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException
from jwt.algorithms import RSAAlgorithm

from services.adapters.memory.directory import MemoryClientDirectory, MemoryUserDirectory
from services.workflow.alerts import Status, WorkflowAction, WorkflowRefused, next_status
from services.api.auth import (
    AgencyClient,
    OidcAuthenticator,
    Principal,
    Role,
    UserError,
    authenticator_for,
    check_scope,
    client_authenticator_for,
)
from services.runtime.state import child_environment
from services.runtime.settings import Settings
from services.runtime.stack import Stack
from tests.support.api import client, database
from tests.support.scenario import at, event, new_person

ISSUER, AUDIENCE = "https://idp.example/realms/police", "riskwatch"


@pytest.fixture(scope="module")
def provider_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(provider_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """An identity provider's JWKS endpoint, served locally."""
    public = json.loads(RSAAlgorithm.to_jwk(provider_key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "key-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/certs"
    finally:
        server.shutdown()


def _authenticator(jwks_url: str) -> OidcAuthenticator:
    settings = Settings(oidc_jwks_url=jwks_url, oidc_issuer=ISSUER, oidc_audience=AUDIENCE)
    authenticator = authenticator_for(settings, MemoryUserDirectory())
    assert isinstance(authenticator, OidcAuthenticator)
    return authenticator


def _token(key: Any, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "preferred_username": "anna.analyst",
               "iat": now, "exp": now + 300, "riskwatch_role": "intelligence_analyst",
               "riskwatch_scope": ["stockholm", "ost"], **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm="RS256",
                      headers={"kid": "key-1"})


@pytest.fixture(scope="module")
def provider(provider_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """An identity provider serving its discovery document and JWKS locally; its issuer is its own address."""
    public = json.loads(RSAAlgorithm.to_jwk(provider_key.public_key()))
    keys = json.dumps({"keys": [{**public, "kid": "key-1", "use": "sig", "alg": "RS256"}]}).encode()
    documents: dict[str, bytes] = {"/realms/police/certs": keys}

    class Provider(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Provider)
    issuer = f"http://127.0.0.1:{server.server_port}/realms/police"
    documents["/realms/police/.well-known/openid-configuration"] = json.dumps(
        {"issuer": issuer, "jwks_uri": f"{issuer}/certs"}).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()


async def test_oidc_keys_come_from_the_issuers_discovery_document(provider: str, provider_key: Any) -> None:
    authenticator = authenticator_for(Settings(oidc_issuer=provider, oidc_audience=AUDIENCE), MemoryUserDirectory())
    assert isinstance(authenticator, OidcAuthenticator)
    principal = await authenticator.authenticate(_token(provider_key, iss=provider))
    assert principal is not None and principal.role == Role.INTELLIGENCE_ANALYST
    assert await authenticator.authenticate(_token(provider_key)) is None, "another issuer's token"
    elsewhere = authenticator_for(Settings(oidc_issuer=provider + "/other", oidc_audience=AUDIENCE),
                                  MemoryUserDirectory())
    assert await elsewhere.authenticate(_token(provider_key, iss=provider + "/other")) is None, "no document there"


def test_oidc_needs_an_issuer_and_an_audience() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="oidc_audience"):
        Settings(oidc_issuer="https://idp.example/realms/police")
    with pytest.raises(ValidationError, match="oidc_issuer"):
        Settings(oidc_jwks_url="https://idp.example/certs", oidc_audience=AUDIENCE)


async def test_oidc_token_gives_the_role_and_scope_of_its_claims(jwks_url: str, provider_key: Any) -> None:
    authenticator = _authenticator(jwks_url)
    principal = await authenticator.authenticate(_token(provider_key, riskwatch_supervisor=True))
    assert principal == Principal("anna.analyst", Role.INTELLIGENCE_ANALYST, frozenset({"stockholm", "ost"}), True)
    spaced = await authenticator.authenticate(_token(provider_key, riskwatch_role="probation_officer",
                                                     riskwatch_scope="unit-a unit-b"))
    assert spaced is not None and spaced.scope == {"unit-a", "unit-b"} and not spaced.supervisor


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 10},
    {"aud": "another-service"},
    {"iss": "https://evil.example"},
    {"exp": None},
], ids=["expired", "wrong audience", "wrong issuer", "no expiry"])
async def test_oidc_refuses_tokens_it_must_not_trust(jwks_url: str, provider_key: Any, claims: dict[str, Any]) -> None:
    assert await _authenticator(jwks_url).authenticate(_token(provider_key, **claims)) is None


async def test_oidc_refuses_a_token_signed_by_another_key_or_none(jwks_url: str) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    authenticator = _authenticator(jwks_url)
    assert await authenticator.authenticate(_token(impostor)) is None
    unsigned = jwt.encode({"sub": "x", "riskwatch_role": "admin"}, None, algorithm="none")  # type: ignore[arg-type]
    assert await authenticator.authenticate(unsigned) is None
    assert await authenticator.authenticate("not.a.jwt") is None


async def test_oidc_token_without_a_riskwatch_role_is_forbidden(jwks_url: str, provider_key: Any) -> None:
    with pytest.raises(HTTPException) as refused:
        await _authenticator(jwks_url).authenticate(_token(provider_key, riskwatch_role="superuser"))
    assert refused.value.status_code == 403


def test_scopes_fit_the_role() -> None:
    assert check_scope(Role.INTELLIGENCE_ANALYST, ["syd", " nord "]) == {"syd", "nord"}
    assert check_scope(Role.INTELLIGENCE_ANALYST, ["national"]) == {"national"}
    assert check_scope(Role.OPERATOR, []) == frozenset()
    for role, scope in [(Role.INTELLIGENCE_ANALYST, ["gotland"]), (Role.INTELLIGENCE_ANALYST, []),
                        (Role.PROBATION_OFFICER, []), (Role.ADMIN, ["syd"]), (Role.OPERATOR, ["syd"])]:
        with pytest.raises(UserError, match="--scope"):
            check_scope(role, scope)


def test_principal_scope_covers_regions_or_caseloads() -> None:
    south = Principal("a", Role.INTELLIGENCE_ANALYST, frozenset({"syd"}))
    national = Principal("n", Role.INTELLIGENCE_ANALYST, frozenset({"national"}))
    officer = Principal("p", Role.PROBATION_OFFICER, frozenset({"Frivård Malmö"}))
    operator = Principal("o", Role.OPERATOR, frozenset())
    assert south.covers("syd", None) and not south.covers("stockholm", "Frivård Malmö") and not south.covers(None, None)
    assert national.covers(None, None) and national.covers("nord", None)
    assert officer.covers("stockholm", "Frivård Malmö") and not officer.covers("syd", "Frivård Lund")
    assert not operator.covers("syd", "Frivård Malmö")


def test_alert_status_moves_forward_only() -> None:
    assert next_status(Status.OPEN, WorkflowAction.ACKNOWLEDGED) == Status.ACKNOWLEDGED
    assert next_status(Status.ESCALATED, WorkflowAction.ACKNOWLEDGED) == Status.ACKNOWLEDGED
    assert next_status(Status.OPEN, WorkflowAction.ASSIGNED) == Status.OPEN
    assert next_status(Status.ACKNOWLEDGED, WorkflowAction.CLOSED) == Status.CLOSED
    assert next_status(Status.OPEN, WorkflowAction.ESCALATED) == Status.ESCALATED
    for status, action in [(Status.ACKNOWLEDGED, WorkflowAction.ACKNOWLEDGED), (Status.CLOSED, WorkflowAction.ASSIGNED),
                           (Status.CLOSED, WorkflowAction.CLOSED), (Status.ACKNOWLEDGED, WorkflowAction.ESCALATED)]:
        with pytest.raises(WorkflowRefused):
            next_status(status, action)


@pytest.mark.integration
async def test_users_add_prints_a_token_once_and_keeps_only_its_hash(stack: Stack) -> None:
    def riskwatch(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "users", *arguments], capture_output=True,
                              text=True, env=child_environment(stack.settings), timeout=60)

    added = riskwatch("add", "lena.lind", "--role", "probation_officer", "--scope", "Kriminalvården Frivård Malmö",
                      "--supervisor")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("rw_") and "shown once" in added.stderr
    async with database(stack) as pool:
        row = await pool.fetchrow("SELECT token_hash, scope, supervisor FROM app_user WHERE name = 'lena.lind'")
    assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert (row["scope"], row["supervisor"]) == (["Kriminalvården Frivård Malmö"], True)
    async with client(stack, token) as http:
        me = (await http.get("/v1/me")).json()
    assert me == {"name": "lena.lind", "role": "probation_officer", "scope": ["Kriminalvården Frivård Malmö"],
                  "supervisor": True}
    again = riskwatch("add", "lena.lind", "--role", "operator")
    assert again.returncode != 0 and "exists already" in again.stderr
    wrong = riskwatch("add", "olle", "--role", "intelligence_analyst", "--scope", "gotland")
    assert wrong.returncode != 0 and "--scope" in wrong.stderr
    assert riskwatch("revoke", "lena.lind").returncode == 0
    async with client(stack, token) as http:
        assert (await http.get("/v1/me")).status_code == 401


async def test_an_oidc_client_credentials_token_is_an_agency_client(jwks_url: str, provider_key: Any) -> None:
    settings = Settings(oidc_jwks_url=jwks_url, oidc_issuer=ISSUER, oidc_audience=AUDIENCE)
    clients = client_authenticator_for(settings, MemoryClientDirectory())
    system = _token(provider_key, sub="svc-1", client_id="rar-syd", riskwatch_role=None, riskwatch_scope=None,
                    preferred_username=None, riskwatch_agency="police",
                    riskwatch_units=["Polisen Region Syd", "Polisen Region Syd Malmö"])
    client = await clients.authenticate(system)
    assert client == AgencyClient("rar-syd", "police", frozenset({"Polisen Region Syd", "Polisen Region Syd Malmö"}))
    assert client.refusal("police.arrest", "Polisen Region Syd") is None
    assert client.refusal("prison_probation.released", "Polisen Region Syd").field == "event_type"
    assert client.refusal("police.arrest", "Polisen Region Stockholm").field == "unit"
    person = _token(provider_key)  # a user's token: no agency, no units
    assert await clients.authenticate(person) is None
    unknown_agency = _token(provider_key, riskwatch_agency="customs", riskwatch_units="Tullverket")
    assert await clients.authenticate(unknown_agency) is None


@pytest.mark.integration
async def test_clients_add_list_revoke(stack: Stack) -> None:
    def riskwatch(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "clients", *arguments], capture_output=True,
                              text=True, env=child_environment(stack.settings), timeout=60)

    added = riskwatch("add", "kvv-frivard", "--agency", "prison_probation",
                      "--units", "Kriminalvården Frivård Malmö, Kriminalvården Frivård Lund")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("rwc_") and "shown once" in added.stderr
    async with database(stack) as pool:
        row = await pool.fetchrow("SELECT token_hash, agency, units FROM agency_client WHERE name = 'kvv-frivard'")
    assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert (row["agency"], row["units"]) == ("prison_probation", ["Kriminalvården Frivård Lund",
                                                                 "Kriminalvården Frivård Malmö"])
    listed = riskwatch("list")
    assert "kvv-frivard\tprison_probation\tKriminalvården Frivård Lund,Kriminalvården Frivård Malmö" in listed.stdout
    assert token not in listed.stdout
    assert "--agency" in riskwatch("add", "x", "--agency", "customs", "--units", "u").stderr
    assert "--units" in riskwatch("add", "y", "--agency", "police", "--units", " , ").stderr
    assert riskwatch("revoke", "kvv-frivard").returncode == 0
    assert "REVOKED" in riskwatch("list").stdout
    async with client(stack, token) as http:
        released = event("prison_probation.released", new_person(), at(40), {"release_kind": "conditional"},
                         unit="Kriminalvården Frivård Malmö")
        assert (await http.post("/v1/events", json=released)).status_code == 401
