"""The contract of projections.ports.Reviews: the scheduler opens one review item per subject that is due."""

from __future__ import annotations

import datetime as dt

from projections.policy import default_policy
from projections.ports import BatchEffects
from tests.support.contracts import StoragePorts
from tests.support.contracts.risk import DAY, T0, TOPIC, new_id, new_subject, state_row


async def projected(port: StoragePorts, rows: list[tuple[str, str, int | None]]) -> None:
    """(subject, level, next review at) as state rows, one committed batch."""
    async with port.risk.batch(new_id(), {(TOPIC, 0): [0]}) as unit:
        await unit.commit(BatchEffects(
            projections=[state_row(subject, [], level=level, next_review_at=due) for subject, level, due in rows],
            offsets={(TOPIC, 0): 0}))


class ReviewsContract:
    async def test_one_item_per_subject_due_at_a_reviewed_level_however_often_asked(self, port: StoragePorts) -> None:
        due, later, low, unscheduled = new_subject(), new_subject(), new_subject(), new_subject()
        await projected(port, [(due, "high", T0 + DAY), (later, "extreme", T0 + 30 * DAY),
                               (low, "moderate", T0 + DAY), (unscheduled, "high", None)])
        now = dt.datetime.fromtimestamp((T0 + 10 * DAY) / 1000, tz=dt.UTC)
        policy = default_policy()
        assert await port.reviews.open_due(policy, now) == 1
        assert await port.reviews.open_due(policy, now) == 0, "an open item is not opened again"
        assert await port.reviews.open_due(policy, now + dt.timedelta(days=30)) == 1, "the later one, once due"

    async def test_nothing_projected_nothing_due(self, port: StoragePorts) -> None:
        now = dt.datetime.fromtimestamp(T0 / 1000, tz=dt.UTC)
        assert await port.reviews.open_due(default_policy(), now) == 0
