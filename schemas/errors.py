"""Errors for events that break the contract, each naming the field and the reason.

Messages are written for the person who sent the event. They never repeat an identity
number: they say which field is wrong, not what was in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# One normaliser finds identity numbers for error texts and dead-letter bytes alike.
from schemas.text import printable, withhold_identity_numbers, withhold_identity_numbers_in_bytes

__all__ = [
    "ContractError",
    "EventValidationError",
    "FieldError",
    "withhold_identity_numbers",
    "withhold_identity_numbers_in_bytes",
]


class ContractError(ValueError):
    """An event or message does not keep the Riskwatch event contract."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotSingleObjectError(ContractError):
    """The bytes do not start with the Avro single-object marker C3 01."""


class UnknownSchemaError(ContractError):
    """The schema fingerprint in the header is not one of ours."""


class CorruptEventError(ContractError):
    """The Avro body is truncated, has trailing bytes, or does not decode."""


class UnencodableEventError(ContractError):
    """A record handed to the encoder does not fit its schema."""


class UnknownEventTypeError(ContractError):
    """The event type is not in the catalogue."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an event was refused; `field` is a dotted path such as payload.valid_to."""

    field: str
    reason: str

    def __post_init__(self) -> None:
        # A field path may quote an unknown key the sender wrote: it must stay safe to answer and to log.
        object.__setattr__(self, "field", printable(self.field, limit=80))
        object.__setattr__(self, "reason", printable(self.reason, limit=400))

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class EventValidationError(ContractError):
    """An event broke one or more rules; `errors` lists every one found."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        if not self.errors:
            raise ValueError("an EventValidationError needs at least one FieldError")
        first = self.errors[0]
        super().__init__(first.field, first.reason)
        # The message lists every error, not just the first.
        self.args = ("; ".join(str(error) for error in self.errors),)

    def __str__(self) -> str:
        return str(self.args[0])
