"""Social services and healthcare: what they pass to the police under OSL 10 kap. 18 c §."""

from __future__ import annotations

from services.tools.synthetic.people import Victim
from services.tools.synthetic.records import Payload
from services.tools.synthetic.subject import DAY, HOUR, SubjectState

_CONCERNS = (
    "Oro för våld i nära relation",
    "Barn har bevittnat våld i hemmet",
    "Partnern uppger rädsla för mannen",
    "Kontrollerande beteende mot partnern",
    "Hot mot partnern efter separation",
)


class CareAndSocialServices(SubjectState):
    """Episodes in care and social services that are passed on to the police."""

    def _concern_shared(self, t: int) -> None:
        rng = self.rng
        victim = self._partner if self._partner.alive else None
        if victim is None:
            return
        e = self._escalation(t)
        payload: Payload = {
            "concern": rng.choice(_CONCERNS),
            "victim_fear": rng.random() < 0.3 + 0.5 * e,
            "controlling_behaviour": rng.random() < 0.2 + 0.5 * e,
            "threat_to_children": bool(self.children) and rng.random() < 0.3 * e,
            "substance_abuse": self._substance_abuse and rng.random() < 0.6,
        }
        related = [victim.person.related("victim")] + [child.related("child") for child in self.children]
        at = self._office_time(t)
        self._emit("social_services.concern_shared", at, "social_services", payload, related)
        if rng.random() < 0.45:
            assessed = self._office_time(at + int(rng.uniform(3, 21) * DAY))
            self._schedule(assessed, lambda when: self._social_risk_assessment(when, victim))

    def _social_risk_assessment(self, t: int, victim: Victim) -> None:
        rng = self.rng
        perceived = self._escalation(t) + rng.gauss(0, 0.2)
        level = "high" if perceived > 0.6 else "moderate" if perceived > 0.3 else "low"
        instrument = "FREDA" if rng.random() < 0.7 else "PATRIARK"
        self._emit(
            "social_services.risk_assessment",
            t,
            "social_services",
            {"instrument": instrument, "level": level},
            [victim.person.related("victim")],
        )

    def _psychiatric_emergency(self, t: int) -> None:
        rng = self.rng
        unit = self.town.psychiatry
        self._emit("healthcare.psychiatric_emergency", t, "healthcare", {}, [], unit=unit)
        e = self._escalation(t)
        if rng.random() < 0.25 * (1 + e):
            threat_to_kill = rng.random() < 0.3 + 0.5 * e
            threat_to_children = bool(self.children) and rng.random() < 0.3
            related: list[str] = []
            if threat_to_kill and self._partner.alive:
                related.append(self._partner.person.related("victim"))
            if threat_to_children:
                related += [child.related("child") for child in self.children]
            payload: Payload = {"threat_to_kill": threat_to_kill, "threat_to_children": threat_to_children}
            self._emit(
                "healthcare.threats_expressed_in_care",
                t + int(rng.uniform(0.5, 3) * HOUR),
                "healthcare",
                payload,
                related,
                unit=unit,
            )

    def _suicide_threat(self, t: int) -> None:
        self._suicide_threats = True
        attempt = self.rng.random() < 0.2
        unit = self.town.emergency_care if attempt else self.town.psychiatry
        self._emit("healthcare.suicide_threat", t, "healthcare", {"attempt": attempt}, [], unit=unit)

    def _substance_treatment(self, t: int) -> None:
        self._emit(
            "healthcare.substance_abuse_treatment",
            self._office_time(t),
            "healthcare",
            {},
            [],
            unit=self.town.addiction_care,
        )

    def _victim_injury_treated(self, t: int, victim: Victim, *, strangulation: bool) -> None:
        if not victim.alive or t >= self.window_end:
            return
        payload: Payload = {"consistent_with_strangulation": strangulation}
        self._emit(
            "healthcare.victim_injury_treated",
            t,
            "healthcare",
            payload,
            [victim.person.related("victim")],
            unit=self.town.emergency_care,
        )
