"""The ingest gateway: validate, pseudonymize, publish (acks=all), and only then answer.

HTTP and bulk files share this one path. Bad input is answered with every wrong field and
kept, with its reason, in PostgreSQL (in full) and on ingest.deadletter.v1 (identity numbers
withheld, so no clear identity ever reaches a topic).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterable, Literal, Sequence

from aiokafka import AIOKafkaProducer

from projections.store import Store, create_pool
from schemas.codec import decode_event, encode_event
from schemas.errors import ContractError, EventValidationError, FieldError, withhold_identity_numbers_in_bytes
from schemas.json_format import check_event, event_from_json
from services import metrics
from services.identity import parse_identity_number, pseudonym
from services.runtime import pseudonym_key
from services.settings import Settings
from streams.kafka import cluster_id, dead_letter_headers, event_headers, new_producer
from streams.topology import DEADLETTER, agency_topic

Format = Literal["json", "avro"]
Status = Literal["accepted", "duplicate", "rejected"]



@dataclass(frozen=True, slots=True)
class Submission:
    raw: bytes
    format: Format
    source: str  # e.g. "http" or "events.jsonl:12": where to find it again


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    source: str
    event_id: str | None = None
    event_type: str | None = None
    errors: tuple[FieldError, ...] = ()
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    conflict: bool = False  # the event id was already accepted for different content

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"status": self.status, "event_id": self.event_id, "event_type": self.event_type}
        if self.errors:
            document["errors"] = [{"field": e.field, "reason": e.reason} for e in self.errors]
        if self.topic is not None:
            document.update(topic=self.topic, partition=self.partition, offset=self.offset)
        return document


@dataclass
class _Accepted:
    index: int
    event_id: str
    event_type: str
    subject: str
    body: bytes
    content_hash: bytes


@dataclass
class _Batch:
    outcomes: list[Outcome | None]
    accepted: list[_Accepted] = field(default_factory=list)
    identities: dict[str, tuple[str, str]] = field(default_factory=dict)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (index, reason)


class IngestGateway:
    def __init__(self, store: Store, producer: AIOKafkaProducer, key: bytes, cluster_id: str,
                 today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.timezone.utc).date()) -> None:
        self.store = store
        self.cluster_id = cluster_id
        self.producer = producer
        self.key = key
        self.today = today

    async def submit(self, submissions: Sequence[Submission]) -> list[Outcome]:
        """Every submission gets an outcome; accepted ones are on the broker when this returns."""
        started = time.perf_counter()
        batch = _Batch(outcomes=[None] * len(submissions))
        today = self.today()
        for index, submission in enumerate(submissions):
            try:
                event_type, record = self._read(submission, today)
                self._pseudonymize(record, batch, today)
                body = encode_event(event_type, record, checked=True)
            except ContractError as error:
                errors = tuple(error.errors) if isinstance(error, EventValidationError) else (FieldError(error.field, error.reason),)
                batch.outcomes[index] = Outcome("rejected", submission.source, _event_id_of(submission), errors=errors)
                batch.refused.append((index, "; ".join(str(e) for e in errors)))
                continue
            batch.accepted.append(_Accepted(index, record["event_id"].lower(), event_type, record["subject"]["value"],
                                            body, hashlib.sha256(body).digest()))
        await self._drop_duplicates(batch, submissions)
        await self.store.remember_identities(
            (ps, number, kind) for ps, (number, kind) in batch.identities.items()
        )
        await self._publish(batch, submissions)
        await self._dead_letter(batch, submissions)
        outcomes = [outcome for outcome in batch.outcomes if outcome is not None]
        metrics.record_ingest(outcomes, time.perf_counter() - started)
        return outcomes

    def _read(self, submission: Submission, today: dt.date) -> tuple[str, dict[str, Any]]:
        if submission.format == "avro":
            decoded = decode_event(submission.raw)
            check_event(decoded.event_type, decoded.record, today=today)
            return decoded.event_type, decoded.record
        try:
            document = json.loads(submission.raw)
        except UnicodeDecodeError:
            raise EventValidationError([FieldError("event", "is not UTF-8 text")]) from None
        except json.JSONDecodeError as error:
            raise EventValidationError(
                [FieldError("event", f"is not valid JSON ({error.msg}; line {error.lineno}, column {error.colno})")]
            ) from None
        return event_from_json(document, today=today)

    def _pseudonymize(self, record: dict[str, Any], batch: _Batch, today: dt.date) -> None:
        persons = [record["subject"], *(related["person"] for related in record.get("related_persons", []))]
        for person in persons:
            kind = person["kind"]
            if kind == "pseudonym":
                continue
            identity = parse_identity_number(person["value"], today=today, coordination=kind == "coordination_number")
            alias = pseudonym(identity, self.key)
            batch.identities[alias] = (identity.canonical, kind)
            person["kind"], person["value"] = "pseudonym", alias

    async def _drop_duplicates(self, batch: _Batch, submissions: Sequence[Submission]) -> None:
        known = await self.store.accepted_hashes([a.event_id for a in batch.accepted], self.cluster_id)
        fresh: list[_Accepted] = []
        for accepted in batch.accepted:
            source = submissions[accepted.index].source
            earlier = known.get(accepted.event_id)
            if earlier is None:
                known[accepted.event_id] = accepted.content_hash
                fresh.append(accepted)
            elif earlier == accepted.content_hash:
                batch.outcomes[accepted.index] = Outcome("duplicate", source, accepted.event_id, accepted.event_type)
            else:
                reason = FieldError("event_id", "was already accepted for a different event; give this event its own id")
                batch.outcomes[accepted.index] = Outcome("rejected", source, accepted.event_id, accepted.event_type,
                                                         errors=(reason,), conflict=True)
                batch.refused.append((accepted.index, str(reason)))
        batch.accepted = fresh

    async def _publish(self, batch: _Batch, submissions: Sequence[Submission]) -> None:
        sends = [
            await self.producer.send(agency_topic(a.event_type), a.body, key=a.subject.encode(),
                                     headers=event_headers(a.event_type, a.event_id, a.body, "ingest"))
            for a in batch.accepted
        ]
        metadata = await asyncio.gather(*sends)
        for accepted, sent in zip(batch.accepted, metadata):
            batch.outcomes[accepted.index] = Outcome(
                "accepted", submissions[accepted.index].source, accepted.event_id, accepted.event_type,
                topic=sent.topic, partition=sent.partition, offset=sent.offset,
            )
        await self.store.record_accepted(
            self.cluster_id,
            ((a.event_id, a.event_type, a.content_hash, m.topic, m.partition, m.offset)
            for a, m in zip(batch.accepted, metadata)),
        )

    async def _dead_letter(self, batch: _Batch, submissions: Sequence[Submission]) -> None:
        if not batch.refused:
            return
        await self.store.record_dead_letters(
            (submissions[index].source, reason, submissions[index].raw) for index, reason in batch.refused
        )
        sends = []
        for index, reason in batch.refused:
            submission = submissions[index]
            headers = dead_letter_headers("ingest", reason, "ContractError", submission.source, submission.format)
            sends.append(await self.producer.send(DEADLETTER, withhold_identity_numbers_in_bytes(submission.raw),
                                                  key=(_event_id_of(submission) or submission.source).encode(),
                                                  headers=headers))
        await asyncio.gather(*sends)


def _event_id_of(submission: Submission) -> str | None:
    """The event id of a refused JSON event, when it can be read, so the sender can match the answer."""
    if submission.format != "json":
        return None
    try:
        document = json.loads(submission.raw)
    except ValueError:
        return None
    event_id = document.get("event_id") if isinstance(document, dict) else None
    return event_id if isinstance(event_id, str) and len(event_id) <= 64 else None


class NoStackError(RuntimeError):
    """Neither a configured nor a running embedded stack to talk to."""


@contextlib.asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[IngestGateway]:
    """A gateway on the configured (or running embedded) stack, closed on exit."""
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        raise NoStackError("no stack to ingest into: start `riskwatch up`, or set RISKWATCH_KAFKA_BOOTSTRAP_SERVERS "
                         "and RISKWATCH_DATABASE_URL")
    pool = await create_pool(settings.database_url)
    producer = new_producer(settings)
    await producer.start()
    try:
        yield IngestGateway(Store(pool), producer, pseudonym_key(settings), await cluster_id(settings))
    finally:
        await producer.stop()
        await pool.close()


async def submit_lines(gateway: IngestGateway, lines: Iterable[tuple[int, bytes]], name: str,
                       chunk: int) -> AsyncIterator[list[Outcome]]:
    """(line number, JSON line) through the gateway, `chunk` events per broker round trip.

    Each outcome's source reads "NAME:LINE".
    """
    pending: list[Submission] = []
    for number, line in lines:
        if line.strip():
            pending.append(Submission(line.rstrip(b"\r\n"), "json", f"{name}:{number}"))
        if len(pending) >= chunk:
            yield await gateway.submit(pending)
            pending = []
    if pending:
        yield await gateway.submit(pending)
