"""Kafka plumbing shared by every process: client options, topic creation, cluster identity, headers."""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from projections.events import RISKWATCH_NAMESPACE
from schemas.codec import decode_published_message
from schemas.errors import ContractError, withhold_identity_numbers
from streams.topology import ALL_TOPICS

if TYPE_CHECKING:
    from projections.events import RiskEvent


class SecretText(Protocol):
    def get_secret_value(self) -> str: ...


class KafkaSettings(Protocol):
    """What the Kafka plumbing reads of the settings (the runtime's Settings has it all)."""

    @property
    def kafka_bootstrap_servers(self) -> str | None: ...
    @property
    def kafka_security_protocol(self) -> str: ...
    @property
    def kafka_sasl_mechanism(self) -> str | None: ...
    @property
    def kafka_sasl_username(self) -> str | None: ...
    @property
    def kafka_sasl_password(self) -> SecretText | None: ...
    @property
    def kafka_ssl_cafile(self) -> Path | None: ...
    @property
    def kafka_ssl_certfile(self) -> Path | None: ...
    @property
    def kafka_ssl_keyfile(self) -> Path | None: ...
    @property
    def kafka_replication_factor(self) -> int: ...
    @property
    def kafka_min_insync_replicas(self) -> int: ...
    @property
    def partitions(self) -> int: ...


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options for every aiokafka client, SASL and TLS included."""
    assert settings.kafka_bootstrap_servers, "no Kafka bootstrap servers configured"
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
        options["ssl_context"] = context
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        )
    return options


def new_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that answers only after every in-sync replica has the record (acks=all)."""
    options = {"acks": "all", "linger_ms": 2, "max_batch_size": 256 * 1024, **overrides}
    return AIOKafkaProducer(**client_options(settings), **options)


async def ensure_topics(settings: KafkaSettings) -> None:
    """Create every topic explicitly with the configured partitions (never rely on auto-creation)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        config = {"min.insync.replicas": str(settings.kafka_min_insync_replicas), "retention.ms": "-1"}
        missing = [
            NewTopic(name, settings.partitions, settings.kafka_replication_factor, topic_configs=config)
            for name in ALL_TOPICS
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                await admin.create_topics(missing)
    finally:
        await admin.close()


async def cluster_id(settings: KafkaSettings) -> str:
    """The broker cluster's id: offsets are only meaningful within one cluster."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        description = await admin.describe_cluster()
        return str(description["cluster_id"])
    finally:
        await admin.close()


# ---- record headers -------------------------------------------------------------------------
# Events carry CloudEvents' Kafka binding headers (binary mode: the value is the event), the
# writer schema's fingerprint and a W3C trace context, so that a consumer can route, check a
# schema and follow one event across topics without decoding the value. The trace id is the
# event id: the agency record and the risk event normalized from it share one trace.

AVRO_CONTENT_TYPE = "application/vnd.apache.avro+binary"
EVENT_HEADERS = ("ce_specversion", "ce_id", "ce_type", "ce_source", "content-type", "schema_fingerprint",
                 "traceparent")
Headers = list[tuple[str, bytes]]


def event_headers(event_type: str, event_id: str, value: bytes, source: str, *, trace_of: str | None = None) -> Headers:
    """Headers of one Avro single-object encoded event written by `source` (ingest, normalize, ...);
    in the trace of event `trace_of`, by default its own."""
    fingerprint = f"0x{int.from_bytes(value[2:10], 'little'):016x}"  # as schemas.registry.fingerprint_text
    trace = _trace_id(event_id if trace_of is None else trace_of)
    span = hashlib.sha256(f"{source}|{event_id}".encode()).hexdigest()[:16]
    return [("ce_specversion", b"1.0"), ("ce_id", event_id.encode()), ("ce_type", event_type.encode()),
            ("ce_source", f"riskwatch/{source}".encode()), ("content-type", AVRO_CONTENT_TYPE.encode()),
            ("schema_fingerprint", fingerprint.encode()), ("traceparent", f"00-{trace}-{span}-01".encode())]


def risk_event_headers(event: RiskEvent, value: bytes, source: str) -> Headers:
    """Headers of a canonical risk event on subject-events.v1: its type is the agency event type it came from."""
    return event_headers(event.source_type, event.event_id, value, source)


# What Riskwatch publishes (risk-changes.v1, alerts.v1, alert-workflow.v1) carries the same
# headers: ce_type is the record's name, ce_id the message's own id, and the trace is that of
# the event that caused it, so an agency event, its alerts and its risk change share one trace.
_PUBLISHED_SOURCES = {"riskwatch.RiskChange": "risk", "riskwatch.Alert": "risk",
                      "riskwatch.EscalatedAlert": "workflow", "riskwatch.AlertStep": "workflow",
                      "riskwatch.CaseStep": "workflow", "riskwatch.ReviewStep": "workflow"}


def published_headers(topic: str, value: bytes) -> Headers:
    """Headers of a message the outbox relay publishes; none for bytes that are not one (JSON
    written before the contracts, still in the outbox after an upgrade)."""
    try:
        message = decode_published_message(topic, value)
    except ContractError:
        return []
    record = message.record
    causing = record.get("causing_event_id")
    message_id = record.get("event_id") or record.get("alert_id") or str(
        uuid.uuid5(RISKWATCH_NAMESPACE, f"{record['subject']}|risk_change|{causing}|{record['policy_version']}"))
    return event_headers(message.name, message_id, value, _PUBLISHED_SOURCES.get(message.name, "relay"),
                         trace_of=causing)


def _trace_id(event_id: str) -> str:
    try:
        return uuid.UUID(event_id).hex
    except ValueError:
        return hashlib.sha256(event_id.encode()).hexdigest()[:32]


# Dead letters follow Kafka Connect's dead-letter-queue convention: the original record's
# position and the error in `__connect.errors.*` headers (the value stays the input, identity
# numbers withheld), keyed so that one input's refusals stay together.
DEAD_LETTER_HEADERS = ("__connect.errors.topic", "__connect.errors.partition", "__connect.errors.offset",
                       "__connect.errors.stage", "__connect.errors.exception.class.name",
                       "__connect.errors.exception.message", "riskwatch.source", "riskwatch.format")


def dead_letter_headers(stage: str, error: str, error_class: str, source: str, input_format: str,
                        position: tuple[str, int, int] | None = None) -> Headers:
    """`stage` refused the input read from `source` (a record at `position`, or an HTTP line or file line)."""
    headers: Headers = []
    if position is not None:
        topic, partition, offset = position
        headers += [("__connect.errors.topic", topic.encode()), ("__connect.errors.partition", str(partition).encode()),
                    ("__connect.errors.offset", str(offset).encode())]
    return [
        *headers,
        ("__connect.errors.stage", stage.encode()),
        ("__connect.errors.exception.class.name", error_class.encode()),
        ("__connect.errors.exception.message", withhold_identity_numbers(error).encode()),
        ("riskwatch.source", withhold_identity_numbers(source).encode()),
        ("riskwatch.format", input_format.encode()),
    ]


async def group_lag(settings: KafkaSettings, groups: Mapping[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """Records not yet committed, per consumer group and topic: end offsets minus committed offsets
    (a partition with nothing committed counts from 0: event topics are never truncated)."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**client_options(settings))
    await consumer.start()
    await admin.start()
    try:
        await consumer.topics()  # fetches the metadata partitions_for_topic reads
        lag: dict[str, dict[str, int]] = {}
        for group, topics in groups.items():
            partitions = [TopicPartition(topic, partition) for topic in topics
                          for partition in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                lag[group] = {topic: 0 for topic in topics}
                continue
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            lag[group] = {topic: 0 for topic in topics}
            for tp in partitions:
                position = committed.get(tp)
                start = max(position.offset, 0) if position is not None else 0
                lag[group][tp.topic] += max(0, ends[tp] - start)
        return lag
    finally:
        await admin.close()
        await consumer.stop()
