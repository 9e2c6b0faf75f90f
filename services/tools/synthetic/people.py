"""The people around a subject: victims, children and others, with fictitious identity numbers."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from services.tools.synthetic.identities import IdentityPool, PoolCounter
from services.tools.synthetic.records import JsonObject, encode

_log = logging.getLogger(__name__)


class Person:
    """A victim, child or other related person: an identity number and whether it is protected.

    The number is drawn when she first appears in an event, so that pool numbers are not
    spent on children and others no agency ever names.
    """

    __slots__ = ("_encoded", "_kind", "_number", "_numbers", "protected_identity")

    def __init__(self, kind: str, numbers: PoolCounter, protected_identity: bool) -> None:
        self._kind = kind  # personal_identity_number or coordination_number
        self._numbers = numbers
        self._number: str | None = None
        self.protected_identity = protected_identity
        self._encoded: dict[str, str] = {}

    def related(self, role: str) -> str:
        """Her entry in related_persons, as JSON; encoded once per role, as she recurs in many events."""
        encoded = self._encoded.get(role)
        if encoded is None:
            if self._number is None:
                self._number = self._numbers.draw()
            entry: JsonObject = {"role": role, self._kind: self._number, "protected_identity": self.protected_identity}
            encoded = self._encoded[role] = encode(entry)
        return encoded


@dataclass(slots=True)
class Victim:
    """A partner or former partner he harms, and the contact ban protecting her, if any."""

    person: Person
    alive: bool = True
    ban_until: int = 0  # end of the contact ban protecting her, 0 if none
    ban_monitored: bool = False
    ban_ended_early: bool = False


class People:
    """Fictitious identity numbers for everyone in the population.

    Subjects own the first `subjects` slots of the adult personal-number pool, so no two
    subjects share a number while the pool lasts (its size is the number of birth dates
    in the adult age range); victims and other adults take the slots after them.
    """

    def __init__(
        self,
        *,
        subjects: int,
        adults: IdentityPool,
        adult_coordination: IdentityPool,
        children: IdentityPool,
        child_coordination: IdentityPool,
    ) -> None:
        self._adults = adults
        self._other_adults = PoolCounter("adult personal identity numbers", adults, first=subjects)
        self._adult_coordination = PoolCounter("adult coordination numbers", adult_coordination)
        self._children = PoolCounter("children's personal identity numbers", children)
        self._child_coordination = PoolCounter("children's coordination numbers", child_coordination)

    def subject(self, index: int) -> str:
        if index == self._adults.size:
            _log.warning("synthetic subjects: all %d fictitious numbers used, subjects now share numbers", index)
        return self._adults.number(index)

    def adult(self, rng: random.Random, *, protected_share: float) -> Person:
        protected = rng.random() < protected_share
        if rng.random() < 0.07:
            return Person("coordination_number", self._adult_coordination, protected)
        return Person("personal_identity_number", self._other_adults, protected)

    def child(self, rng: random.Random, *, protected: bool) -> Person:
        if rng.random() < 0.04:
            return Person("coordination_number", self._child_coordination, protected)
        return Person("personal_identity_number", self._children, protected)
