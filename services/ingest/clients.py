"""Agency clients: the systems that submit events, each bound to one agency and its units.

Below the API so that the gateway and the bulk tools know who submits without the web layer.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

from schemas.errors import FieldError
from schemas.rules import shown

CLIENT_TOKEN_PREFIX = "rwc_"
LOCAL_OPERATOR = "local-operator"


@dataclass(frozen=True, slots=True)
class AgencyClient:
    """An agency system allowed to submit its agency's event types for its units.

    `agency` None is the local operator: someone at the machine of an embedded stack, who may
    submit anything and is recorded under their login name.
    """

    name: str
    agency: str | None
    units: frozenset[str]

    def refusal(self, event_type: str, unit: str) -> FieldError | None:
        """Why this client may not submit this event, or None when it may."""
        if self.agency is None:
            return None
        if event_type.split(".", 1)[0] != self.agency:
            return FieldError("event_type", f"{event_type} is not a {self.agency} event; client {self.name} "
                                            f"submits for {self.agency} only")
        if unit not in self.units:
            return FieldError("unit", f"{shown(unit)} is not one of the units of client {self.name}")
        return None


def local_operator() -> AgencyClient:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (e.g. a container's uid)
        user = f"uid-{os.getuid()}"
    return AgencyClient(f"{LOCAL_OPERATOR}:{user}", None, frozenset())
