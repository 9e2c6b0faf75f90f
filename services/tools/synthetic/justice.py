"""Police and prosecution: what happens once an incident is reported.

Call-out, crime report, weapons-register check, risk assessment, arrest, detention and
judgment, contact bans and their breaches and alarms.
"""

from __future__ import annotations

import math

from services.tools.synthetic.incidents import INCIDENT_KINDS
from services.tools.synthetic.people import Victim
from services.tools.synthetic.prison_probation import PrisonAndProbation
from services.tools.synthetic.records import Payload, swedish_date, swedish_midnight
from services.tools.synthetic.subject import DAY, HOUR, MINUTE, YEAR, Incident

_REPORT_FLAGS = (
    "strangulation",
    "weapon",
    "threat_to_kill",
    "child_present",
    "victim_fear",
    "controlling_behaviour",
    "substance_influence",
)


class PoliceAndProsecution(PrisonAndProbation):
    """Police and prosecution reactions; prison and probation follow from their decisions."""

    def _report_to_police(self, incident: Incident) -> str | None:
        rng, t, kind, flags = self.rng, incident.time, incident.kind, incident.flags
        victim = incident.victim
        related = [victim.person.related("victim")]
        if flags["child_present"]:
            related += [child.related("child") for child in self.children]
        related += [other.related("other") for other in incident.others]
        if kind == "breach" and victim.ban_monitored:
            self._emit(
                "police.em_alarm",
                t,
                "police",
                {"alarm": "zone_breach"},
                [victim.person.related("victim")],
                delay=2 * MINUTE,
            )
        if rng.random() < INCIDENT_KINDS[kind].at_home:
            callout_time = t + int(rng.uniform(5, 40) * MINUTE)
            injuries = INCIDENT_KINDS[kind].violent and rng.random() < 0.6
            payload: Payload = {"injuries": injuries, "child_present": flags["child_present"]}
            self._emit(
                "police.domestic_callout",
                callout_time,
                "police",
                payload,
                related,
                delay=int(rng.uniform(0.3, 6) * HOUR),
            )
        offence = INCIDENT_KINDS[kind].offence
        if offence is None:
            return None
        report: Payload = {"offence": offence, "offence_code": ""}
        report.update({name: flags[name] for name in _REPORT_FLAGS})
        report_id = self._emit("police.crime_report", t, "police", report, related)
        if self._firearm_licence and not self._licence_known:
            # Police look the suspect up in the weapons register when they take the report.
            self._licence_known = True
            self._emit(
                "police.weapons_licence_held",
                t + int(rng.uniform(2, 48) * HOUR),
                "police",
                {"weapon_kind": "firearm"},
                [],
            )
        if kind == "breach":
            self._emit(
                "prosecution.contact_ban_breach_reported",
                self._office_time(t + int(rng.uniform(1, 10) * DAY)),
                "prosecution",
                {"electronic_monitoring": victim.ban_monitored},
                [victim.person.related("victim")],
            )
        assessable = INCIDENT_KINDS[kind].violent or kind in ("unlawful_threat", "stalking", "breach")
        if assessable and rng.random() < 0.3 + 0.4 * self._escalation(t):
            self._schedule(
                self._office_time(t + int(rng.uniform(1, 10) * DAY)), lambda at: self._risk_assessment(at, victim)
            )
        if rng.random() < INCIDENT_KINDS[kind].arrested:
            arrest_time = t + int(rng.uniform(10 * MINUTE, 6 * HOUR))
            self._emit(
                "police.arrest",
                arrest_time,
                "police",
                {"offence": offence, "suspected_offence_code": ""},
                [victim.person.related("victim")],
            )
            if rng.random() < INCIDENT_KINDS[kind].detained:
                self._detain(arrest_time, kind, victim)
            elif rng.random() < 0.5:
                self._schedule(
                    self._office_time(t + int(rng.uniform(14, 60) * DAY)), lambda at: self._charge(at, offence, victim)
                )
        elif rng.random() < 0.2:
            self._schedule(
                self._office_time(t + int(rng.uniform(14, 90) * DAY)), lambda at: self._charge(at, offence, victim)
            )
        if kind not in ("breach", "murder", "criminal_damage") and victim.alive and victim.ban_until <= t:
            self._consider_contact_ban(t, victim)
        return report_id

    def _risk_assessment(self, t: int, victim: Victim) -> None:
        rng = self.rng
        perceived = self._escalation(t) + rng.gauss(0, 0.15) + (0.15 if self._strangulation_history else 0.0)
        level = "high" if perceived > 0.65 else "moderate" if perceived > 0.35 else "low"
        instrument = rng.choices(("SARA_SV", "B_SAFER", "PATRIARK"), cum_weights=(0.6, 0.85, 1.0))[0]
        self._emit(
            "police.risk_assessment",
            t,
            "police",
            {"instrument": instrument, "level": level},
            [victim.person.related("victim")],
        )
        if level == "high" and self._licence_known and not self._licence_revoked and rng.random() < 0.8:
            self._revoke_licence(t + int(rng.uniform(1, 14) * DAY), "high risk assessment")

    def _revoke_licence(self, t: int, reason: str) -> None:
        if self._licence_revoked:
            return
        self._licence_revoked = True
        self._emit("police.weapons_licence_revoked", self._office_time(t), "police", {"reason": reason}, [])

    def _charge(self, t: int, offence: str, victim: Victim) -> None:
        self._emit(
            "prosecution.charge_filed", t, "prosecution", {"offence": offence}, [victim.person.related("victim")]
        )

    def _detain(self, arrested_at: int, kind: str, victim: Victim) -> None:
        rng = self.rng
        offence = str(INCIDENT_KINDS[kind].offence)
        decided = arrested_at + int(rng.uniform(1, 4) * DAY)
        self._in_custody = True
        self._emit(
            "prosecution.detention_decided",
            decided,
            "prosecution",
            {"offence": offence},
            [victim.person.related("victim")],
        )
        self._emit(
            "prison_probation.custody_started",
            decided + int(rng.uniform(1, 6) * HOUR),
            "prison_probation",
            {"facility": self.town.remand_prison},
            [],
            unit=self.town.remand_prison_unit,
        )
        self._schedule(
            self._office_time(decided + int(rng.uniform(5, 14) * DAY)), lambda at: self._charge(at, offence, victim)
        )
        self._schedule(
            self._office_time(decided + int(rng.uniform(21, 70) * DAY)), lambda at: self._judgment(at, kind, decided)
        )

    def _judgment(self, t: int, kind: str, custody_since: int) -> None:
        rng = self.rng
        if kind in ("attempted_murder", "murder"):
            self._custody_for_life = True
            transfer = self._office_time(t + int(rng.uniform(20, 60) * DAY))
            self._schedule(transfer, lambda at: self._transfer_to_prison(at, release=None))
            return
        if rng.random() < INCIDENT_KINDS[kind].imprisoned:
            low, high = INCIDENT_KINDS[kind].sentence_months
            sentence = int(rng.uniform(low, high) * 30 * DAY)
            release = custody_since + max(14 * DAY, sentence * 2 // 3)
            transfer = self._office_time(t + int(rng.uniform(10, 40) * DAY))
            if release <= transfer:
                self._schedule(t, lambda at: self._release_from_remand(at, "sentence served in remand"))
            else:
                self._schedule(transfer, lambda at: self._transfer_to_prison(at, release=release))
        else:
            self._release_from_remand(t, "judgment without prison sentence")
            self._schedule(
                self._office_time(t + int(rng.uniform(3, 14) * DAY)), lambda at: self._start_probation(at, 3 * YEAR)
            )

    def _release_from_remand(self, t: int, reason: str) -> None:
        self._in_custody = False
        self._last_release = t
        self._emit("prosecution.detention_lifted", t, "prosecution", {"reason": reason}, [])

    def _consider_contact_ban(self, t: int, victim: Victim) -> None:
        rng = self.rng
        if rng.random() >= 0.25 + 0.5 * self._escalation(t) or rng.random() >= 0.31:
            return
        decided = self._office_time(t + int(rng.lognormvariate(math.log(7), 0.5) * DAY))
        self._schedule(decided, lambda at: self._issue_contact_ban(at, victim))

    def _issue_contact_ban(self, t: int, victim: Victim) -> None:
        rng = self.rng
        if not victim.alive or victim.ban_until > t:
            return
        cohabiting = victim is self._partner and not self._separated_at
        ban_type = rng.choices(
            ("ordinary", "home", "extended", "particularly_extended"),
            cum_weights=(0.72, 0.82 if cohabiting else 0.72, 0.94, 1.0),
        )[0]
        monitored = ban_type == "particularly_extended" or (ban_type == "extended" and rng.random() < 0.4)
        valid_from = swedish_date(t)
        days = rng.randint(30, 60) if ban_type == "home" else rng.randint(180, 365)
        valid_to = swedish_date(t + days * DAY)
        victim.ban_until = swedish_midnight(valid_to) + DAY
        victim.ban_monitored = monitored
        victim.ban_ended_early = False
        self._monitored_ban = self._monitored_ban or monitored
        payload: Payload = {
            "ban_type": ban_type,
            "electronic_monitoring": monitored,
            "valid_from": valid_from.isoformat(),
            "valid_to": valid_to.isoformat(),
        }
        self._emit("prosecution.contact_ban_issued", t, "prosecution", payload, [victim.person.related("victim")])
        if self._licence_known and rng.random() < 0.8:
            self._revoke_licence(t + int(rng.uniform(1, 14) * DAY), "contact ban issued")
        if rng.random() < 0.08:
            lifted = self._office_time(t + int(rng.uniform(14, days - 1) * DAY))
            self._schedule(lifted, lambda at: self._end_contact_ban(at, victim, "lifted on review"))
        else:
            self._schedule(victim.ban_until, lambda at: self._end_contact_ban(at, victim, "expired"))

    def _end_contact_ban(self, t: int, victim: Victim, reason: str) -> None:
        if victim.ban_ended_early or victim.ban_until == 0:
            return
        victim.ban_ended_early = reason != "expired"
        victim.ban_until = min(victim.ban_until, t)
        self._monitored_ban = any(v.ban_monitored and v.ban_until > t for v in self.victims)
        self._emit(
            "prosecution.contact_ban_ended", t, "prosecution", {"reason": reason}, [victim.person.related("victim")]
        )

    def _tamper_alarm(self, t: int) -> None:
        monitored = [v for v in self.victims if v.ban_monitored and v.ban_until > t and v.alive]
        if monitored:
            related = [monitored[0].person.related("victim")]
            self._emit("police.em_alarm", t, "police", {"alarm": "tamper"}, related, delay=2 * MINUTE)
