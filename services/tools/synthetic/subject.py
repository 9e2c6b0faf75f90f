"""What the generator knows about one subject while it simulates him, and how it records events.

The simulation is split by agency into mixins over this state (justice.py,
prison_probation.py, care.py), brought together in story.py.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.tools.synthetic.people import People, Person, Victim
from services.tools.synthetic.records import (
    AgencyEvent,
    Payload,
    SevereOutcome,
    encode,
    encode_name,
    encode_payload,
    random_uuid4,
    swedish_time,
    swedish_utc_offset,
)
from services.tools.synthetic.trajectories import PROFILES, Profile, Trajectory
from services.tools.synthetic.units import Prison, Town

MINUTE = 60
HOUR = 3600
DAY = 86400
YEAR = 365 * DAY

_LEGAL_BASIS = {
    "police": "brottsdatalagen",
    "prosecution": "brottsdatalagen",
    "prison_probation": "fengelselagen",
    "social_services": "osl_10_18c",
    "healthcare": "osl_10_18c",
}

# Median delay and spread (of the logarithm) between an event and its recording, per agency.
_RECORDING_DELAY = {
    "police": (5 * HOUR, 1.0),
    "prosecution": (4 * HOUR, 0.8),
    "prison_probation": (8 * HOUR, 0.8),
    "social_services": (2 * DAY, 0.7),
    "healthcare": (1.5 * DAY, 0.7),
}


@dataclass(slots=True)
class Incident:
    """Something he did to a victim, reported or not."""

    time: int
    kind: str
    victim: Victim
    flags: dict[str, bool] = field(default_factory=dict)
    others: tuple[Person, ...] = ()  # people around her he also threatened, e.g. a new partner


class SubjectState:
    """One subject over [window_start, window_end) (epoch seconds): hidden state, agenda, records."""

    def __init__(
        self,
        *,
        rng: random.Random,
        people: People,
        subject_number: str,
        trajectory: Trajectory,
        town: Town,
        window_start: int,
        window_end: int,
    ) -> None:
        self.rng = rng
        self.trajectory = trajectory
        self.profile: Profile = PROFILES[trajectory]
        self.town = town
        self.window_start = window_start
        self.window_end = window_end
        self.subject_number = subject_number
        self._subject_json = encode({"personal_identity_number": subject_number})
        self.events: list[tuple[int, int, int, AgencyEvent]] = []
        self.outcomes: list[SevereOutcome] = []
        self._people = people
        self._agenda: list[tuple[int, int, Callable[[int], None]]] = []
        self._sequence = 0

        profile, rng = self.profile, self.rng
        self._escalation_start = rng.uniform(*profile.escalation_start)
        self._escalation_slope = rng.uniform(*profile.escalation_slope)
        self._escalation_bumps = 0.0
        self._mental_ill_health = rng.random() < profile.mental_ill_health
        self._substance_abuse = rng.random() < profile.substance_abuse
        self._firearm_licence = rng.random() < profile.firearm_licence
        self._licence_known = False
        self._licence_revoked = False
        self._strangulation_history = False
        self._suicide_threats = False
        self._separated_at = 0
        self._last_release = 0
        self._in_custody = False
        self._custody_for_life = False
        self._probation_until = 0
        self._monitored_ban = False

        protected_share = 0.25 if trajectory in (Trajectory.ESCALATING, Trajectory.SERIAL) else 0.08
        self._protected_share = protected_share
        former = rng.randint(*profile.former_partners)
        self.victims = [Victim(people.adult(rng, protected_share=protected_share)) for _ in range(former + 1)]
        self._partner = self.victims[-1]
        self._former = self.victims[:-1]
        self.children: list[Person] = []
        if rng.random() < profile.has_children:
            self.children = [
                people.child(rng, protected=self._partner.person.protected_identity)
                for _ in range(rng.choice((1, 1, 2, 2, 3)))
            ]

    def _escalation(self, t: int) -> float:
        years = (t - self.window_start) / YEAR
        return min(1.0, max(0.0, self._escalation_start + self._escalation_slope * years + self._escalation_bumps))

    def _schedule(self, t: int, action: Callable[[int], None]) -> None:
        self._sequence += 1
        heapq.heappush(self._agenda, (t, self._sequence, action))

    def _office_time(self, t: int) -> int:
        """A working-day moment between 08 and 17, Swedish time, at or after t."""
        offset = swedish_utc_offset(t)
        day = (t + offset) // DAY  # days since 1970-01-01, a Thursday
        while True:
            if (day + 3) % 7 < 5:
                at = day * DAY - offset + int(self.rng.uniform(8 * HOUR, 17 * HOUR))
                if at >= t:
                    return at
            day += 1

    def _emit(
        self,
        event_type: str,
        event_time: int,
        agency: str,
        payload: Payload,
        related: Sequence[str],
        *,
        delay: int | None = None,
        unit: str | None = None,
        prison: Prison | None = None,
    ) -> str | None:
        """Record an agency event; events not yet recorded when the window closes are dropped."""
        rng = self.rng
        event_id = random_uuid4(rng)
        if delay is None:
            median, spread = _RECORDING_DELAY[agency]
            delay = int(median * rng.lognormvariate(0, spread))
        recorded = event_time + max(MINUTE, delay)
        if event_time < self.window_start or recorded >= self.window_end:
            return None
        if prison is not None:
            unit, region = prison.unit, prison.region
        else:
            region = self.town.region
            if unit is None:
                unit = self.town.unit(agency)
        # Serialised once, here. Identifiers, times and the agency, region and legal-basis
        # symbols are plain ASCII and need no escaping; names and payloads go through the encoder.
        json_line = (
            f'{{"event_id":"{event_id}","event_type":"{event_type}","event_time":"{swedish_time(event_time)}",'
            f'"recorded_time":"{swedish_time(recorded)}","agency":"{agency}","unit":{encode_name(unit)},'
            f'"region":"{region}","subject":{self._subject_json},"related_persons":[{",".join(related)}],'
            f'"legal_basis":"{_LEGAL_BASIS[agency]}","payload":{encode_payload(payload)}}}\n'
        )
        self._sequence += 1
        self.events.append((recorded, event_time, self._sequence, AgencyEvent(event_id, event_type, json_line)))
        return event_id
