"""Fictitious Swedish identity numbers for synthetic people.

Skatteverket's published test numbers are a fixed list of some twenty thousand numbers,
too few to give every synthetic person a number of their own. Every number made here
has birth number 000 instead: Skatteverket assigns birth numbers 001 to 999 only, so a
number ending in 000C belongs to nobody, yet it passes the Luhn and date checks like a
real one. See docs/synthetic-data.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random

from schemas.identity import COORDINATION_DAY_OFFSET, IdentityNumberError, luhn_check_digit, parse_identity_number

FICTITIOUS_BIRTH_NUMBER = "000"

_log = logging.getLogger(__name__)


def fictitious_number(born: dt.date, *, coordination: bool) -> str:
    """The number YYYYMMDD-000C (day plus 60 for a coordination number)."""
    day = born.day + (COORDINATION_DAY_OFFSET if coordination else 0)
    ten_digits = f"{born.year % 100:02d}{born.month:02d}{day:02d}{FICTITIOUS_BIRTH_NUMBER}"
    return f"{born.year:04d}{born.month:02d}{day:02d}-{FICTITIOUS_BIRTH_NUMBER}{luhn_check_digit(ten_digits)}"


def is_fictitious(number: str, *, today: dt.date) -> bool:
    """True when the number is valid and in the series no real person can hold."""
    try:
        identity = parse_identity_number(number, today=today)
    except IdentityNumberError:
        return False
    return identity.canonical[8:11] == FICTITIOUS_BIRTH_NUMBER


class IdentityPool:
    """One fictitious number per birth date in [earliest, latest], in a seeded order.

    `number(slot)` is an affine permutation of the days, so callers need only count the
    slots they have used, and a million draws take no memory. A pool holds `size`
    distinct numbers; slot `size` gives the same number as slot 0.
    """

    def __init__(self, earliest: dt.date, latest: dt.date, *, coordination: bool, rng: random.Random) -> None:
        self._earliest = earliest
        self._coordination = coordination
        self.size = (latest - earliest).days + 1
        self._stride = _coprime_stride(self.size, rng)
        self._offset = rng.randrange(self.size)

    def number(self, slot: int) -> str:
        day_index = (self._stride * slot + self._offset) % self.size
        return fictitious_number(self._earliest + dt.timedelta(days=day_index), coordination=self._coordination)


class PoolCounter:
    """Draws a pool's slots from `first` on, wrapping within [first, size) once they run out."""

    def __init__(self, name: str, pool: IdentityPool, first: int = 0) -> None:
        self._name = name
        self._pool = pool
        self._first = first if first < pool.size else 0
        self._drawn = 0

    def draw(self) -> str:
        span = self._pool.size - self._first
        if self._drawn == span:
            _log.warning("synthetic %s: all %d fictitious numbers used, numbers now repeat", self._name, span)
        slot = self._first + self._drawn % span
        self._drawn += 1
        return self._pool.number(slot)


def _coprime_stride(size: int, rng: random.Random) -> int:
    if size == 1:
        return 1
    stride = rng.randrange(1, size)
    while math.gcd(stride, size) != 1:
        stride = stride % (size - 1) + 1
    return stride
