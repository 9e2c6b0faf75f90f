"""Kafka plumbing shared by every process: client options, topic creation, cluster identity."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.settings import Settings
from streams.topology import ALL_TOPICS


def client_options(settings: Settings) -> dict[str, Any]:
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


def new_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that answers only after every in-sync replica has the record (acks=all)."""
    options = {"acks": "all", "linger_ms": 2, "max_batch_size": 256 * 1024, **overrides}
    return AIOKafkaProducer(**client_options(settings), **options)


async def ensure_topics(settings: Settings) -> None:
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
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first
    finally:
        await admin.close()


async def cluster_id(settings: Settings) -> str:
    """The broker cluster's id: offsets are only meaningful within one cluster."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        description = await admin.describe_cluster()
        return str(description["cluster_id"])
    finally:
        await admin.close()
