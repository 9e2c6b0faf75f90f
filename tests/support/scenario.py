"""Building agency events for tests: in the JSON ingest format, as encoded records, as stories."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import uuid
from collections.abc import Iterable
from typing import Any

from projections.events import DAY_MS, RiskEvent, Victim
from projections.normalize import normalize
from schemas.codec import encode_event, encode_risk_event
from schemas.json_format import event_from_json
from services.tools.synthetic.identities import fictitious_number
from streams.topology import agency_topic

TODAY = dt.date(2026, 11, 1)  # the day the tests' identity numbers are read on
_births = itertools.count()


def new_person() -> str:
    """A fictitious personal identity number nobody else in the test run uses."""
    return fictitious_number(dt.date(1970, 1, 1) + dt.timedelta(days=next(_births)), coordination=False)


def event(event_type: str, subject: str, at: dt.datetime, payload: dict[str, Any] | None = None, *,
          victims: list[str] | None = None, protected: bool = False, region: str = "stockholm",
          unit: str = "Polisen Region Stockholm", event_id: str | None = None) -> dict[str, Any]:
    agency = event_type.split(".", 1)[0]
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "event_time": at.isoformat(),
        "recorded_time": (at + dt.timedelta(hours=2)).isoformat(),
        "agency": agency,
        "unit": unit,
        "region": region,
        "subject": {"personal_identity_number": subject},
        "related_persons": [
            {"role": "victim", "personal_identity_number": victim, "protected_identity": protected}
            for victim in victims or []
        ],
        "legal_basis": "osl_10_18c" if agency in ("social_services", "healthcare") else None,
        "payload": payload or {},
    }


def jsonl(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 3, 1, hour, tzinfo=dt.UTC) + dt.timedelta(days=day)


def escalating_story(subject: str, victim: str, *, custody: bool = True) -> list[dict[str, Any]]:
    """Separation, strangulation three days later, contact ban, breach, (custody,) release."""
    story = [
        event("social_services.separation_reported", subject, at(0), {"imminent": False}, victims=[victim],
              unit="Socialtjänsten Södermalm"),
        event("police.crime_report", subject, at(3), {"offence": "aggravated_assault", "strangulation": True},
              victims=[victim]),
        event("prosecution.contact_ban_issued", subject, at(5),
              {"ban_type": "ordinary", "valid_from": "2026-03-06", "valid_to": "2026-09-06"}, victims=[victim],
              unit="Åklagarmyndigheten Stockholm"),
        event("prosecution.contact_ban_breach_reported", subject, at(10), {"electronic_monitoring": False},
              victims=[victim], unit="Åklagarmyndigheten Stockholm"),
        event("prison_probation.custody_started", subject, at(11), {"facility": "Anstalten Åkersberga"},
              unit="Kriminalvården Åkersberga"),
        event("prison_probation.released", subject, at(40), {"release_kind": "conditional"},
              unit="Kriminalvården Frivård Stockholm"),
    ]
    return story if custody else [e for e in story if e["event_type"] != "prison_probation.custody_started"]


def agency_record(subject: str, at_day: int, **changes: Any) -> tuple[str, bytes, str]:
    """(topic, single-object encoded agency record, event id) of a police crime report, with `changes`
    applied after parsing: what no gateway would let through."""
    document = event("police.crime_report", new_person(), at(at_day), {"offence": "unlawful_threat"})
    document["subject"] = {"pseudonym": subject}
    event_type, record = event_from_json(document, today=TODAY)
    record.update(changes)
    return agency_topic(event_type), encode_event(event_type, record, checked=True), document["event_id"]


def risk_record(subject: str, at_day: int, **changes: Any) -> tuple[bytes, str]:
    """A canonical risk event for subject-events.v1, with `changes` (RiskEvent fields) applied."""
    document = event("police.crime_report", new_person(), at(at_day), {"offence": "unlawful_threat"})
    document["subject"] = {"pseudonym": subject}
    event_type, record = event_from_json(document, today=TODAY)
    risk_event = dataclasses.replace(normalize(event_type, record), **changes)
    return encode_risk_event(risk_event.to_record()), risk_event.event_id


# Canonical risk events for the pure core (projections): one subject, times in days after T0.
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
SUBJECT = "subject-1"


def risk_event(
    event_id: str,
    day: float,
    source_type: str,
    *,
    offence: str | None = None,
    markers: Iterable[str] = (),
    victims: Iterable[Victim] = (),
    attributes: dict[str, str] | None = None,
    region: str = "syd",
    unit: str = "Enhet Malmö",
) -> RiskEvent:
    """A canonical risk event of SUBJECT, `day` days after T0, as the pure core sees it."""
    when = T0 + int(day * DAY_MS)
    return RiskEvent(
        event_id=event_id,
        subject=SUBJECT,
        source_type=source_type,
        event_time=when,
        recorded_time=when,
        agency=source_type.split(".")[0],
        region=region,
        unit=unit,
        offence=offence,
        markers=frozenset(markers),
        victims=tuple(victims),
        attributes=attributes or {},
    )


def crime(
    event_id: str, day: float, offence: str = "assault", *markers: str, victims: Iterable[Victim] = ()
) -> RiskEvent:
    return risk_event(event_id, day, "police.crime_report", offence=offence, markers=markers, victims=victims)


def spellings(number: str) -> dict[str, str]:
    """One identity number written every way the ingest rules must recognise."""
    digits = number.replace("-", "")
    short = digits[2:]
    full_width = "".join(chr(0xFF10 + int(d)) for d in digits)
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in digits)
    return {
        "twelve digits, dash": number,
        "twelve digits": digits,
        "ten digits, dash": f"{short[:6]}-{short[6:]}",
        "ten digits, plus": f"{short[:6]}+{short[6:]}",
        "ten digits": short,
        "space": f"{digits[:8]} {digits[8:]}",
        "full-width": full_width[:8] + "－" + full_width[8:],
        "arabic-indic": arabic_indic,
        "zero-width spaces": "\u200b".join(digits),
        "no-break space": f"{digits[:8]}\u00a0{digits[8:]}",
        "JSON escapes": "".join(f"\\u{ord(c):04x}" for c in number),
    }
