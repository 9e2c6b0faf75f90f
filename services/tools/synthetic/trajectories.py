"""The kinds of subject history the generator draws, and their parameters.

A subject's hidden escalation e(t) in [0, 1] starts at `escalation_start` and moves by
`escalation_slope` a year; separation and contact-ban breaches push it up. It drives how
often incidents happen, how grave they are, and the chance that an incident is a severe
outcome. Shares and rates are invented to exercise the machinery, not estimates of
anything real (docs/synthetic-data.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Trajectory(enum.Enum):
    QUIET = "quiet"
    DECLINING = "declining"
    ESCALATING = "escalating"
    SERIAL = "serial"


@dataclass(frozen=True, slots=True)
class Profile:
    share: float
    incidents_per_day: float  # at full escalation; scaled by (0.15 + e)
    escalation_start: tuple[float, float]
    escalation_slope: tuple[float, float]  # change of e per year
    separation: float  # chance the couple separates inside the window
    mental_ill_health: float
    substance_abuse: float
    firearm_licence: float
    starts_in_prison: float
    starts_on_probation: float
    has_children: float
    former_partners: tuple[int, int]  # earlier victims he still targets
    first_incident_within: float  # share of the window in which he first comes to notice


PROFILES: dict[Trajectory, Profile] = {
    Trajectory.QUIET: Profile(
        share=0.50,
        incidents_per_day=0.006,
        escalation_start=(0.05, 0.20),
        escalation_slope=(-0.30, 0.0),
        separation=0.08,
        mental_ill_health=0.08,
        substance_abuse=0.15,
        firearm_licence=0.06,
        starts_in_prison=0.01,
        starts_on_probation=0.04,
        has_children=0.45,
        former_partners=(0, 0),
        first_incident_within=0.85,
    ),
    Trajectory.DECLINING: Profile(
        share=0.25,
        incidents_per_day=0.025,
        escalation_start=(0.25, 0.45),
        escalation_slope=(-0.90, -0.40),
        separation=0.15,
        mental_ill_health=0.15,
        substance_abuse=0.25,
        firearm_licence=0.07,
        starts_in_prison=0.04,
        starts_on_probation=0.20,
        has_children=0.45,
        former_partners=(0, 0),
        first_incident_within=0.50,
    ),
    Trajectory.ESCALATING: Profile(
        share=0.18,
        incidents_per_day=0.05,
        escalation_start=(0.20, 0.40),
        escalation_slope=(0.80, 1.60),
        separation=0.70,
        mental_ill_health=0.30,
        substance_abuse=0.35,
        firearm_licence=0.12,
        starts_in_prison=0.08,
        starts_on_probation=0.15,
        has_children=0.50,
        former_partners=(0, 0),
        first_incident_within=0.35,
    ),
    Trajectory.SERIAL: Profile(
        share=0.07,
        incidents_per_day=0.045,
        escalation_start=(0.45, 0.60),
        escalation_slope=(0.0, 0.60),
        separation=0.50,
        mental_ill_health=0.25,
        substance_abuse=0.40,
        firearm_licence=0.08,
        starts_in_prison=0.12,
        starts_on_probation=0.20,
        has_children=0.40,
        former_partners=(1, 2),
        first_incident_within=0.35,
    ),
}

TRAJECTORIES: tuple[Trajectory, ...] = tuple(PROFILES)
TRAJECTORY_CUM_SHARES: tuple[float, ...] = tuple(
    sum(PROFILES[t].share for t in TRAJECTORIES[: i + 1]) for i in range(len(TRAJECTORIES))
)

# Severe outcome chance of one incident: (base + gravity * e^3) * marker multipliers, capped.
SEVERE_BASE = 0.002
SEVERE_GRAVITY = 0.025
SEVERE_CAP = 0.5
# Chance per day of a severe act out of the blue, whatever the history.
SUDDEN_SEVERE_PER_DAY = 0.00002
