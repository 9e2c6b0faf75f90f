"""Normalize: agency vocabulary in, canonical risk events out (subject-events.v1).

An agency record that cannot be read or normalized is moved to the dead-letter topic with
its reason (identity numbers withheld); it never blocks the partition.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Sequence

from aiokafka import AIOKafkaProducer

from projections.events import RiskEvent
from projections.normalize import NotNormalizable, normalize
from schemas.codec import decode_event, encode_risk_event
from schemas.errors import ContractError, withhold_identity_numbers_in_bytes
from streams.consume import Record
from streams.kafka import dead_letter_headers, risk_event_headers
from streams.topology import DEADLETTER, SUBJECT_EVENTS


@dataclass(frozen=True, slots=True)
class NormalizeOutcome:
    forwarded: int
    refused: tuple[str, ...]  # reasons


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
    forwarded: list[tuple[RiskEvent, Record]] = []
    for record in records:
        try:
            decoded = decode_event(record.value)
            forwarded.append((normalize(decoded.event_type, decoded.record), record))
        except (ContractError, NotNormalizable) as error:
            reason = str(error)
            refused.append(reason)
            source = f"{record.topic}[{record.partition}]@{record.offset}"
            headers = dead_letter_headers("normalize", reason, type(error).__name__, source, "avro",
                                          (record.topic, record.partition, record.offset))
            sends.append(await producer.send(DEADLETTER, withhold_identity_numbers_in_bytes(record.value),
                                             key=source.encode(), headers=headers))
    forwarded.sort(key=lambda pair: pair[0].sort_key)
    for event, record in forwarded:
        # the risk event keeps the acceptance time, so end-to-end latency is measured from ingest
        sends.append(await producer.send(SUBJECT_EVENTS, value := encode_risk_event(event.to_record()),
                                         key=event.subject.encode(), timestamp_ms=record.timestamp_ms,
                                         headers=risk_event_headers(event, value, "normalize")))
    await asyncio.gather(*sends)
    return NormalizeOutcome(forwarded=len(forwarded), refused=tuple(refused))
