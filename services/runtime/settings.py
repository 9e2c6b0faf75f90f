"""Settings from the environment, one prefix: RISKWATCH_.

With no broker or database configured, `riskwatch up` starts embedded ones on free ports
and hands their addresses to every process it starts through these same variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKWATCH_", extra="ignore")

    kafka_bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]; empty starts the embedded broker"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="how every Kafka client connects")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism; empty: no SASL")
    kafka_sasl_username: str | None = Field(default=None, description="SASL user")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password")
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle for the brokers' certificates")
    kafka_ssl_certfile: Path | None = Field(default=None, description="client certificate, for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="its private key")
    kafka_replication_factor: int = Field(default=1, ge=1, description="replicas of every topic `migrate` creates")
    kafka_min_insync_replicas: int = Field(default=1, ge=1, description="`min.insync.replicas` of those topics")

    database_url: str | None = Field(
        default=None, description="postgresql://...; empty starts the embedded PostgreSQL"
    )

    partitions: int = Field(default=8, ge=1, description="partitions per event topic")
    consumer_group: str = Field(default="riskwatch", description=(
        "prefix of the stages' consumer groups: <group>-normalize, <group>-risk"))

    pseudonym_key: SecretStr | None = Field(
        default=None, description="hex HMAC key; empty: generated once and kept in the state dir"
    )
    state_dir: Path = Field(default=Path(".riskwatch"), description="embedded data, key, logs")

    http_host: str = Field(default="127.0.0.1", description="address the API and the workers' metrics listen on")
    http_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="a worker's /metrics, /healthz, /readyz; 0: free")
    metrics_interval_seconds: float = Field(default=5.0, gt=0, description="how often a worker samples lag, readiness")
    log_format: Literal["text", "json"] = Field(default="text", description=(
        "text for people; json: one JSON object per line on standard output, for a log pipeline"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="WARNING", description=(
        "least severe log records written"))
    metrics_token: SecretStr | None = Field(default=None, description=(
        "when set, the API's /metrics answers only `Authorization: Bearer <token>`; empty: open"))

    policy_file: Path | None = Field(default=None, description="risk policy TOML; empty: the default policy")
    batch_size: int = Field(default=500, ge=1, description="most records a stage takes per batch (one transaction)")
    batch_within_seconds: float = Field(default=0.05, gt=0,
                                        description="longest a stage waits on its fetched records for a batch")
    outbox_poll_seconds: float = Field(default=0.05, gt=0, description=(
        "how often the relay looks for messages other processes left; a worker's own batches wake it at once"))
    fetch_wait_ms: int = Field(default=100, ge=0, le=500, description=(
        "longest a stage's fetch waits for records; a broker that holds a fetch for all of it "
        "(the embedded one does) adds up to this much latency per topic hop"))
    fetch_catch_up_ms: int = Field(default=20, ge=0, le=500, description=(
        "after a batch that took longer than this, how long a stage waits for the records that came "
        "meanwhile before it starts the next one; 0: never"))
    scheduler_enabled: bool = Field(default=True, description="open review items when reviews fall due")
    paging_clock: Literal["wall", "recorded"] = Field(default="wall", description=(
        "processing time for the paging window: the wall clock, or (batch runs, replaying a log as it "
        "happened) the time the causing event was recorded"))
    scheduler_interval_seconds: float = Field(default=60.0, gt=0, description="how often it looks for reviews due")

    alert_ack_timeout_seconds: float = Field(
        default=900.0, gt=0, description="an alert not acknowledged this long is escalated to the supervisors"
    )
    escalation_interval_seconds: float = Field(default=30.0, gt=0, description="how often the API looks for them")
    live_poll_seconds: float = Field(default=1.0, gt=0, description="how often a live alert feed looks for new alerts")
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS of the OIDC provider; empty: the jwks_uri of the issuer's discovery document"
    )
    oidc_issuer: str | None = Field(default=None, validate_default=True, description=(
        "the OIDC provider's issuer, every token's `iss`: set, bearer tokens are OIDC access tokens; "
        "empty: tokens from `riskwatch users add`"))
    oidc_audience: str | None = Field(default=None, validate_default=True, description=(
        "the `aud` every OIDC token must name (required with OIDC)"))
    oidc_role_claim: str = Field(default="riskwatch_role", description="claim holding the user's Riskwatch role")
    oidc_scope_claim: str = Field(default="riskwatch_scope", description="claim holding the regions or caseloads")
    oidc_supervisor_claim: str = Field(default="riskwatch_supervisor", description="claim marking a supervisor")
    oidc_agency_claim: str = Field(default="riskwatch_agency", description="an agency client's agency")
    oidc_units_claim: str = Field(default="riskwatch_units", description="an agency client's units (list or spaces)")
    ingest_timeout_seconds: float = Field(default=2.0, gt=0, le=60, description=(
        "longest the gateway waits for the broker or the database before answering 503 with Retry-After"))

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_with_jwks(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("oidc_jwks_url") and not value:
            raise ValueError("is required when RISKWATCH_OIDC_JWKS_URL is set: a token is checked against its issuer")
        return value

    @field_validator("oidc_audience")
    @classmethod
    def _audience_with_oidc(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("oidc_issuer") and not value:
            raise ValueError("is required with OIDC: a token is checked against its audience")
        return value

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # embedded PostgreSQL and its socket need an absolute path
        return value.expanduser().resolve()

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap_servers

    @property
    def embedded_database(self) -> bool:
        return not self.database_url


def settings_table() -> str:
    """Every setting as a Markdown table: docs/operations.md holds this text (a test compares)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.default
        shown = "empty" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        rows.append(f"| `RISKWATCH_{name.upper()}` | {shown} | {(info.description or '').replace('|', '/')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m services.runtime.settings: the table for docs/operations.md
    print(settings_table(), end="")
