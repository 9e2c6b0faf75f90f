"""Seeded synthetic agency data: a population of subjects, their victims and children, the
events five agencies record about them over some months, and the severe outcomes that
really happened (ground truth for evaluations). See docs/synthetic-data.md.

The stream is subject by subject: all of one subject's events, ordered by recorded time,
then that subject's outcomes. Memory stays constant however many subjects are asked for,
and the same seed gives the same records byte for byte.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from services.tools.synthetic.identities import IdentityPool, is_fictitious
from services.tools.synthetic.people import People
from services.tools.synthetic.records import SUPPORTED_YEARS, AgencyEvent, Record, SevereOutcome, swedish_midnight
from services.tools.synthetic.story import Story
from services.tools.synthetic.trajectories import TRAJECTORIES, TRAJECTORY_CUM_SHARES, Trajectory
from services.tools.synthetic.units import TOWN_WEIGHTS, TOWNS

__all__ = [
    "AgencyEvent",
    "Record",
    "SevereOutcome",
    "SubjectHistory",
    "Trajectory",
    "add_months",
    "generate",
    "is_fictitious",
    "subject_histories",
]

_TOWN_CUM_WEIGHTS = tuple(sum(TOWN_WEIGHTS[: i + 1]) for i in range(len(TOWN_WEIGHTS)))


@dataclass(frozen=True, slots=True)
class SubjectHistory:
    """One subject's recorded events (by recorded time) and severe outcomes (by time)."""

    index: int
    trajectory: Trajectory
    subject_personal_identity_number: str
    events: tuple[AgencyEvent, ...]
    outcomes: tuple[SevereOutcome, ...]

    @property
    def records(self) -> tuple[Record, ...]:
        return (*self.events, *self.outcomes)


def generate(subjects: int, seed: int, start: dt.date, months: int) -> Iterator[Record]:
    """Every record of `subjects` synthetic subjects over `months` from `start`, streamed."""
    histories = subject_histories(subjects, seed, start, months)
    return itertools.chain.from_iterable(history.records for history in histories)


def subject_histories(subjects: int, seed: int, start: dt.date, months: int) -> Iterator[SubjectHistory]:
    """The same population as generate(), one subject at a time, with his trajectory.

    Raises ValueError at once, not on the first record, for arguments it cannot use.
    """
    if subjects < 0 or months < 1:
        raise ValueError("subjects must be 0 or more and months 1 or more")
    end = add_months(start, months)
    if start.year not in SUPPORTED_YEARS or end.year not in SUPPORTED_YEARS:
        raise ValueError(f"the window must lie within the years {SUPPORTED_YEARS[0]} to {SUPPORTED_YEARS[-1]}")
    return _histories(subjects, seed, start, swedish_midnight(start), swedish_midnight(end))


def _histories(
    subjects: int, seed: int, start: dt.date, window_start: int, window_end: int
) -> Iterator[SubjectHistory]:
    people = _people(seed, start, subjects)
    for index in range(subjects):
        # Each subject has a generator of its own, so its story does not depend on how
        # many random numbers the subjects before it happened to use.
        rng = random.Random(f"riskwatch-synthetic/{seed}/subject/{index}")
        trajectory = rng.choices(TRAJECTORIES, cum_weights=TRAJECTORY_CUM_SHARES)[0]
        town = rng.choices(TOWNS, cum_weights=_TOWN_CUM_WEIGHTS)[0]
        story = Story(
            rng=rng,
            people=people,
            subject_number=people.subject(index),
            trajectory=trajectory,
            town=town,
            window_start=window_start,
            window_end=window_end,
        )
        story.run()
        story.events.sort(key=lambda entry: entry[:3])
        yield SubjectHistory(
            index=index,
            trajectory=trajectory,
            subject_personal_identity_number=story.subject_number,
            events=tuple(event for *_, event in story.events),
            outcomes=tuple(story.outcomes),
        )


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (or earlier), or the month's last day if it is shorter."""
    year, month_index = divmod(day.month - 1 + months, 12)
    year += day.year
    return dt.date(year, month_index + 1, min(day.day, calendar.monthrange(year, month_index + 1)[1]))


def _people(seed: int, start: dt.date, subjects: int) -> People:
    """Identity pools: adults aged 18 to 80 and children under 18 at the start."""
    rng = random.Random(f"riskwatch-synthetic/{seed}/identities")
    adults_from, adults_to = _years_before(start, 80), _years_before(start, 18)
    children_from, children_to = _years_before(start, 18) + dt.timedelta(days=1), start - dt.timedelta(days=30)
    return People(
        subjects=subjects,
        adults=IdentityPool(adults_from, adults_to, coordination=False, rng=rng),
        adult_coordination=IdentityPool(adults_from, adults_to, coordination=True, rng=rng),
        children=IdentityPool(children_from, children_to, coordination=False, rng=rng),
        child_coordination=IdentityPool(children_from, children_to, coordination=True, rng=rng),
    )


def _years_before(day: dt.date, years: int) -> dt.date:
    return add_months(day, -12 * years)
