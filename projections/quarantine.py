"""Quarantine: records a stage cannot process because of their content, kept with the reason.

A poison record must neither stop its stage (every later event would wait behind it) nor be
skipped silently (an event missing from a projection can hide an alert). It is written
(projections/ports.py: the risk batch's effects, or `Quarantine`) in the transaction that
applies the rest of its batch and tracks its offset, and stays until an operator retries it:
`riskwatch quarantine retry` sends the record back to its topic.

Only failures that say something about the record's content qualify (`content_reason`); any
other failure is a defect of the stage and still stops the worker before it commits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from projections.ports import StoreRefused
from schemas.errors import ContractError, withhold_identity_numbers

# The metric's reason label: a closed set.
REASON_CLASSES = ("malformed", "text_encoding", "database_refused", "invalid_value", "unexpected_shape")
REASON_MAX = 2000  # characters kept of a failure's text


def content_reason(error: BaseException) -> str | None:
    """The reason class of a failure caused by a record's content, or None for anything else."""
    if isinstance(error, ContractError):
        return "malformed"
    if isinstance(error, StoreRefused):  # e.g. NUL, which PostgreSQL text and jsonb refuse: text_encoding
        return error.reason_class
    if isinstance(error, UnicodeError):
        return "text_encoding"
    if isinstance(error, (ValueError, ArithmeticError)):
        return "invalid_value"
    if isinstance(error, (KeyError, IndexError, TypeError)):
        return "unexpected_shape"
    return None


def describe(error: BaseException) -> str:
    """The failure as kept and shown: its kind and message, identity numbers withheld."""
    if isinstance(error, StoreRefused):  # named by the store's own error; it may say which value it refused
        text = f"{error.kind}: {error}" + (f" ({error.detail})" if error.detail else "")
    else:
        text = f"{type(error).__name__}: {error}"
    return withhold_identity_numbers(text)[:REASON_MAX]


def event_id_of(value: object) -> str | None:
    """The event id a record names, if it is one (a quarantine row must never fail on it)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One record set aside by a stage."""

    stage: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    record: bytes
    event_id: str | None
    reason_class: str
    reason: str


@dataclass(frozen=True, slots=True)
class QuarantineEntry(Quarantined):
    """A stored quarantine row, as listed and retried: the record set aside, and its row's own fields."""

    id: int
    quarantined_at: dt.datetime
    retried_at: dt.datetime | None
