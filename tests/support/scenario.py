"""Building agency events in the JSON ingest format for tests."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from typing import Any

from services.tools.synthetic.identities import fictitious_number

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
