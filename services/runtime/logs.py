"""Logging of every Riskwatch process, set up here and nowhere else.

Plain text for people by default; `RISKWATCH_LOG_FORMAT=json` writes one JSON object per
line for a log pipeline, with the fields it filters on (stage, topic, partition, offset,
event_id, alert_id) whenever a message carries them, as `extra=` or from `log_context`.
Whatever the format, anything shaped like an identity number is withheld from the message
and the traceback: a log line never carries a clear identity.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import json
import logging
import logging.config
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal, ParamSpec, TypeVar

from schemas.errors import withhold_identity_numbers

LogFormat = Literal["text", "json"]
P = ParamSpec("P")
T = TypeVar("T")
FIELDS = ("stage", "topic", "partition", "offset", "event_id", "alert_id")

# read-only: log_context sets a new mapping, so a task never sees another's fields
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "riskwatch_log_context", default=MappingProxyType({}))


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Every record logged inside (and in tasks started inside) carries these fields."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def with_log_context(**fields: Any) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """The same for every call of a coroutine function (a worker's task)."""
    def decorate(function: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(function)
        async def logged(*args: P.args, **kwargs: P.kwargs) -> T:
            with log_context(**fields):
                return await function(*args, **kwargs)
        return logged
    return decorate


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_context.get())
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    return {name: fields[name] for name in FIELDS if fields.get(name) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, the fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": withhold_identity_numbers(record.getMessage()),
            **_fields(record),
        }
        if record.exc_info:
            document["exception"] = withhold_identity_numbers(self.formatException(record.exc_info))
        return json.dumps(document, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message [field=value ...]`, for people reading a terminal or a file."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{name}={value}" for name, value in _fields(record).items())
        text = super().format(record)
        if fields:
            head, newline, traceback = text.partition("\n")
            text = f"{head} [{fields}]{newline}{traceback}"
        return withhold_identity_numbers(text)


def logging_config(log_format: LogFormat, level: str, stream: str = "ext://sys.stdout") -> dict[str, Any]:
    """A `logging.config.dictConfig` document; faust's worker and uvicorn take it as it is."""
    formatter = {"()": f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"riskwatch": formatter},
        "handlers": {"riskwatch": {"class": "logging.StreamHandler", "formatter": "riskwatch", "stream": stream}},
        "root": {"handlers": ["riskwatch"], "level": level},
        # the servers' own loggers go through the same handler, in the same format
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faust", "mode", "aiokafka")},
    }
