"""The AsyncAPI 3.0 document of every Riskwatch topic, generated from the topology and the schemas.

Channels and who writes and reads them come from streams/topology.py, the Avro value schemas
from schemas/avro (every version of every agency event type, the canonical risk event, and
every version of each record of the topics the outbox relay publishes: risk-changes.v1,
alerts.v1, alert-workflow.v1), the headers from streams/kafka.py. Partitions, replicas and consumer
groups are those of the settings the document is generated with. Served by the API at
/asyncapi.json and printed by `riskwatch asyncapi`; tests/unit/test_asyncapi.py validates it
against the AsyncAPI 3.0.0 JSON schema.
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

from schemas.registry import PUBLISHED_TOPICS, SchemaRegistry, default_registry
from services.runtime.settings import Settings
from streams.kafka import AVRO_CONTENT_TYPE, DEAD_LETTER_HEADERS, EVENT_HEADERS
from streams.topology import (AGENCY_TOPICS, ALERT_WORKFLOW, ALERTS, ALL_TOPICS, CONSUMERS, DEADLETTER, PRODUCERS,
                              RISK_CHANGES, STAGE_TOPICS, SUBJECT_EVENTS, stage_group)

AVRO_SCHEMA_FORMAT = "application/vnd.apache.avro;version=1.9.0"
KAFKA_BINDING = "0.5.0"
_PSEUDONYM_KEY = {"type": "string", "description": "The subject's pseudonym (keyed HMAC of the identity number): "
                                                   "one subject's events stay in order on one partition."}

_EVENT_HEADER_MEANINGS = {
    "ce_specversion": "CloudEvents version of these headers (binary content mode: the value is the event)",
    "ce_id": "the event id (UUID); on the topics the outbox relay publishes the message's own id: the alert_id, "
             "the step's event_id, or for a risk change a UUID derived from subject, causing event and policy",
    "ce_type": "the agency event type, e.g. police.crime_report; on subject-events.v1 the one it came from; on the "
               "topics the outbox relay publishes the record's name, e.g. riskwatch.Alert",
    "ce_source": "the writer: riskwatch/ingest, riskwatch/normalize, riskwatch/scheduler, riskwatch/api, "
                 "riskwatch/risk (risk changes, alerts), riskwatch/workflow (escalations, workflow steps)",
    "content-type": f"{AVRO_CONTENT_TYPE} (Avro single-object encoding)",
    "schema_fingerprint": "CRC-64-AVRO fingerprint of the writer schema, as 0x followed by 16 hex digits",
    "traceparent": "W3C trace context; the trace id is the event id, so an event and its risk event share a trace "
                   "(and its alerts and risk change, whose trace is that of their causing event)",
}
_DEAD_LETTER_HEADER_MEANINGS = {
    "__connect.errors.topic": "topic of the refused record (normalize only)",
    "__connect.errors.partition": "its partition (normalize only)",
    "__connect.errors.offset": "its offset (normalize only)",
    "__connect.errors.stage": "the stage that refused it: ingest or normalize",
    "__connect.errors.exception.class.name": "the kind of refusal",
    "__connect.errors.exception.message": "every wrong field and why, as `field: reason; ...`",
    "riskwatch.source": "where the input came from: an HTTP line, a file line, or topic[partition]@offset",
    "riskwatch.format": "json or avro: how to read the value",
}

_SUMMARIES = {
    SUBJECT_EVENTS: "Canonical risk events, one subject's in order on one partition",
    RISK_CHANGES: "A subject's level, score and explanation after each change",
    ALERTS: "Alerts, when risk rises or a release or breach comes at high risk",
    DEADLETTER: "Refused input with its reasons, identity numbers withheld",
    ALERT_WORKFLOW: "Steps on alerts (acknowledged, assigned, closed, escalated), on cases, and completed reviews",
}


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    registry = default_registry()
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        channel = _identifier(topic)
        names = _topic_messages(topic, registry, messages)
        channels[channel] = {
            "address": topic,
            "title": topic,
            "summary": _SUMMARIES.get(topic, f"{topic.split('.')[1].replace('-', ' ').capitalize()} events, "
                                             "as the agency sent them (pseudonymized)"),
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": {
                "topic": topic, "partitions": settings.partitions, "replicas": settings.kafka_replication_factor,
                "topicConfiguration": {"retention.ms": -1, "min.insync.replicas": settings.kafka_min_insync_replicas},
                "bindingVersion": KAFKA_BINDING}},
        }
        references = [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]
        for producer in PRODUCERS[topic]:
            operations[f"{_identifier(producer)}Sends{channel[0].upper()}{channel[1:]}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{channel}"}, "title": f"{producer} writes {topic}",
                "messages": references}
        for consumer in CONSUMERS[topic]:
            operation: dict[str, Any] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{channel}"},
                "title": f"{consumer} reads {topic}", "messages": references}
            if consumer in STAGE_TOPICS:
                operation["bindings"] = {"kafka": {
                    "groupId": {"type": "string", "enum": [stage_group(settings.consumer_group, consumer)]},
                    "bindingVersion": KAFKA_BINDING}}
            operations[f"{_identifier(consumer)}Receives{channel[0].upper()}{channel[1:]}"] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Riskwatch topics",
            "version": metadata.version("riskwatch"),
            "description": ("Every Kafka topic of Riskwatch: key, value schema, headers, who writes and who reads it. "
                            "Every event topic is keyed by the subject pseudonym and has no time retention: with the "
                            "PostgreSQL archive it is the log the projections are rebuilt from."),
        },
        "defaultContentType": AVRO_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _topic_messages(topic: str, registry: SchemaRegistry, messages: dict[str, Any]) -> list[str]:
    """Add the topic's messages to `messages`; their names."""
    agency = next((name for name, agency_topic in AGENCY_TOPICS.items() if agency_topic == topic), None)
    if agency is not None:
        names = []
        for event_type in registry.event_types():
            if not event_type.startswith(agency + "."):
                continue
            for schema in registry.versions(event_type):
                name = _identifier(f"{event_type}.v{schema.version}")
                messages[name] = _avro_message(f"{event_type} v{schema.version}", schema.schema,
                                               schema.fingerprint_hex)
                names.append(name)
        return names
    name = _identifier(topic)
    if topic == SUBJECT_EVENTS:
        risk_event = registry.risk_event
        messages[name] = _avro_message("canonical risk event", risk_event.schema, risk_event.fingerprint_hex)
    elif topic == DEADLETTER:
        messages[name] = {
            "name": name, "title": "refused input", "contentType": "application/octet-stream",
            "payload": {"type": "string", "description": "The input as received (JSON or Avro bytes, see "
                                                         "riskwatch.format), identity numbers withheld"},
            "headers": _headers(DEAD_LETTER_HEADERS, _DEAD_LETTER_HEADER_MEANINGS),
            "bindings": {"kafka": {"key": {"type": "string", "description": "the event id when it can be read, "
                                           "else where the input came from"}, "bindingVersion": KAFKA_BINDING}},
        }
    elif topic in PUBLISHED_TOPICS:
        names = []
        for versions in registry.published_topic(topic):
            for record in versions:
                name = _identifier(f"{record.name}.v{record.version}")
                messages[name] = _avro_message(f"{record.name} v{record.version}", record.schema,
                                               record.fingerprint_hex)
                names.append(name)
        return names
    else:
        raise ValueError(f"{topic}: no message is described for this topic")
    return [name]


def _avro_message(title: str, schema: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    return {
        "name": title.split()[0], "title": title, "contentType": AVRO_CONTENT_TYPE,
        "summary": f"Avro single-object encoding, schema fingerprint {fingerprint}",
        "payload": {"schemaFormat": AVRO_SCHEMA_FORMAT, "schema": _plain_avro(schema)},
        "headers": _headers(EVENT_HEADERS, _EVENT_HEADER_MEANINGS),
        "bindings": _key_binding(),
    }


def _plain_avro(schema: Any) -> Any:
    """The Avro schema as written: without fastavro's parse marks, full names split into name and namespace."""
    if isinstance(schema, list):
        return [_plain_avro(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    plain = {key: _plain_avro(value) for key, value in schema.items() if not key.startswith("__")}
    if plain.get("type") in ("record", "enum", "fixed") and "." in plain.get("name", ""):
        plain["namespace"], plain["name"] = plain["name"].rsplit(".", 1)
    return plain


def _headers(names: tuple[str, ...], meanings: dict[str, str]) -> dict[str, Any]:
    return {"type": "object",
            "properties": {name: {"type": "string", "description": meanings[name]} for name in names}}


def _key_binding() -> dict[str, Any]:
    return {"kafka": {"key": _PSEUDONYM_KEY, "bindingVersion": KAFKA_BINDING}}


def _identifier(text: str) -> str:
    """A component name AsyncAPI accepts (letters, digits, . _ -), in lower camel case."""
    words = [word for word in re.split(r"[^A-Za-z0-9]+", text) if word]
    return words[0].lower() + "".join(word[:1].upper() + word[1:] for word in words[1:])
