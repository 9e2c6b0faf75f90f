"""Quarantine: records a stage cannot process because of their content, kept with the reason.

A poison record must neither stop its stage (every later event would wait behind it) nor be
skipped silently (an event missing from a projection can hide an alert). It is written here,
in the transaction that applies the rest of its batch and tracks its offset, and stays until
an operator retries it: `riskwatch quarantine retry` sends the record back to its topic.

Only failures that say something about the record's content qualify (`content_reason`); any
other failure is a defect of the stage and still stops the worker before it commits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Sequence

import asyncpg

from schemas.errors import ContractError, withhold_identity_numbers

# The metric's reason label: a closed set.
REASON_CLASSES = ("malformed", "text_encoding", "database_refused", "invalid_value", "unexpected_shape")
REASON_MAX = 2000  # characters kept of a failure's text


def content_reason(error: BaseException) -> str | None:
    """The reason class of a failure caused by a record's content, or None for anything else."""
    if isinstance(error, ContractError):
        return "malformed"
    if isinstance(error, (asyncpg.UntranslatableCharacterError, asyncpg.CharacterNotInRepertoireError, UnicodeError)):
        return "text_encoding"  # e.g. NUL, which PostgreSQL text and jsonb refuse
    if isinstance(error, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)):
        return "database_refused"
    if isinstance(error, (ValueError, ArithmeticError)):
        return "invalid_value"
    if isinstance(error, (KeyError, IndexError, TypeError)):
        return "unexpected_shape"
    return None


def describe(error: BaseException) -> str:
    """The failure as kept and shown: its kind and message, identity numbers withheld."""
    text = f"{type(error).__name__}: {error}"
    detail = getattr(error, "detail", None)  # PostgreSQL says which value it refused here
    if isinstance(error, asyncpg.PostgresError) and detail:
        text += f" ({detail})"
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
class QuarantineEntry:
    """A stored quarantine row, as listed and retried."""

    id: int
    quarantined_at: dt.datetime
    stage: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    record: bytes
    event_id: str | None
    reason_class: str
    reason: str
    retried_at: dt.datetime | None


async def write(connection: asyncpg.Connection | asyncpg.Pool, rows: Sequence[Quarantined]) -> None:
    if not rows:
        return
    await connection.executemany(
        """INSERT INTO quarantine (stage, topic, kafka_partition, kafka_offset, record_key, record, event_id,
                                   reason_class, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7::uuid, $8, $9)""",
        [(r.stage, r.topic, r.partition, r.offset, r.key, r.record, r.event_id, r.reason_class, r.reason)
         for r in rows],
    )


async def entries(pool: asyncpg.Pool, *, include_retried: bool = False,
                  ids: Sequence[int] | None = None) -> list[QuarantineEntry]:
    """Quarantined records, oldest first: those not retried yet unless asked, or the ones named."""
    rows = await pool.fetch(
        """SELECT id, quarantined_at, stage, topic, kafka_partition, kafka_offset, record_key, record,
                  event_id::text AS event_id, reason_class, reason, retried_at
           FROM quarantine
           WHERE ($1 OR retried_at IS NULL) AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
           ORDER BY id""",
        include_retried, list(ids) if ids is not None else None,
    )
    return [QuarantineEntry(row["id"], row["quarantined_at"], row["stage"], row["topic"], row["kafka_partition"],
                            row["kafka_offset"], _bytes(row["record_key"]), bytes(row["record"]), row["event_id"],
                            row["reason_class"], row["reason"], row["retried_at"]) for row in rows]


async def mark_retried(pool: asyncpg.Pool, ids: Sequence[int]) -> None:
    await pool.execute("UPDATE quarantine SET retried_at = now() WHERE id = ANY($1::bigint[])", list(ids))


def _bytes(value: bytes | None) -> bytes | None:
    return bytes(value) if value is not None else None
