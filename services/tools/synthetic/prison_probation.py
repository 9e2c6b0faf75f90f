"""Kriminalvården's side of a subject's story: prison, release, furlough, probation, programmes."""

from __future__ import annotations

from services.tools.synthetic.records import Payload, swedish_date, swedish_midnight
from services.tools.synthetic.subject import DAY, HOUR, YEAR, SubjectState
from services.tools.synthetic.trajectories import Trajectory
from services.tools.synthetic.units import PRISONS, PROGRAMMES, Prison


class PrisonAndProbation(SubjectState):
    """Custody, release and supervision, and the events Kriminalvården records about them."""

    def _transfer_to_prison(self, t: int, release: int | None) -> None:
        rng = self.rng
        same_region = [p for p in PRISONS if p.region == self.town.region]
        prison = rng.choice(same_region) if same_region and rng.random() < 0.6 else rng.choice(PRISONS)
        self._in_custody = True
        self._emit(
            "prison_probation.custody_started", t, "prison_probation", {"facility": prison.name}, [], prison=prison
        )
        if release is not None:
            self._plan_release(t, release, prison)

    def _plan_release(self, decided_from: int, release: int, prison: Prison) -> None:
        rng = self.rng
        release = self._office_time(release)
        kind = "conditional" if rng.random() < 0.85 else "end_of_sentence"
        scheduled_at = self._office_time(decided_from + int(rng.uniform(3, 20) * DAY))
        if scheduled_at < release:
            payload: Payload = {"release_date": swedish_date(release).isoformat(), "release_kind": kind}
            self._emit(
                "prison_probation.release_scheduled", scheduled_at, "prison_probation", payload, [], prison=prison
            )
        if release - decided_from > 75 * DAY and rng.random() < 0.7:
            granted = self._office_time(decided_from + int(rng.uniform(30, (release - decided_from) / DAY - 30) * DAY))
            self._schedule(granted, lambda at: self._grant_furlough(at, release, prison))
        self._schedule(release, lambda at: self._release(at, kind, prison))

    def _grant_furlough(self, t: int, release: int, prison: Prison) -> None:
        rng = self.rng
        leave_day = swedish_date(t + int(rng.uniform(7, 21) * DAY))
        leave = swedish_midnight(leave_day) + 9 * HOUR
        back = leave + int(rng.choice((1, 2, 3))) * DAY
        if back >= release:
            return
        payload: Payload = {"start_date": leave_day.isoformat(), "end_date": swedish_date(back).isoformat()}
        self._emit("prison_probation.furlough_granted", t, "prison_probation", payload, [], prison=prison)
        self._schedule(leave, lambda at: self._start_furlough(at, back, prison))

    def _start_furlough(self, t: int, back: int, prison: Prison) -> None:
        if self._custody_for_life:
            return
        self._in_custody = False
        self._last_release = t
        self._emit(
            "prison_probation.furlough_started",
            t,
            "prison_probation",
            {"expected_return_date": swedish_date(back).isoformat()},
            [],
            prison=prison,
        )
        late = self.rng.random() < (0.2 if self.trajectory is Trajectory.ESCALATING else 0.07)
        returned = back + int(self.rng.uniform(2, 30) * HOUR) if late else back + int(self.rng.uniform(-3, 0) * HOUR)
        self._schedule(returned, lambda at: self._end_furlough(at, on_time=not late, prison=prison))

    def _end_furlough(self, t: int, *, on_time: bool, prison: Prison) -> None:
        if self._custody_for_life:
            return
        self._in_custody = True
        self._emit(
            "prison_probation.furlough_ended", t, "prison_probation", {"returned_on_time": on_time}, [], prison=prison
        )

    def _release(self, t: int, kind: str, prison: Prison) -> None:
        if self._custody_for_life:
            return
        self._in_custody = False
        self._last_release = t
        self._emit("prison_probation.released", t, "prison_probation", {"release_kind": kind}, [], prison=prison)
        if kind == "conditional":
            self._schedule(
                self._office_time(t + int(self.rng.uniform(1, 7) * DAY)), lambda at: self._start_probation(at, YEAR)
            )

    def _start_in_prison(self) -> None:
        rng = self.rng
        prison = rng.choice(PRISONS)
        self._in_custody = True
        window = self.window_end - self.window_start
        release = self.window_start + int(rng.uniform(20 * DAY, window + 60 * DAY))
        self._plan_release(self.window_start, release, prison)

    def _start_on_probation(self) -> None:
        rng = self.rng
        self._probation_until = self.window_start + int(rng.uniform(60, 600) * DAY)
        self._schedule(swedish_midnight(swedish_date(self._probation_until)), self._end_probation)
        if rng.random() < 0.5:
            self._schedule(self._office_time(self.window_start + int(rng.uniform(1, 30) * DAY)), self._enrol_programme)

    def _start_probation(self, t: int, length: int) -> None:
        if self._custody_for_life or self._in_custody:
            return
        self._probation_until = t + length
        end_date = swedish_date(self._probation_until)
        self._emit("prison_probation.probation_started", t, "prison_probation", {"end_date": end_date.isoformat()}, [])
        self._schedule(swedish_midnight(end_date), self._end_probation)
        if self.rng.random() < 0.7:
            self._schedule(self._office_time(t + int(self.rng.uniform(14, 45) * DAY)), self._enrol_programme)

    def _end_probation(self, t: int) -> None:
        if not self._probation_until or self._probation_until > t + DAY:
            return
        self._probation_until = 0
        self._emit("prison_probation.probation_ended", t, "prison_probation", {}, [])

    def _enrol_programme(self, t: int) -> None:
        if not self._probation_until or self._in_custody or self._custody_for_life:
            return
        rng = self.rng
        programme = rng.choice(PROGRAMMES)
        self._emit("prison_probation.programme_enrolled", t, "prison_probation", {"programme": programme}, [])
        if rng.random() < 0.75 - 0.5 * self._escalation(t):
            self._schedule(
                self._office_time(t + int(rng.uniform(90, 180) * DAY)),
                lambda at: self._programme_event(at, "completed", programme),
            )
        else:
            self._schedule(
                self._office_time(t + int(rng.uniform(20, 120) * DAY)),
                lambda at: self._programme_event(at, "dropped", programme),
            )

    def _programme_event(self, t: int, what: str, programme: str) -> None:
        if self._probation_until and not self._custody_for_life:
            self._emit(f"prison_probation.programme_{what}", t, "prison_probation", {"programme": programme}, [])

    def _supervision_breach(self, t: int) -> None:
        description = self.rng.choice(
            ("missed supervision meeting", "positive drug test", "contact with the protected person")
        )
        self._emit(
            "prison_probation.supervision_breach",
            self._office_time(t),
            "prison_probation",
            {"description": description},
            [],
        )
