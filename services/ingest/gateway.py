"""The ingest gateway: validate, pseudonymize, publish (acks=all), and only then answer.

HTTP and bulk files share this one path. Every submission comes from an agency client, which
may submit only its agency's event types for its units. Bad or forbidden input is answered
with every wrong field and kept, with its reason, in PostgreSQL (in full) and on
ingest.deadletter.v1 (identity numbers withheld, so no clear identity ever reaches a topic).

An event id is claimed in PostgreSQL before the event is published, so one id is accepted
once. A broker or database that does not answer within the configured bound makes the
outcome "unavailable" (503): nothing is accepted that is not on the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterable, Literal, Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.adapters.postgres.pool import create_pool
from services.adapters.postgres.store import Store
from schemas.codec import decode_event, encode_event
from schemas.errors import ContractError, EventValidationError, FieldError, withhold_identity_numbers_in_bytes
from schemas.json_format import check_event, event_from_json, parse_json_event
from schemas.rules import UUID_PATTERN
from services.runtime import metrics
from services.api.auth import AgencyClient
from schemas.identity import parse_identity_number, pseudonym
from services.runtime.state import pseudonym_key
from services.runtime.settings import Settings
from streams.kafka import cluster_id, dead_letter_headers, event_headers, new_producer
from streams.topology import DEADLETTER, agency_topic

log = logging.getLogger(__name__)

Format = Literal["json", "avro", "other"]  # other: a body of a media type the gateway does not take
Status = Literal["accepted", "duplicate", "rejected", "unavailable"]
# Of a larger refused input the dead-letter topic keeps this prefix, with the size and SHA-256.
DEAD_LETTER_TOPIC_BYTES = 64 * 1024

# A dependency away, not a defect: the sender is told to retry (503) instead of a traceback.
# asyncpg raises InternalClientError when it returns a connection that died mid-query to its pool.
DATABASE_AWAY = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                 asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError, asyncpg.QueryCanceledError)
BROKER_AWAY = (KafkaError, TimeoutError)

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
    forbidden: bool = False  # the client may not submit this event type or for this unit

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
    repeats: dict[str, list[int]] = field(default_factory=dict)  # event id -> indexes repeating one published here


class IngestGateway:
    def __init__(self, store: Store, producer: AIOKafkaProducer, key: bytes, cluster_id: str, *,
                 timeout: float = 2.0, client: AgencyClient | None = None,
                 today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.timezone.utc).date()) -> None:
        self.store = store
        self.cluster_id = cluster_id
        self.producer = producer
        self.key = key
        self.timeout = timeout  # for the broker and the database, each stage of a submission
        self.client = client  # who submits when `submit` is not told (bulk files, the demo)
        self.today = today

    async def submit(self, submissions: Sequence[Submission], client: AgencyClient | None = None) -> list[Outcome]:
        """Every submission gets an outcome; accepted ones are on the broker when this returns."""
        sender = client or self.client
        if sender is None:
            raise ValueError("a submission needs the agency client that sends it")
        started = time.perf_counter()
        batch = _Batch(outcomes=[None] * len(submissions))
        today = self.today()
        for index, submission in enumerate(submissions):
            try:
                event_type, record = self._read(submission, today)
                refusal = sender.refusal(event_type, record["unit"])
                if refusal is not None:
                    batch.outcomes[index] = Outcome("rejected", submission.source, record["event_id"], event_type,
                                                    errors=(refusal,), forbidden=True)
                    batch.refused.append((index, str(refusal)))
                    continue
                self._pseudonymize(record, batch, today)
                body = encode_event(event_type, record, checked=True)
            except ContractError as error:
                errors = tuple(error.errors) if isinstance(error, EventValidationError) else (FieldError(error.field, error.reason),)
                batch.outcomes[index] = Outcome("rejected", submission.source, _event_id_of(submission), errors=errors)
                batch.refused.append((index, "; ".join(str(e) for e in errors)))
                continue
            batch.accepted.append(_Accepted(index, record["event_id"].lower(), event_type, record["subject"]["value"],
                                            body, hashlib.sha256(body).digest()))
        try:
            async with asyncio.timeout(self.timeout):
                await self._claim(batch, submissions, sender)
                await self.store.remember_identities(
                    (ps, number, kind) for ps, (number, kind) in batch.identities.items()
                )
        except DATABASE_AWAY as error:
            self._give_up(batch, submissions, error)
            self._unkept(batch)  # waiting on the database again would only double the answer's delay
        else:
            await self._publish(batch, submissions)
            await self._dead_letter(batch, submissions)
        outcomes = [outcome for outcome in batch.outcomes if outcome is not None]
        metrics.record_ingest(outcomes, time.perf_counter() - started)
        return outcomes

    async def refuse(self, submission: Submission, error: FieldError) -> Outcome:
        """Dead-letter a body refused before it could be read as events (too large, a wrong media type)."""
        batch = _Batch(outcomes=[Outcome("rejected", submission.source, errors=(error,))], refused=[(0, str(error))])
        await self._dead_letter(batch, [submission])
        outcomes = [outcome for outcome in batch.outcomes if outcome is not None]
        metrics.record_ingest(outcomes, 0.0)
        return outcomes[0]

    def _read(self, submission: Submission, today: dt.date) -> tuple[str, dict[str, Any]]:
        if submission.format == "avro":
            decoded = decode_event(submission.raw)
            check_event(decoded.event_type, decoded.record, today=today)
            return decoded.event_type, decoded.record
        return event_from_json(parse_json_event(submission.raw), today=today)

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

    async def _claim(self, batch: _Batch, submissions: Sequence[Submission], sender: AgencyClient) -> None:
        """Claim the batch's event ids; keep in `batch.accepted` only the events this batch publishes.

        A repeated id is a duplicate (same content) or a conflict (different content), whether
        the other is in this batch, accepted earlier, or being published by another request.
        """
        first: dict[str, _Accepted] = {}
        for accepted in batch.accepted:
            first.setdefault(accepted.event_id, accepted)
        claimed: set[str] = set()
        held: dict[str, tuple[bytes, bool]] = {}
        pending = list(first.values())
        for _ in range(3):  # an id released between our claim and our look is claimed again
            claimed |= await self.store.claim_event_ids(
                self.cluster_id, sender.name, [(a.event_id, a.event_type, a.content_hash) for a in pending],
                in_flight_seconds=2 * self.timeout,
            )
            others = [a.event_id for a in pending if a.event_id not in claimed]
            held.update(await self.store.claimed_hashes(others) if others else {})
            pending = [a for a in pending if a.event_id not in claimed and a.event_id not in held]
            if not pending:
                break
        fresh: list[_Accepted] = []
        for accepted in batch.accepted:
            source = submissions[accepted.index].source
            if accepted.event_id in claimed:
                earlier, published = first[accepted.event_id].content_hash, True
                if first[accepted.event_id] is accepted:
                    fresh.append(accepted)
                    continue
                if earlier == accepted.content_hash:
                    batch.repeats.setdefault(accepted.event_id, []).append(accepted.index)
            elif accepted.event_id in held:
                earlier, published = held[accepted.event_id]
            else:
                batch.outcomes[accepted.index] = _unavailable(source, accepted, "event_id", "could not be claimed")
                continue
            if earlier != accepted.content_hash:
                reason = FieldError("event_id", "was already accepted for a different event; give this event its own id")
                batch.outcomes[accepted.index] = Outcome("rejected", source, accepted.event_id, accepted.event_type,
                                                         errors=(reason,), conflict=True)
                batch.refused.append((accepted.index, str(reason)))
            elif published:
                batch.outcomes[accepted.index] = Outcome("duplicate", source, accepted.event_id, accepted.event_type)
            else:
                batch.outcomes[accepted.index] = _unavailable(source, accepted, "event_id",
                                                              "is being accepted by another request; retry")
        batch.accepted = fresh

    async def _publish(self, batch: _Batch, submissions: Sequence[Submission]) -> None:
        """Publish the claimed events, waiting at most the timeout for the broker.

        An event never handed to the producer has its claim released; one handed over but not
        acknowledged in time may still arrive, so its claim stays for the same content only.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        sends: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout_at(deadline):
                for a in batch.accepted:
                    sends.append(await self.producer.send(
                        agency_topic(a.event_type), a.body, key=a.subject.encode(),
                        headers=event_headers(a.event_type, a.event_id, a.body, "ingest")))
        except BROKER_AWAY:
            pass
        if sends:
            await asyncio.wait(sends, timeout=max(0.0, deadline - loop.time()))
        acknowledged: list[tuple[_Accepted, Any]] = []
        unsent: list[_Accepted] = []
        unknown: list[_Accepted] = []
        for position, accepted in enumerate(batch.accepted):
            if position >= len(sends):
                unsent.append(accepted)
            elif sends[position].done() and not sends[position].cancelled() and sends[position].exception() is None:
                acknowledged.append((accepted, sends[position].result()))
            else:
                unknown.append(accepted)
        for accepted, sent in acknowledged:
            batch.outcomes[accepted.index] = Outcome(
                "accepted", submissions[accepted.index].source, accepted.event_id, accepted.event_type,
                topic=sent.topic, partition=sent.partition, offset=sent.offset,
            )
        for accepted in unsent + unknown:
            # a repeat of the event in this batch is no duplicate of an accepted event now
            for index in (accepted.index, *batch.repeats.get(accepted.event_id, ())):
                batch.outcomes[index] = _unavailable(submissions[index].source, accepted,
                                                     "broker", "did not acknowledge in time; retry")
        if unsent or unknown:
            log.warning("broker did not acknowledge %d of %d events within %.1f s; answered 503",
                        len(unsent) + len(unknown), len(batch.accepted), self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                if unsent:
                    await self.store.release_claims(self.cluster_id, [a.event_id for a in unsent])
                if unknown:
                    await self.store.abandon_claims(self.cluster_id, [a.event_id for a in unknown])
                await self.store.record_accepted(
                    self.cluster_id, ((a.event_id, m.topic, m.partition, m.offset) for a, m in acknowledged))
        except DATABASE_AWAY as error:
            # The broker has the acknowledged events: they stay accepted. Their claims, left
            # unpublished, lapse after the in-flight time, and the same content may then be sent again.
            log.warning("could not record %d published events (%s)", len(acknowledged), type(error).__name__)

    def _give_up(self, batch: _Batch, submissions: Sequence[Submission], error: BaseException) -> None:
        """The database is away before anything was published: nothing of the batch is accepted."""
        log.warning("database unavailable (%s); answering 503 for %d events", type(error).__name__,
                    len(batch.accepted))
        for accepted in batch.accepted:
            for index in (accepted.index, *batch.repeats.get(accepted.event_id, ())):
                batch.outcomes[index] = _unavailable(submissions[index].source, accepted,
                                                     "database", "is unavailable; retry")
        # Claims are not released: the database is away. Unpublished, they lapse after the
        # in-flight time, and the same content may then claim them again.
        batch.accepted = []

    async def _dead_letter(self, batch: _Batch, submissions: Sequence[Submission]) -> None:
        """Keep every refused submission; one that cannot be kept is answered 503 instead."""
        if not batch.refused:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self.store.record_dead_letters(
                    (submissions[index].source, reason, submissions[index].raw) for index, reason in batch.refused
                )
                sends = []
                for index, reason in batch.refused:
                    submission = submissions[index]
                    headers = dead_letter_headers("ingest", reason, "ContractError", submission.source,
                                                  submission.format)
                    kept = withhold_identity_numbers_in_bytes(submission.raw)
                    if len(kept) > DEAD_LETTER_TOPIC_BYTES:
                        # A record must fit the broker's limit; PostgreSQL keeps the whole input.
                        headers += [("size", str(len(submission.raw)).encode()),
                                    ("sha256", hashlib.sha256(submission.raw).hexdigest().encode())]
                        kept = kept[:DEAD_LETTER_TOPIC_BYTES]
                    sends.append(await self.producer.send(
                        DEADLETTER, kept, key=(_event_id_of(submission) or submission.source).encode(), headers=headers))
                await asyncio.gather(*sends)
        except (*DATABASE_AWAY, *BROKER_AWAY) as error:
            log.warning("could not keep %d refused submissions (%s); answered 503", len(batch.refused),
                        type(error).__name__)
            self._unkept(batch)

    def _unkept(self, batch: _Batch) -> None:
        """Refused submissions that cannot be kept in the dead letters are answered 503, to be sent again."""
        for index, _ in batch.refused:
            refused = batch.outcomes[index]
            assert refused is not None
            batch.outcomes[index] = Outcome("unavailable", refused.source, refused.event_id, refused.event_type,
                                            errors=(FieldError("dead letters", "cannot be kept right now; retry"),))


def _unavailable(source: str, accepted: _Accepted, field: str, reason: str) -> Outcome:
    return Outcome("unavailable", source, accepted.event_id, accepted.event_type, errors=(FieldError(field, reason),))


def _event_id_of(submission: Submission) -> str | None:
    """The event id of a refused JSON event, when it can be read, so the sender can match the answer."""
    if submission.format != "json":
        return None
    try:
        document = parse_json_event(submission.raw)
    except ContractError:
        return None
    event_id = document.get("event_id") if isinstance(document, dict) else None
    # Only a real event id is echoed: anything else may be an identity number or not text at all.
    return event_id if isinstance(event_id, str) and UUID_PATTERN.match(event_id) else None


class NoStackError(RuntimeError):
    """Neither a configured nor a running embedded stack to talk to."""


# A bulk chunk holds thousands of events: the broker may take longer than for one request.
BULK_TIMEOUT_SECONDS = 120.0


@contextlib.asynccontextmanager
async def open_gateway(settings: Settings, client: AgencyClient,
                       timeout: float = BULK_TIMEOUT_SECONDS) -> AsyncIterator[IngestGateway]:
    """A gateway on the configured (or running embedded) stack submitting as `client`, closed on exit."""
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        raise NoStackError("no stack to ingest into: start `riskwatch up`, or set RISKWATCH_KAFKA_BOOTSTRAP_SERVERS "
                         "and RISKWATCH_DATABASE_URL")
    if client.agency is None:
        log.warning("submitting as %s: every agency and unit allowed, recorded under that name", client.name)
    pool = await create_pool(settings.database_url)
    producer = new_producer(settings)
    await producer.start()
    try:
        yield IngestGateway(Store(pool), producer, pseudonym_key(settings), await cluster_id(settings),
                            timeout=timeout, client=client)
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
