"""Scheduler ticks as the logs hold them: the scheduler no longer writes them, but a log written
before may, and every stage must read past them (projections.events.TICKS)."""

from __future__ import annotations

import uuid

from projections.events import RISKWATCH_AGENCY, RISKWATCH_NAMESPACE, RiskEvent


def stored_tick(source_type: str, subject: str, at: int, *, region: str = "syd") -> RiskEvent:
    """A riskwatch.review_due or riskwatch.reassessment tick, with the derived id it was written with."""
    name = source_type.removeprefix("riskwatch.")
    return RiskEvent(
        event_id=str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{subject}|{name}|{at}")), subject=subject,
        source_type=source_type, event_time=at, recorded_time=at, agency=RISKWATCH_AGENCY, region=region,
        unit="Riskwatch", offence=None, markers=frozenset(), victims=(), attributes={},
    )
