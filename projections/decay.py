"""Recency decay in exact arithmetic, so a running sum equals a sum made from scratch, bit for bit.

decay(at, t) = 0.5 ^ ((at - t) / half_life). It is split at whole half-lives: an event at t
weighs w(t) x 2^e(t) against a fixed origin, with e(t) = t // half_life and w(t) = 2^(fraction)
in [1, 2]. Every such weight, and every gravity, is a float: an exact binary fraction, held here
as an integer over a fixed power of two. Sums of those integers are exact, so they are the same
whatever the order of the events and however the sum was made (from scratch, or kept per event
and differenced between two points of a prefix sum). A sum is turned into a float once, correctly
rounded, at the time it is read.
"""

from __future__ import annotations

import math
from typing import NamedTuple

GRAVITY_BITS = 80  # a gravity is held as an integer over 2^80
WEIGHT_BITS = 53  # w(t) in [1, 2] as an integer over 2^53
ORIGIN_MS = -(2**42)  # before any event time (about 1830): exponents counted from here are never negative


class Stamp(NamedTuple):
    """An event time split at whole half-lives: 2^((t - origin) / half_life) = w x 2^e."""

    w: float
    e: int

    @property
    def exact(self) -> int:
        """w x 2^e as an integer over 2^WEIGHT_BITS (what exact_fraction(w, WEIGHT_BITS) << e gives:
        w in [1, 2] has no binary digit below 2^-52, so w x 2^53 is a whole float, exactly)."""
        return int(self.w * _WEIGHT_SCALE) << self.e


def stamp(t: int, half_life_ms: int) -> Stamp:
    e, rest = divmod(t - ORIGIN_MS, half_life_ms)
    return Stamp(2.0 ** (rest / half_life_ms), e)


def exact_fraction(value: float, bits: int) -> int:
    """`value` x 2^bits, exactly; refused if `value` has more binary digits than that keeps."""
    numerator, denominator = value.as_integer_ratio()
    shift = bits - (denominator.bit_length() - 1)
    if shift < 0:
        raise ValueError(f"gravity: {value!r} has more binary digits than exact sums keep")
    return numerator << shift


def exact_gravity(gravity: float) -> int:
    exact = _EXACT_GRAVITY.get(gravity)
    if exact is None:
        exact = exact_fraction(gravity, GRAVITY_BITS)
        if len(_EXACT_GRAVITY) < _EXACT_GRAVITIES_KEPT:
            _EXACT_GRAVITY[gravity] = exact
    return exact


_WEIGHT_SCALE = float(1 << WEIGHT_BITS)
# A policy has a few distinct gravities, and every assessment converts each of its events' again.
_EXACT_GRAVITY: dict[float, int] = {}
_EXACT_GRAVITIES_KEPT = 1024


def gravity_value(total: int) -> float:
    """A sum of exact gravities as a float."""
    return total / (1 << GRAVITY_BITS)


def decayed_value(total: int, at: Stamp) -> float:
    """A sum of exact gravity x weight terms (over 2^(GRAVITY_BITS + WEIGHT_BITS)) decayed to `at`."""
    return total / (1 << (GRAVITY_BITS + WEIGHT_BITS + at.e)) / at.w


def decay(event: Stamp, at: Stamp) -> float:
    """One event's decay at `at` (for ranking and the explanation; sums use the exact terms)."""
    return math.ldexp(event.w, event.e - at.e) / at.w
