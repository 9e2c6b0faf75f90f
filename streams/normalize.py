"""Normalize: agency vocabulary in, canonical risk events out (subject-events.v1).

An agency record that cannot be read or normalized is moved to the dead-letter topic with
its reason (identity numbers withheld); it never blocks the partition. A record that breaks
normalization in any other way because of its content is quarantined (projections/quarantine.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from projections.events import RiskEvent
from projections.normalize import NotNormalizable, normalize
from projections.quarantine import Quarantined, content_reason, describe, event_id_of
from schemas.codec import decode_event, encode_risk_event
from schemas.errors import ContractError, withhold_identity_numbers_in_bytes
from streams.consume import Record, StageDefect
from streams.kafka import dead_letter_headers, risk_event_headers
from streams.topology import DEADLETTER, SUBJECT_EVENTS


@dataclass(frozen=True, slots=True)
class NormalizeOutcome:
    forwarded: int
    refused: tuple[str, ...]  # reasons
    quarantined: tuple[Quarantined, ...] = ()


async def normalize_batch(records: Sequence[Record], producer: AIOKafkaProducer) -> NormalizeOutcome:
    """Forward every record and return once the broker acknowledged all of them.

    The batch's risk events go out in event-time order. A subject's events reach normalize on
    several agency topics, so their order in one fetch is the broker's, not the world's; the
    risk model gives the same projection whatever the order, but an event that arrives after
    a later one of its subject makes it check the later ones again. Sorting spares that work
    for everything one batch holds.
    """
    sends = []
    refused: list[str] = []
    forwarded: list[tuple[RiskEvent, bytes, Record]] = []
    quarantined: list[Quarantined] = []
    for record in records:
        event_id: object = None
        try:
            decoded = decode_event(record.value)
            event_id = decoded.record.get("event_id")
            event = normalize(decoded.event_type, decoded.record)
            forwarded.append((event, encode_risk_event(event.to_record()), record))
        except (ContractError, NotNormalizable) as error:
            reason = str(error)
            refused.append(reason)
            source = f"{record.topic}[{record.partition}]@{record.offset}"
            headers = dead_letter_headers("normalize", reason, type(error).__name__, source, "avro",
                                          (record.topic, record.partition, record.offset))
            sends.append(await producer.send(DEADLETTER, withhold_identity_numbers_in_bytes(record.value),
                                             key=source.encode(), headers=headers))
        except Exception as error:
            reason_class = content_reason(error)
            if reason_class is None:
                raise  # not about this record's content: a defect of the stage
            quarantined.append(Quarantined("normalize", record.topic, record.partition, record.offset, record.key,
                                           record.value, event_id_of(event_id),
                                           reason_class, describe(error)))
    if len(records) > 1 and len(quarantined) == len(records):
        raise StageDefect(f"all {len(records)} records of the batch failed; first: {quarantined[0].reason}")
    forwarded.sort(key=lambda item: item[0].sort_key)
    for event, encoded, record in forwarded:
        # the risk event keeps the acceptance time, so end-to-end latency is measured from ingest
        sends.append(await producer.send(SUBJECT_EVENTS, encoded, key=event.subject.encode(),
                                         timestamp_ms=record.timestamp_ms,
                                         headers=risk_event_headers(event, encoded, "normalize")))
    await asyncio.gather(*sends)
    return NormalizeOutcome(forwarded=len(forwarded), refused=tuple(refused), quarantined=tuple(quarantined))
