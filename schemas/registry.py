"""The Avro contracts: loads the .avsc files once and composes one record schema per event version.

Layout under schemas/avro/:
- types/<full name>.avsc: named types shared by every event (riskwatch.PersonRef, riskwatch.Offence, ...);
- envelope.avsc: the fields every agency event carries, with riskwatch.Payload as a placeholder;
- payloads/<event type>.v<N>.avsc: the payload record of one version of one event type;
- canonical/riskwatch.canonical.RiskEvent.v<N>.avsc: the canonical risk event;
- published/<full name>.v<N>.avsc: the messages Riskwatch publishes for others (PUBLISHED_TOPICS).

Each composed schema is self-contained (a shared type is defined at its first use and
referenced by name after it), so its Parsing Canonical Form, and hence its fingerprint,
changes whenever anything it depends on changes.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint as schema_fingerprint
from fastavro.schema import to_parsing_canonical_form

from schemas.errors import UnknownEventTypeError

SINGLE_OBJECT_MARKER = b"\xc3\x01"
PAYLOAD_PLACEHOLDER = "riskwatch.Payload"
RISK_EVENT_NAME = "riskwatch.canonical.RiskEvent"
# The topics Riskwatch publishes for other systems (streams/topology.py names them too), and
# the records each carries: the fingerprint of a message says which one it is.
PUBLISHED_TOPICS: Mapping[str, tuple[str, ...]] = {
    "risk-changes.v1": ("riskwatch.RiskChange",),
    "alerts.v1": ("riskwatch.Alert", "riskwatch.EscalatedAlert"),
    "alert-workflow.v1": ("riskwatch.AlertStep", "riskwatch.CaseStep", "riskwatch.ReviewStep"),
}

_PAYLOAD_FILE = re.compile(r"^(?P<event_type>(?P<agency>[a-z_]+)\.(?P<name>[a-z_]+))\.v(?P<version>[1-9][0-9]*)\.avsc$")
_CANONICAL_FILE = re.compile(r"^(?P<name>[A-Za-z_.]+)\.v(?P<version>[1-9][0-9]*)\.avsc$")

AvroSchema = dict[str, Any]


class SchemaDefinitionError(Exception):
    """The .avsc files contradict each other; a fault in Riskwatch itself, found at load."""


@dataclass(frozen=True, slots=True)
class WireSchema:
    """One parsed schema and the header that marks its single-object encoding."""

    name: str
    version: int
    schema: AvroSchema
    canonical_form: str
    fingerprint: bytes  # CRC-64-AVRO, 8 bytes little-endian as on the wire

    @property
    def header(self) -> bytes:
        return SINGLE_OBJECT_MARKER + self.fingerprint

    @property
    def fingerprint_hex(self) -> str:
        return fingerprint_text(self.fingerprint)


@dataclass(frozen=True, slots=True)
class EventSchema(WireSchema):
    """One version of one agency event type: envelope and payload in one record."""

    event_type: str

    @property
    def agency(self) -> str:
        return self.event_type.partition(".")[0]

    @property
    def payload_schema(self) -> AvroSchema:
        payload: AvroSchema = self.schema["fields"][-1]["type"]
        return payload


def fingerprint_text(fingerprint: bytes) -> str:
    """The fingerprint as the 64-bit number Avro's Java implementation prints."""
    return f"0x{int.from_bytes(fingerprint, 'little'):016x}"


class SchemaRegistry:
    """Every agency event schema by fingerprint and by (event type, version), the risk event, and
    every version of every published record by name."""

    def __init__(
        self,
        events: Mapping[str, tuple[EventSchema, ...]],
        risk_event: WireSchema,
        published: Mapping[str, tuple[WireSchema, ...]] | None = None,
    ) -> None:
        self._versions = dict(events)
        self.risk_event = risk_event
        self.by_fingerprint: Mapping[bytes, EventSchema] = {
            schema.fingerprint: schema for versions in self._versions.values() for schema in versions
        }
        if len(self.by_fingerprint) != sum(len(versions) for versions in self._versions.values()):
            raise SchemaDefinitionError("two event schemas have the same fingerprint")
        self._published = dict(published or {})

    def published_names(self) -> tuple[str, ...]:
        """The full names of the published records, sorted."""
        return tuple(sorted(self._published))

    def published_versions(self, name: str) -> tuple[WireSchema, ...]:
        """All versions of a published record, oldest first."""
        try:
            return self._published[name]
        except KeyError:
            raise UnknownEventTypeError("record", f"{name!r} is not a record Riskwatch publishes") from None

    def published_topic(self, topic: str) -> tuple[tuple[WireSchema, ...], ...]:
        """The versions of each record the topic carries, in PUBLISHED_TOPICS order."""
        names = PUBLISHED_TOPICS.get(topic)
        if names is None:
            raise unknown_topic(topic)
        return tuple(self.published_versions(name) for name in names)

    def event_types(self) -> tuple[str, ...]:
        return tuple(sorted(self._versions))

    def versions(self, event_type: str) -> tuple[EventSchema, ...]:
        """All versions of the type, oldest first."""
        try:
            return self._versions[event_type]
        except KeyError:
            raise _unknown_event_type(event_type, self._versions) from None

    def latest(self, event_type: str) -> EventSchema:
        return self.versions(event_type)[-1]

    def schema(self, event_type: str, version: int) -> EventSchema:
        versions = self.versions(event_type)
        if not 1 <= version <= len(versions):
            raise UnknownEventTypeError("event_type", f"{event_type} has versions 1 to {len(versions)}, not {version}")
        return versions[version - 1]


def unknown_topic(topic: str) -> UnknownEventTypeError:
    shown = topic if len(topic) <= 60 else topic[:60] + "..."
    known = ", ".join(sorted(PUBLISHED_TOPICS))
    return UnknownEventTypeError("topic", f"{shown!r} is not a topic Riskwatch publishes; those are {known}")


def _unknown_event_type(event_type: str, known: Iterable[str]) -> UnknownEventTypeError:
    """An error that points to the known event types nearest the one given."""
    names = sorted(known)
    shown = event_type if len(event_type) <= 60 else event_type[:60] + "..."
    nearby = difflib.get_close_matches(event_type, names, n=3, cutoff=0.8)
    agency = event_type.partition(".")[0]
    same_agency = [name for name in names if name.startswith(agency + ".")]
    if nearby:
        hint = "did you mean " + " or ".join(nearby) + "?"
    elif same_agency:
        hint = f"the {agency} event types are " + ", ".join(same_agency)
    else:
        hint = "event types start with one of " + ", ".join(sorted({name.partition(".")[0] for name in names}))
    return UnknownEventTypeError("event_type", f"'{shown}' is not a known event type; {hint}")


@functools.cache
def default_registry() -> SchemaRegistry:
    """The registry of the schemas shipped in this package, loaded on first use."""
    return load_registry(resources.files("schemas") / "avro")


def load_registry(root: Traversable) -> SchemaRegistry:
    shared = _load_shared_types(root / "types")
    envelope = _read_json(root / "envelope.avsc")
    events: dict[str, list[EventSchema]] = {}
    for path in sorted(root.joinpath("payloads").iterdir(), key=lambda item: item.name):
        match = _PAYLOAD_FILE.match(path.name)
        if match is None:
            raise SchemaDefinitionError(f"{path.name}: payload files are named <agency>.<event>.v<N>.avsc")
        event_type, version = match["event_type"], int(match["version"])
        payload = _read_json(path)
        _check_payload_name(path.name, payload, match["agency"], match["name"])
        record = _compose_event(envelope, payload, event_type)
        wire = _parse(_inline_shared_types(record, shared), version)
        events.setdefault(event_type, []).append(
            EventSchema(wire.name, version, wire.schema, wire.canonical_form, wire.fingerprint, event_type)
        )
    for event_type, versions in events.items():
        versions.sort(key=lambda schema: schema.version)
        if [schema.version for schema in versions] != list(range(1, len(versions) + 1)):
            raise SchemaDefinitionError(f"{event_type}: versions must run 1, 2, ... without gaps")
    return SchemaRegistry(
        {t: tuple(v) for t, v in events.items()},
        _load_risk_event(root / "canonical", shared),
        _load_published(root / "published", shared),
    )


def _load_shared_types(folder: Traversable) -> dict[str, AvroSchema]:
    shared: dict[str, AvroSchema] = {}
    for path in folder.iterdir():
        if not path.name.endswith(".avsc"):
            continue
        definition = _read_json(path)
        full_name = f"{definition['namespace']}.{definition['name']}"
        if path.name != full_name + ".avsc":
            raise SchemaDefinitionError(f"{path.name}: a shared type lives in <full name>.avsc, here {full_name}.avsc")
        shared[full_name] = definition
    return shared


def _load_risk_event(folder: Traversable, shared: Mapping[str, AvroSchema]) -> WireSchema:
    latest: tuple[int, AvroSchema] | None = None
    for path in folder.iterdir():
        match = _CANONICAL_FILE.match(path.name)
        if match is None or match["name"] != RISK_EVENT_NAME:
            continue
        version = int(match["version"])
        if latest is None or version > latest[0]:
            latest = (version, _read_json(path))
    if latest is None:
        raise SchemaDefinitionError(f"no {RISK_EVENT_NAME} schema")
    return _parse(_inline_shared_types(latest[1], shared), latest[0])


def _load_published(folder: Traversable, shared: Mapping[str, AvroSchema]) -> dict[str, tuple[WireSchema, ...]]:
    found: dict[str, list[WireSchema]] = {}
    for path in sorted(folder.iterdir(), key=lambda item: item.name):
        match = _CANONICAL_FILE.match(path.name)
        if match is None:
            raise SchemaDefinitionError(f"{path.name}: published records are named <full name>.v<N>.avsc")
        wire = _parse(_inline_shared_types(_read_json(path), shared), int(match["version"]))
        if wire.name != match["name"]:
            raise SchemaDefinitionError(f"{path.name}: holds the record {wire.name}")
        found.setdefault(wire.name, []).append(wire)
    published: dict[str, tuple[WireSchema, ...]] = {}
    for name, versions in found.items():
        versions.sort(key=lambda schema: schema.version)
        if [schema.version for schema in versions] != list(range(1, len(versions) + 1)):
            raise SchemaDefinitionError(f"{name}: versions must run 1, 2, ... without gaps")
        published[name] = tuple(versions)
    listed = {name for names in PUBLISHED_TOPICS.values() for name in names}
    if listed != set(published):
        raise SchemaDefinitionError(f"published records {sorted(published)} are not those of PUBLISHED_TOPICS")
    fingerprints = {schema.fingerprint for versions in published.values() for schema in versions}
    if len(fingerprints) != sum(len(versions) for versions in published.values()):
        raise SchemaDefinitionError("two published schemas have the same fingerprint")
    return published


def _read_json(path: Traversable) -> AvroSchema:
    loaded: AvroSchema = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def record_name(event_type: str) -> str:
    """police.crime_report -> riskwatch.police.CrimeReport."""
    agency, _, name = event_type.partition(".")
    return f"riskwatch.{agency}.{_camel(name)}"


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _check_payload_name(file_name: str, payload: AvroSchema, agency: str, name: str) -> None:
    expected = (f"riskwatch.{agency}", _camel(name) + "Payload")
    if (payload.get("namespace"), payload.get("name")) != expected:
        raise SchemaDefinitionError(f"{file_name}: the payload record must be {expected[0]}.{expected[1]}")


def _compose_event(envelope: AvroSchema, payload: AvroSchema, event_type: str) -> AvroSchema:
    record = copy.deepcopy(envelope)
    del record["namespace"]
    record["name"] = record_name(event_type)
    record["doc"] = payload.get("doc", "")
    (slot,) = [field for field in record["fields"] if field["type"] == PAYLOAD_PLACEHOLDER]
    slot["type"] = copy.deepcopy(payload)
    return record


def _inline_shared_types(schema: AvroSchema, shared: Mapping[str, AvroSchema]) -> AvroSchema:
    """Define each shared type where it is first used, so the schema stands alone."""
    defined: set[str] = set()

    def inline(node: Any) -> Any:
        if isinstance(node, str):
            if node in shared and node not in defined:
                defined.add(node)
                return inline(copy.deepcopy(shared[node]))
            return node
        if isinstance(node, list):
            return [inline(branch) for branch in node]
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "record":
                node["fields"] = [{**field, "type": inline(field["type"])} for field in node["fields"]]
            elif kind == "array":
                node["items"] = inline(node["items"])
            elif kind == "map":
                node["values"] = inline(node["values"])
        return node

    inlined: AvroSchema = inline(copy.deepcopy(schema))
    return inlined


def _parse(schema: AvroSchema, version: int) -> WireSchema:
    # Each schema gets its own named-type table: two versions of one event share record
    # names with different fields, so one table across versions would mix them up.
    parsed = parse_schema(schema, named_schemas={})
    if not isinstance(parsed, dict):
        raise SchemaDefinitionError(f"{schema.get('name')}: a contract is a record schema")
    canonical_form = to_parsing_canonical_form(parsed)
    fingerprint = bytes.fromhex(schema_fingerprint(canonical_form, "CRC-64-AVRO"))
    return WireSchema(parsed["name"], version, parsed, canonical_form, fingerprint)
