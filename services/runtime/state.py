"""What the processes of one stack share on disk: the running stack's settings (runtime.json), the pseudonym key."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from services.runtime.settings import Settings

RUNTIME_FILE = "runtime.json"


class NoStackError(RuntimeError):
    """A command that needs a running stack found none configured."""


KEY_FILE = "pseudonym.key"


def load_settings() -> Settings:
    """Settings from the environment; addresses of a running `riskwatch up` fill what is unset."""
    settings = Settings()
    running = settings.state_dir / RUNTIME_FILE
    if (settings.embedded_broker or settings.embedded_database) and running.exists():
        addresses = json.loads(running.read_text())
        updates = {}
        if settings.embedded_broker:
            updates["kafka_bootstrap_servers"] = addresses["kafka_bootstrap_servers"]
        if settings.embedded_database:
            updates["database_url"] = addresses["database_url"]
        settings = settings.model_copy(update=updates)
    return settings


def write_runtime(settings: Settings, api_url: str | None = None) -> Path:
    """What a running `riskwatch up` serves, for the other commands and for people: `api_url` is
    where the API listens (a free port unless RISKWATCH_HTTP_PORT is set)."""
    path = settings.state_dir / RUNTIME_FILE
    path.write_text(json.dumps({"kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
                                "database_url": settings.database_url, "api_url": api_url, "pid": os.getpid()}))
    return path


def pseudonym_key(settings: Settings) -> bytes:
    """The HMAC key: configured, or generated once for the embedded default and kept (mode 0600)."""
    if settings.pseudonym_key is not None:
        return bytes.fromhex(settings.pseudonym_key.get_secret_value())
    path = settings.state_dir / KEY_FILE
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def child_environment(settings: Settings) -> dict[str, str]:
    """Environment for a process started by `riskwatch up`: the same settings, the same stack."""
    environment = dict(os.environ)
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            environment.pop(f"RISKWATCH_{name.upper()}", None)
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        environment[f"RISKWATCH_{name.upper()}"] = str(value)
    return environment
