"""Ground truth for an evaluation: severe outcomes, by subject pseudonym.

Either the generator's truth file (every severe act that happened, reported or not), or,
without one, the severe offences that police crime reports in the log itself describe.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from services.tools.evaluation.metrics import SevereOutcome
from schemas.identity import IdentityNumberError, parse_identity_number, pseudonym

SEVERE_OFFENCES = frozenset({"aggravated_assault", "attempted_murder", "murder"})
CRIME_REPORT = "police.crime_report"
_IDENTITY_KINDS = {"personal_identity_number": False, "coordination_number": True}


class TruthError(ValueError):
    """A truth file line that cannot be read; the message names the line and the field."""


def outcomes_from_truth(path: Path, key: bytes, today: dt.date) -> list[SevereOutcome]:
    """The truth file's outcomes, each subject's identity number replaced by its pseudonym under `key`."""
    outcomes: list[SevereOutcome] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            document = _object(line, where)
            try:
                identity = parse_identity_number(str(document["subject_personal_identity_number"]), today=today)
                outcomes.append(SevereOutcome(pseudonym(identity, key), str(document["outcome"]),
                                              _millis(str(document["occurred_at"]))))
            except KeyError as missing:
                raise TruthError(f"{where}: {missing.args[0]}: is missing") from None
            except IdentityNumberError as error:
                raise TruthError(f"{where}: subject_personal_identity_number: {error}") from None
            except ValueError as error:
                raise TruthError(f"{where}: occurred_at: {error}") from None
    return outcomes


def outcomes_from_log(path: Path, key: bytes, today: dt.date) -> list[SevereOutcome]:
    """Severe offences reported in police crime reports of the log, at their event time.

    Lines the ingest would refuse are skipped here too; unreported outcomes cannot be seen.
    """
    outcomes: set[SevereOutcome] = set()
    with path.open("rb") as lines:
        for line in lines:
            try:
                document = json.loads(line)
                if document.get("event_type") != CRIME_REPORT:
                    continue
                offence = document["payload"]["offence"]
                if offence in SEVERE_OFFENCES:
                    outcomes.add(SevereOutcome(_subject(document["subject"], key, today), offence,
                                               _millis(document["event_time"])))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return sorted(outcomes, key=lambda outcome: (outcome.occurred_at, outcome.subject, outcome.outcome))


def _object(line: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(line)
    except ValueError as error:
        raise TruthError(f"{where}: is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise TruthError(f"{where}: is not a JSON object")
    return document


def _subject(reference: dict[str, str], key: bytes, today: dt.date) -> str:
    if "pseudonym" in reference:
        return reference["pseudonym"]
    for kind, coordination in _IDENTITY_KINDS.items():
        if kind in reference:
            return pseudonym(parse_identity_number(reference[kind], today=today, coordination=coordination), key)
    raise KeyError("subject")


def _millis(text: str) -> int:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("needs a time zone offset")
    return int(moment.timestamp() * 1000)
