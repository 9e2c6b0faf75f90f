"""One subject's history over the window: what happened, and what the agencies recorded.

Incidents (and healthcare, social-services and probation episodes) arrive as a Poisson
process whose rate follows the subject's hidden escalation, sampled by thinning. Agency
reactions that follow an incident or a decision (arrest, detention, trial, release, a
contact ban running out) are put on a small per-subject agenda. Everything is drawn from
the subject's own random generator, so a subject's history depends only on the seed, its
index and the identity numbers it is handed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from services.tools.synthetic.care import CareAndSocialServices
from services.tools.synthetic.incidents import INCIDENT_KINDS, MONITORED_BREACH_REPORTED
from services.tools.synthetic.justice import PoliceAndProsecution
from services.tools.synthetic.people import Victim
from services.tools.synthetic.records import Outcome, SevereOutcome
from services.tools.synthetic.subject import DAY, Incident
from services.tools.synthetic.trajectories import (
    SEVERE_BASE,
    SEVERE_CAP,
    SEVERE_GRAVITY,
    SUDDEN_SEVERE_PER_DAY,
    Trajectory,
)

_SEVERE_MIX: tuple[tuple[Outcome, float], ...] = (
    ("aggravated_assault", 0.65),
    ("attempted_murder", 0.88),
    ("murder", 1.0),
)


class Story(PoliceAndProsecution, CareAndSocialServices):
    """Simulates one subject: call run(), then read events and outcomes."""

    def run(self) -> None:
        rng, profile = self.rng, self.profile
        window = self.window_end - self.window_start
        if rng.random() < profile.starts_in_prison:
            self._start_in_prison()
        elif rng.random() < profile.starts_on_probation:
            self._start_on_probation()
        if rng.random() < profile.separation:
            self._schedule(self.window_start + int(rng.uniform(0.1, 0.8) * window), self._separate)
        first = self.window_start + int(rng.random() * profile.first_incident_within * window)
        self._schedule(first, self._first_incident)

        t = self.window_start
        episodes = self._episode_kinds()
        ceiling = self._rate_ceiling()
        while True:
            candidate = t + int(rng.expovariate(ceiling) * DAY) + 1
            if self._agenda and self._agenda[0][0] <= candidate:
                t, _, action = heapq.heappop(self._agenda)
                if t >= self.window_end:
                    break
                action(t)
            elif candidate >= self.window_end:
                break
            else:
                t = candidate
                if self._in_custody or self._custody_for_life or not self._maybe_episode(t, ceiling, episodes):
                    continue
            # Rates change only in actions and episodes, so the bound is renewed after each.
            ceiling = self._rate_ceiling()

    def _rate_ceiling(self) -> float:
        """A bound on the total episode rate until the state next changes: the rates at e=1."""
        return sum(self._rates(1.0))

    def _rates(self, escalation: float) -> tuple[float, ...]:
        """Episode rates per day, in the order of _episode_kinds(); each grows with e."""
        mental, children = self._mental_ill_health, bool(self.children)
        return (
            self.profile.incidents_per_day * (0.15 + escalation),
            SUDDEN_SEVERE_PER_DAY,
            0.003 * (1 + 2 * escalation) if mental else 0.0,
            0.0015 * (1 + 3 * escalation) if mental or self._separated_at else 0.0,
            0.002 if self._substance_abuse else 0.0,
            (0.0015 if children else 0.0005) * (1 + 3 * escalation),
            0.002 * (1 + 3 * escalation) if self._probation_until else 0.0,
            0.004 if self._monitored_ban else 0.0,
        )

    def _episode_kinds(self) -> tuple[Callable[[int], None], ...]:
        return (
            self._incident,
            self._sudden_severe,
            self._psychiatric_emergency,
            self._suicide_threat,
            self._substance_treatment,
            self._concern_shared,
            self._supervision_breach,
            self._tamper_alarm,
        )

    def _maybe_episode(self, t: int, ceiling: float, episodes: tuple[Callable[[int], None], ...]) -> bool:
        """Thinning: an episode of each kind happens with probability rate / ceiling."""
        draw = self.rng.random() * ceiling
        for rate, episode in zip(self._rates(self._escalation(t)), episodes, strict=True):
            if draw < rate:
                episode(t)
                return True
            draw -= rate
        return False

    def _first_incident(self, t: int) -> None:
        if self._in_custody or self._custody_for_life:
            return
        # A few subjects first come to notice through healthcare or social services.
        if self.rng.random() < 0.06:
            self._incident(t, reported=False)
            if self.rng.random() < 0.5:
                self._concern_shared(t + int(self.rng.uniform(1, 10) * DAY))
            else:
                self._victim_injury_treated(t + int(self.rng.uniform(0, 2) * DAY), self._partner, strangulation=False)
        else:
            self._incident(t, reported=True)

    def _incident(self, t: int, reported: bool | None = None) -> None:
        rng = self.rng
        victim = self._choose_victim()
        if victim is None:
            return
        e = self._escalation(t)
        kind = self._choose_kind(victim, e, t)
        incident = Incident(t, kind, victim, self._flags(kind, e))
        if kind in ("unlawful_threat", "stalking") and rng.random() < 0.08:
            incident.others = (
                self._people.adult(rng, protected_share=1.0 if victim.person.protected_identity else 0.0),
            )
        severe = self._severe_outcome(t, e, incident)
        if severe is not None:
            incident = Incident(t, severe, victim, self._flags(severe, e))
        self._remember(incident)
        if reported is None:
            chance = INCIDENT_KINDS[incident.kind].reported
            if incident.kind == "breach" and victim.ban_monitored:
                chance = MONITORED_BREACH_REPORTED
            reported = rng.random() < chance
        report_id = self._report_to_police(incident) if reported else None
        if not reported and INCIDENT_KINDS[incident.kind].violent and rng.random() < 0.15:
            self._victim_injury_treated(
                t + int(rng.uniform(0.1, 3) * DAY), victim, strangulation=incident.flags.get("strangulation", False)
            )
        if severe is not None:
            self.outcomes.append(SevereOutcome(self.subject_number, severe, t, report_id))
            if severe == "murder":
                victim.alive = False
                self._custody_for_life = True

    def _sudden_severe(self, t: int) -> None:
        victim = self._choose_victim()
        if victim is None:
            return
        outcome = self._severe_kind()
        incident = Incident(t, outcome, victim, self._flags(outcome, self._escalation(t)))
        self._remember(incident)
        report_id = self._report_to_police(incident) if self.rng.random() < INCIDENT_KINDS[outcome].reported else None
        self.outcomes.append(SevereOutcome(self.subject_number, outcome, t, report_id))
        if outcome == "murder":
            victim.alive = False
            self._custody_for_life = True

    def _choose_victim(self) -> Victim | None:
        """His partner or, as often, a former partner he still pursues."""
        former = [v for v in self._former if v.alive]
        partner = self._partner if self._partner.alive and self._partner not in self._former else None
        if former and (partner is None or self.rng.random() < 0.5):
            return self.rng.choice(former)
        return partner

    def _choose_kind(self, victim: Victim, e: float, t: int) -> str:
        former = victim in self._former
        ban = victim.ban_until > t
        weights = (
            ("dispute", 0.0 if former else 3.0 * (1 - e)),
            ("harassment", 1.0 + (1.0 if former else 0.0)),
            ("criminal_damage", 0.5),
            ("assault", 0.5 if former else 1.5),
            ("unlawful_threat", 0.8 + 1.5 * e),
            ("stalking", (1.5 + 2 * e) if former else 0.05),
            ("gross_violation", 0.3 * e if former else 2.5 * e),
            ("rape", 0.3 * e),
            ("breach", 4.0 if ban else 0.0),
        )
        draw = self.rng.random() * sum(w for _, w in weights)
        for kind, weight in weights:
            if draw < weight:
                return kind
            draw -= weight
        return "harassment"

    def _flags(self, kind: str, e: float) -> dict[str, bool]:
        rng = self.rng
        violent = INCIDENT_KINDS[kind].violent
        escalated = self.trajectory in (Trajectory.ESCALATING, Trajectory.SERIAL)
        return {
            "strangulation": violent and rng.random() < (0.05 + (0.45 if escalated else 0.15) * e),
            "weapon": (violent or kind == "unlawful_threat")
            and rng.random() < (0.05 + 0.2 * e) * (2 if self._firearm_licence else 1),
            "threat_to_kill": rng.random()
            < ((0.2 + 0.6 * e) if kind == "unlawful_threat" else (0.1 * e if violent else 0.0)),
            "child_present": bool(self.children) and kind != "stalking" and rng.random() < 0.35,
            "victim_fear": rng.random() < 0.2 + 0.6 * e,
            "controlling_behaviour": rng.random() < (0.8 if kind == "gross_violation" else 0.1 + 0.6 * e),
            "substance_influence": rng.random() < (0.5 if self._substance_abuse else 0.05),
        }

    def _severe_outcome(self, t: int, e: float, incident: Incident) -> Outcome | None:
        if incident.kind == "dispute":
            return None
        multiplier = 1.0
        if self._strangulation_history or incident.flags["strangulation"]:
            multiplier *= 2.0
        if self._firearm_licence and not self._licence_revoked:
            multiplier *= 2.0
        if self._separated_at and t - self._separated_at < 90 * DAY:
            multiplier *= 1.8
        if self._suicide_threats:
            multiplier *= 1.8
        if self._last_release and t - self._last_release < 30 * DAY:
            multiplier *= 1.5
        if self._substance_abuse:
            multiplier *= 1.3
        if self._mental_ill_health:
            multiplier *= 1.3
        chance = min(SEVERE_CAP, (SEVERE_BASE + SEVERE_GRAVITY * e**3) * multiplier)
        return self._severe_kind() if self.rng.random() < chance else None

    def _severe_kind(self) -> Outcome:
        draw = self.rng.random()
        return next(outcome for outcome, cumulative in _SEVERE_MIX if draw < cumulative)

    def _remember(self, incident: Incident) -> None:
        if incident.flags.get("strangulation"):
            self._strangulation_history = True
        if incident.kind == "breach":
            self._escalation_bumps += 0.04

    def _separate(self, t: int) -> None:
        rng = self.rng
        if not self._partner.alive or self._custody_for_life:
            return
        self._separated_at = t
        self._escalation_bumps += 0.15
        if rng.random() < 0.4:
            imminent = rng.random() < 0.4
            at = self._office_time(t - int(rng.uniform(1, 14) * DAY) if imminent else t + int(rng.uniform(1, 20) * DAY))
            self._emit(
                "social_services.separation_reported",
                at,
                "social_services",
                {"imminent": imminent},
                [self._partner.person.related("victim")],
            )
        self._former.append(self._partner)
        if self.trajectory is Trajectory.SERIAL or rng.random() < 0.1:
            self._schedule(t + int(rng.uniform(30, 100) * DAY), self._new_partner)

    def _new_partner(self, t: int) -> None:
        self._partner = Victim(self._people.adult(self.rng, protected_share=self._protected_share))
        self.victims.append(self._partner)
        if self.trajectory is Trajectory.SERIAL and self.rng.random() < 0.5:
            self._schedule(t + int(self.rng.uniform(60, 150) * DAY), self._separate)
