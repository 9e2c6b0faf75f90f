"""Records of the risk batch and small conversions, kept here for the modules that import them from here.

The records and the ports are in projections/ports.py; the PostgreSQL store is in
services/adapters/postgres (risk.py, and store.py for the gateway's `Store`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from projections.alerts import StoredAlert
from projections.ports import ArchivedEvent, BatchEffects, HistoryRow, OutboxMessage, ProjectionRow

__all__ = ["ArchivedEvent", "BatchEffects", "HistoryRow", "OutboxMessage", "ProjectionRow", "StoredAlert",
           "ms_to_datetime", "stored_json"]


def ms_to_datetime(epoch_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)


def stored_json(value: Any) -> str:
    # arrays of jsonb go over the wire as text and are cast in SQL
    return json.dumps(value, separators=(",", ":"))
