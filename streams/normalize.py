"""Normalize: agency vocabulary in, canonical risk events out (subject-events.v1).

An agency record that cannot be read or normalized is moved to the dead-letter topic with
its reason (identity numbers withheld); it never blocks the partition.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Sequence

from aiokafka import AIOKafkaProducer

from projections.normalize import NotNormalizable, normalize
from schemas.codec import decode_event, encode_risk_event
from schemas.errors import ContractError, withhold_identity_numbers_in_bytes
from streams.consume import Record
from streams.topology import DEADLETTER, SUBJECT_EVENTS


@dataclass(frozen=True, slots=True)
class NormalizeOutcome:
    forwarded: int
    refused: tuple[str, ...]  # reasons


async def normalize_batch(records: Sequence[Record], producer: AIOKafkaProducer) -> NormalizeOutcome:
    """Forward every record, in order, and return once the broker acknowledged all of them."""
    sends = []
    refused: list[str] = []
    for record in records:
        try:
            decoded = decode_event(record.value)
            event = normalize(decoded.event_type, decoded.record)
        except (ContractError, NotNormalizable) as error:
            reason = str(error)
            refused.append(reason)
            headers = [("reason", reason.encode()), ("source", f"{record.topic}[{record.partition}]@{record.offset}".encode()),
                       ("format", b"avro")]
            sends.append(await producer.send(DEADLETTER, withhold_identity_numbers_in_bytes(record.value), headers=headers))
            continue
        # the risk event keeps the acceptance time, so end-to-end latency is measured from ingest
        sends.append(await producer.send(SUBJECT_EVENTS, encode_risk_event(event.to_record()),
                                         key=event.subject.encode(), timestamp_ms=record.timestamp_ms))
    await asyncio.gather(*sends)
    return NormalizeOutcome(forwarded=len(records) - len(refused), refused=tuple(refused))
