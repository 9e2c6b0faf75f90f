"""Errors a user causes, in one line that names the variable, file or option to change.

The command line turns these into `Error: ...` and exit code 1; `riskwatch --debug` shows the
traceback instead. Anything not recognised here is a fault of Riskwatch, not of the user:
it is still one line, with a pointer to `--debug`.
"""

from __future__ import annotations

import traceback

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from projections.policy import PolicyError
from schemas.errors import withhold_identity_numbers
from services.runtime.state import NoStackError

__all__ = ["NoStackError", "unexpected_error", "user_error"]

_SECRET_SETTINGS = frozenset({"pseudonym_key", "kafka_sasl_password", "metrics_token", "database_url"})


def user_error(error: BaseException) -> str | None:
    """One line saying what the user has to change, or None when it is not a user's error."""
    if isinstance(error, ValidationError) and error.title == "Settings":
        return "; ".join(_setting_problem(problem) for problem in error.errors())
    if isinstance(error, NoStackError):
        return str(error)
    origin = _library_of(error)
    if origin == "asyncpg" or isinstance(error, asyncpg.PostgresError):
        return f"RISKWATCH_DATABASE_URL: cannot connect to the database ({_reason(error)})"
    if origin == "aiokafka" or isinstance(error, KafkaError):
        reason = "no broker answers" if isinstance(error, KafkaConnectionError) else _reason(error)
        return f"RISKWATCH_KAFKA_BOOTSTRAP_SERVERS: cannot connect to the broker ({reason})"
    if isinstance(error, PolicyError):  # a --policy option is checked by its command: this is the setting's
        return f"RISKWATCH_POLICY_FILE: {_reason(error)}"
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or _reason(error)}"
    return None


def unexpected_error(error: BaseException) -> str:
    return f"unexpected {type(error).__name__}: {_reason(error)} (run `riskwatch --debug ...` for the traceback)"


def _setting_problem(problem: ErrorDetails) -> str:
    location = problem.get("loc") or ("",)
    name = str(location[0])
    variable = f"RISKWATCH_{name.upper()}"
    message = str(problem.get("msg", "is not valid"))
    if name in _SECRET_SETTINGS or "input" not in problem:
        return f"{variable}: {message}"
    return f"{variable}={problem['input']!s}: {message}"


def _library_of(error: BaseException) -> str | None:
    """Which client library raised it: an OSError deep in asyncpg is about the database."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        for library in ("asyncpg", "aiokafka"):
            if f"/{library}/" in frame.filename.replace("\\", "/"):
                return library
    return None


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return withhold_identity_numbers(text)
