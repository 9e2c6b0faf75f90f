"""The AsyncAPI document: valid AsyncAPI 3.0, and every topic, event type and header of the code in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from click.testing import CliRunner

from schemas.registry import PUBLISHED_TOPICS, default_registry
from services.api.asyncapi import asyncapi_document
from services.cli.main import main
from services.runtime.settings import Settings
from streams.kafka import DEAD_LETTER_HEADERS, EVENT_HEADERS
from streams.topology import ALL_TOPICS, CONSUMERS, DEADLETTER, PRODUCERS, SUBJECT_EVENTS

# the AsyncAPI 3.0.0 JSON schema as the AsyncAPI initiative publishes it (Apache-2.0)
SCHEMA = Path(__file__).parents[1] / "vendor" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def validator() -> Any:
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(Settings(partitions=12, kafka_replication_factor=3))


def test_the_document_is_valid_asyncapi_3(validator: Any, document: dict[str, Any]) -> None:
    errors = [f"{list(error.instance_path)}: {error.message[:200]}" for error in validator.iter_errors(document)]
    assert errors == []


def test_the_validator_refuses_a_broken_document(validator: Any, document: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(document))
    first = next(iter(broken["channels"].values()))
    first["address"] = 42
    assert not validator.is_valid(broken)


def test_every_topic_is_a_channel_with_its_writers_and_readers(document: dict[str, Any]) -> None:
    channels = {channel["address"]: name for name, channel in document["channels"].items()}
    assert set(channels) == set(ALL_TOPICS)
    for topic, name in channels.items():
        assert document["channels"][name]["bindings"]["kafka"]["partitions"] == 12
        operations = [op for op in document["operations"].values() if op["channel"]["$ref"] == f"#/channels/{name}"]
        assert sum(op["action"] == "send" for op in operations) == len(PRODUCERS[topic]) > 0
        assert sum(op["action"] == "receive" for op in operations) == len(CONSUMERS[topic])
    receive = [op for op in document["operations"].values() if op["action"] == "receive" and "bindings" in op]
    groups = {op["bindings"]["kafka"]["groupId"]["enum"][0] for op in receive}
    assert groups == {"riskwatch-normalize", "riskwatch-risk"}


def test_every_event_type_version_has_its_avro_schema_and_the_headers(document: dict[str, Any]) -> None:
    registry = default_registry()
    messages = document["components"]["messages"]
    titles = {message["title"]: message for message in messages.values()}
    for event_type in registry.event_types():
        for schema in registry.versions(event_type):
            message = titles[f"{event_type} v{schema.version}"]
            assert message["payload"]["schemaFormat"].startswith("application/vnd.apache.avro")
            assert schema.fingerprint_hex in message["summary"]
            assert list(message["headers"]["properties"]) == list(EVENT_HEADERS)
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
    channel_of = {channel["address"]: channel for channel in document["channels"].values()}
    (risk_event,) = channel_of[SUBJECT_EVENTS]["messages"].values()
    assert messages[risk_event["$ref"].rsplit("/", 1)[1]]["payload"]["schema"]["name"] == "RiskEvent"
    (dead_letter,) = channel_of[DEADLETTER]["messages"].values()
    assert list(messages[dead_letter["$ref"].rsplit("/", 1)[1]]["headers"]["properties"]) == list(DEAD_LETTER_HEADERS)


def test_every_published_topic_references_the_avro_schema_of_each_record_version(document: dict[str, Any]) -> None:
    registry = default_registry()
    messages = document["components"]["messages"]
    channel_of = {channel["address"]: channel for channel in document["channels"].values()}
    for topic, names in PUBLISHED_TOPICS.items():
        referenced = [messages[ref["$ref"].rsplit("/", 1)[1]] for ref in channel_of[topic]["messages"].values()]
        expected = [schema for name in names for schema in registry.published_versions(name)]
        assert [message["title"] for message in referenced] == [f"{s.name} v{s.version}" for s in expected]
        for message, schema in zip(referenced, expected, strict=True):
            assert message["contentType"] == "application/vnd.apache.avro+binary"
            assert message["payload"]["schemaFormat"].startswith("application/vnd.apache.avro")
            avro = message["payload"]["schema"]
            assert f"{avro['namespace']}.{avro['name']}" == schema.name
            assert schema.fingerprint_hex in message["summary"]
            assert list(message["headers"]["properties"]) == list(EVENT_HEADERS)
    assert all(message["contentType"] != "application/json" for message in messages.values())


def test_riskwatch_asyncapi_prints_the_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["asyncapi"], env={"RISKWATCH_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(json.dumps(asyncapi_document(Settings())))
