"""The kinds of incident a subject commits, and how the justice system tends to respond.

Chances are per incident and invented for the simulation (docs/synthetic-data.md):
`reported` that any agency hears of it, `at_home` that police are called out to the
home, `arrested`, `detained` given an arrest, `imprisoned` given detention, and the
range of a prison sentence in months. Severe outcomes are the last three kinds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IncidentKind:
    offence: str | None  # the catalogue's Offence symbol; None for a quarrel that is no crime
    reported: float
    at_home: float
    arrested: float
    detained: float
    imprisoned: float
    sentence_months: tuple[int, int]
    violent: bool


# fmt: off
INCIDENT_KINDS: dict[str, IncidentKind] = {
    "dispute":            IncidentKind(None,                           0.55, 1.00, 0.00, 0.00, 0.00, (0, 0),   False),
    "harassment":         IncidentKind("harassment",                   0.30, 0.20, 0.05, 0.00, 0.30, (1, 6),   False),
    "criminal_damage":    IncidentKind("criminal_damage",              0.35, 0.60, 0.10, 0.00, 0.30, (1, 6),   False),
    "assault":            IncidentKind("assault",                      0.45, 0.60, 0.30, 0.10, 0.30, (1, 6),   True),
    "unlawful_threat":    IncidentKind("unlawful_threat",              0.40, 0.30, 0.25, 0.15, 0.35, (1, 9),   False),
    "stalking":           IncidentKind("stalking",                     0.35, 0.05, 0.20, 0.25, 0.55, (6, 24),  False),
    "gross_violation":    IncidentKind("gross_violation_of_integrity", 0.45, 0.70, 0.60, 0.50, 0.75, (9, 30),  True),
    "rape":               IncidentKind("rape",                         0.30, 0.40, 0.60, 0.70, 0.90, (24, 60), True),
    "breach":             IncidentKind("contact_ban_breach",           0.60, 0.20, 0.45, 0.35, 0.45, (1, 6),   False),
    "aggravated_assault": IncidentKind("aggravated_assault",           0.85, 0.70, 0.85, 0.75, 0.90, (18, 60), True),
    "attempted_murder":   IncidentKind("attempted_murder",             0.93, 0.70, 0.95, 0.95, 1.00, (0, 0),   True),
    "murder":             IncidentKind("murder",                       1.00, 0.80, 1.00, 1.00, 1.00, (0, 0),   True),
}
# fmt: on

# Chance that a contact-ban breach is reported when the ban is electronically monitored.
MONITORED_BREACH_REPORTED = 0.95
