"""Avro single-object encoding of agency events, canonical risk events and published messages.

Wire format (Avro specification, "Single object encoding"): the marker C3 01, the 8-byte
little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then
the Avro binary body. The fingerprint names the event type and version, so no registry
service is needed: a reader knows every schema Riskwatch ever wrote.

Decoding always yields the latest version's shape (Avro schema resolution fills fields
added since with their defaults), so consumers handle one shape per event type.

The messages Riskwatch publishes for others (risk-changes.v1, alerts.v1, alert-workflow.v1;
schemas.registry.PUBLISHED_TOPICS) use the same encoding: `encode_published(topic, record)`
picks the topic's record whose fields the record has, `decode_published(topic, data)` refuses
a message of a record the topic does not carry.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from schemas.errors import (
    ContractError,
    CorruptEventError,
    NotSingleObjectError,
    UnencodableEventError,
    UnknownSchemaError,
    withhold_identity_numbers,
)
from schemas.registry import (
    PUBLISHED_TOPICS,
    SINGLE_OBJECT_MARKER,
    AvroSchema,
    EventSchema,
    SchemaRegistry,
    WireSchema,
    default_registry,
    fingerprint_text,
    unknown_topic,
)

__all__ = [
    "Codec",
    "ContractError",
    "DecodedEvent",
    "PublishedMessage",
    "decode_event",
    "decode_published",
    "decode_published_message",
    "decode_risk_event",
    "default_codec",
    "encode_event",
    "encode_published",
    "encode_risk_event",
]

_HEADER_SIZE = len(SINGLE_OBJECT_MARKER) + 8


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """An agency event read from the wire.

    `version` is the version the producer wrote; `record` always has the latest version's fields.
    """

    event_type: str
    version: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PublishedMessage:
    """A message of a published topic: its record's full name, the version written, the record
    in the latest version's shape."""

    name: str
    version: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _PublishedReader:
    topic: str
    writer: WireSchema
    reader_schema: AvroSchema | None  # None when the writer is the latest version


@dataclass(frozen=True, slots=True)
class _PublishedWriter:
    schema: WireSchema  # the latest version
    fields: frozenset[str]
    required: frozenset[str]  # the fields without a default


@dataclass(frozen=True, slots=True)
class _Reader:
    writer: EventSchema
    # None when the writer is the latest version: no resolution needed.
    reader_schema: AvroSchema | None


class Codec:
    """Encoder and decoder over one registry; lookup tables are built once, not per event."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        self._readers: Mapping[bytes, _Reader] = {
            schema.header: _Reader(schema, _reader_schema(registry, schema))
            for schema in registry.by_fingerprint.values()
        }
        self._risk_event = registry.risk_event
        self._risk_event_header = registry.risk_event.header
        self._published_readers: Mapping[bytes, _PublishedReader] = {
            schema.header: _PublishedReader(topic, schema, None if schema is versions[-1] else versions[-1].schema)
            for topic in PUBLISHED_TOPICS
            for versions in registry.published_topic(topic)
            for schema in versions
        }
        self._published_writers: Mapping[str, tuple[_PublishedWriter, ...]] = {
            topic: tuple(_published_writer(versions[-1]) for versions in registry.published_topic(topic))
            for topic in PUBLISHED_TOPICS
        }

    def encode_event(
        self, event_type: str, record: Mapping[str, Any], version: int | None = None, *, checked: bool = False
    ) -> bytes:
        """`checked`: the record already passed event_from_json or decode_event (the gateway's case),
        so the value-type check, a third of the gateway's time, is skipped."""
        schema = self.registry.latest(event_type) if version is None else self.registry.schema(event_type, version)
        if record.get("event_type") != event_type:
            raise UnencodableEventError("event_type", f"the record says {record.get('event_type')!r}, not {event_type}")
        return _encode(schema, record, check_types=not checked)

    def decode_event(self, data: bytes) -> DecodedEvent:
        reader = self._readers.get(data[:_HEADER_SIZE])
        if reader is None:
            raise _header_error(data, "an agency event")
        writer = reader.writer
        record = _read(data, writer, reader.reader_schema)
        if record["event_type"] != writer.event_type:
            raise CorruptEventError(
                "event_type", f"{record['event_type']!r} in a body written with the {writer.event_type} schema"
            )
        return DecodedEvent(writer.event_type, writer.version, record)

    def encode_risk_event(self, record: Mapping[str, Any]) -> bytes:
        # Risk events are built by Riskwatch's own normalizer on the hot path: field names
        # are checked, value types are left to the writer (checking halves the rate).
        return _encode(self._risk_event, record, check_types=False)

    def decode_risk_event(self, data: bytes) -> dict[str, Any]:
        if data[:_HEADER_SIZE] != self._risk_event_header:
            raise _header_error(data, "a canonical risk event")
        return _read(data, self._risk_event, None)

    def encode_published(self, topic: str, record: Mapping[str, Any], *, checked: bool = False) -> bytes:
        """The message for `topic`, in the latest version of the topic's record whose fields `record` has.

        `checked`: the caller built the record with the right value types, so they are not checked again.
        """
        writers = self._published_writers.get(topic)
        if writers is None:
            raise unknown_topic(topic)
        keys = record.keys()
        fitting = [writer for writer in writers if writer.required <= keys and keys <= writer.fields]
        if len(fitting) != 1:
            names = " or ".join(writer.schema.name for writer in writers)
            raise UnencodableEventError("record", f"fits {len(fitting)} of the records of {topic} ({names}), not 1")
        return _encode(fitting[0].schema, record, check_types=not checked)

    def decode_published_message(self, topic: str, data: bytes) -> PublishedMessage:
        reader = self._published_readers.get(data[:_HEADER_SIZE])
        if reader is None or reader.topic != topic:
            if topic not in self._published_writers:
                raise unknown_topic(topic)
            if reader is not None:
                raise UnknownSchemaError(
                    "fingerprint", f"{reader.writer.name} v{reader.writer.version} is published on {reader.topic}, "
                    f"not on {topic}"
                )
            raise _header_error(data, f"a message on {topic}")
        writer = reader.writer
        return PublishedMessage(writer.name, writer.version, _read(data, writer, reader.reader_schema))

    def decode_published(self, topic: str, data: bytes) -> dict[str, Any]:
        return self.decode_published_message(topic, data).record


def _published_writer(schema: WireSchema) -> _PublishedWriter:
    fields = schema.schema["fields"]
    return _PublishedWriter(
        schema,
        frozenset(field["name"] for field in fields),
        frozenset(field["name"] for field in fields if "default" not in field),
    )


def _reader_schema(registry: SchemaRegistry, writer: EventSchema) -> AvroSchema | None:
    latest = registry.latest(writer.event_type)
    return None if latest is writer else latest.schema


@functools.cache
def default_codec() -> Codec:
    """The codec over the schemas shipped in this package."""
    return Codec(default_registry())


def encode_event(
    event_type: str, record: Mapping[str, Any], version: int | None = None, *, checked: bool = False
) -> bytes:
    """Single-object encode an agency event record; the latest version unless one is asked for."""
    return default_codec().encode_event(event_type, record, version, checked=checked)


def decode_event(data: bytes) -> DecodedEvent:
    """Decode a single-object encoded agency event into the latest version of its type."""
    return default_codec().decode_event(data)


def encode_risk_event(record: Mapping[str, Any]) -> bytes:
    """Single-object encode a canonical risk event (topic subject-events.v1)."""
    return default_codec().encode_risk_event(record)


def decode_risk_event(data: bytes) -> dict[str, Any]:
    """Decode a single-object encoded canonical risk event."""
    return default_codec().decode_risk_event(data)


def encode_published(topic: str, record: Mapping[str, Any], *, checked: bool = False) -> bytes:
    """Single-object encode a message for a topic Riskwatch publishes (risk-changes.v1, alerts.v1, ...)."""
    return default_codec().encode_published(topic, record, checked=checked)


def decode_published(topic: str, data: bytes) -> dict[str, Any]:
    """Decode a message of a published topic into the latest version of its record."""
    return default_codec().decode_published(topic, data)


def decode_published_message(topic: str, data: bytes) -> PublishedMessage:
    """Decode a message of a published topic, with the name and version of the record written."""
    return default_codec().decode_published_message(topic, data)


def _encode(schema: WireSchema, record: Mapping[str, Any], *, check_types: bool) -> bytes:
    if check_types:
        _check_types(schema, record)
    buffer = BytesIO()
    buffer.write(schema.header)
    try:
        # strict_allow_default: refuse fields the schema does not know, fill in defaults.
        schemaless_writer(buffer, schema.schema, record, strict_allow_default=True)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
        raise UnencodableEventError(
            "record", f"does not fit {schema.name} v{schema.version}: {withhold_identity_numbers(str(error))}"
        ) from None
    return buffer.getvalue()


def _check_types(schema: WireSchema, record: Mapping[str, Any]) -> None:
    """Refuse values of the wrong type, which the Avro writer would otherwise coerce (any text to true)."""
    try:
        validate(record, schema.schema, raise_errors=True)
    except ValidationError as error:
        wrong = error.errors[0]
        field = _field_path(str(wrong.field), schema.name)
        if wrong.datum is None:
            raise UnencodableEventError(field, "is missing") from None
        raise UnencodableEventError(
            field, f"expected {_type_text(wrong.schema)}, got {type(wrong.datum).__name__}"
        ) from None


def _field_path(avro_path: str, record_name: str) -> str:
    """riskwatch.police.CrimeReportPayload.weapon -> payload.weapon; riskwatch.police.CrimeReport.unit -> unit."""
    if avro_path.startswith(record_name + "Payload."):
        return "payload." + avro_path.removeprefix(record_name + "Payload.")
    return avro_path.removeprefix(record_name + ".") or "record"


def _type_text(schema: Any) -> str:
    if isinstance(schema, list):
        return " or ".join(_type_text(branch) for branch in schema)
    if isinstance(schema, dict):
        return str(schema.get("name") or schema.get("logicalType") or schema["type"])
    return str(schema)


def _read(data: bytes, writer: WireSchema, reader_schema: AvroSchema | None) -> dict[str, Any]:
    body = BytesIO(data)
    body.seek(_HEADER_SIZE)
    try:
        record = cast(dict[str, Any], schemaless_reader(body, writer.schema, reader_schema))
    except Exception as error:  # any failure inside the body means the body is corrupt
        raise CorruptEventError(
            "body", f"truncated or corrupt {writer.name} v{writer.version} body ({type(error).__name__})"
        ) from None
    trailing = len(data) - body.tell()
    if trailing:
        raise CorruptEventError("body", f"{trailing} bytes after the end of the {writer.name} v{writer.version} record")
    return record


def _header_error(data: bytes, expected: str) -> ContractError:
    if data[:2] != SINGLE_OBJECT_MARKER:
        return NotSingleObjectError(
            "marker", f"not Avro single-object encoding: expected C3 01, got {data[:2].hex(' ').upper() or 'nothing'}"
        )
    if len(data) < _HEADER_SIZE:
        return CorruptEventError("fingerprint", f"truncated header: {len(data)} of {_HEADER_SIZE} bytes")
    return UnknownSchemaError(
        "fingerprint",
        f"schema fingerprint {fingerprint_text(data[2:_HEADER_SIZE])} is not one Riskwatch knows for {expected}",
    )
