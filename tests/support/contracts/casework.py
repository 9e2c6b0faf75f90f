"""The contract of projections.ports.Reviews: the scheduler opens one review item per subject that is due."""

from __future__ import annotations

import datetime as dt

from projections.policy import default_policy
from projections.ports import BatchEffects
from tests.support.contracts import StoragePorts
from tests.support.contracts.risk import DAY, T0, TOPIC, alert, new_id, new_subject, state_row


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


class CasesContract:
    """Paged alerts, newly stored, open or update their subject's one open case in the batch's unit."""

    async def test_paged_alerts_open_one_case_per_subject_and_history_opens_none(self, port: StoragePorts) -> None:
        subject, quiet = new_subject(), new_subject()
        first, second = alert(subject, new_id(), priority=2), alert(subject, new_id(), priority=1)
        history_only = alert(quiet, new_id(), paged=False)
        async with port.risk.batch(new_id(), {(TOPIC, 0): [0]}) as unit:
            await unit.commit(BatchEffects(alerts=[first, second, history_only], offsets={(TOPIC, 0): 0}))
        [case] = await port.cases()
        assert (case.subject, case.status, case.priority, case.alert_count) == (subject, "open", 1, 2)
        assert case.alert_ids == sorted([first.alert_id, second.alert_id]) and case.triggers == ["escalation"]

        again = alert(subject, new_id(), priority=3)
        async with port.risk.batch(new_id(), {(TOPIC, 0): [0]}) as unit:
            await unit.commit(BatchEffects(alerts=[first, again], offsets={(TOPIC, 0): 0}))
        [case] = await port.cases()
        assert (case.priority, case.alert_count, case.reopened) == (1, 3, 0), "a stored alert is not counted again"

    async def test_an_acknowledged_case_opens_again_only_for_a_more_urgent_alert(self, port: StoragePorts) -> None:
        subject = new_subject()
        async with port.risk.batch(new_id(), {(TOPIC, 0): [0]}) as unit:
            await unit.commit(BatchEffects(alerts=[alert(subject, new_id(), priority=2)], offsets={(TOPIC, 0): 0}))
        [case] = await port.cases()
        await port.acknowledge(case.case_id)
        async with port.risk.batch(new_id(), {(TOPIC, 0): [0]}) as unit:
            await unit.commit(BatchEffects(alerts=[alert(subject, new_id(), priority=2)], offsets={(TOPIC, 0): 0}))
        [case] = await port.cases()
        assert (case.status, case.alert_count, case.reopened) == ("acknowledged", 2, 0)
        async with port.risk.batch(new_id(), {(TOPIC, 0): [0]}) as unit:
            await unit.commit(BatchEffects(alerts=[alert(subject, new_id(), priority=1)], offsets={(TOPIC, 0): 0}))
        [case] = await port.cases()
        assert (case.status, case.priority, case.alert_count, case.reopened) == ("open", 1, 3, 1)
