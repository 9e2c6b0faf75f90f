"""Alerts: what an arriving event changed that someone must act on, and who that someone is.

An alert's id derives from (subject, trigger, causing event, policy version), so evaluating the
same event again yields the same alerts and the outbox can ignore the repeat.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from projections.events import RISKWATCH_NAMESPACE, TICKS, Marker, RiskEvent
from projections.explain import RED_FLAG_MARKERS, RELEASE_LABELS, agency_name, event_label, near_separation
from projections.levels import Level
from projections.model import Assessment, Brief, Contribution, SubjectState, assess, assess_brief, fold
from projections.policy import Policy
from schemas.codec import encode_published


class Trigger(StrEnum):
    LEVEL_ROSE = "level_rose"
    RELEASE_AT_HIGH = "release_at_high"
    CONTACT_BAN_BREACH = "contact_ban_breach"
    EM_ALARM = "em_alarm"
    RED_FLAG_SEPARATION = "red_flag_separation"
    SUICIDE_THREAT_WITH_VIOLENCE = "suicide_threat_with_violence"
    UNKNOWN_TO_POLICE = "unknown_to_police"
    SECOND_VICTIM = "second_victim"
    # No rule raises it any more (due reviews are a work queue); alerts stored before keep it.
    REVIEW_DUE = "review_due"


URGENT, HIGH_PRIORITY, ROUTINE = 1, 2, 3

RELEASE_EVENTS = frozenset(RELEASE_LABELS)
CONTACT_BAN_BREACH_EVENT = "prosecution.contact_ban_breach_reported"
EM_ALARM_EVENT = "police.em_alarm"
# Agencies whose concerns reach police only through OSL 10:18 c, and the agencies that mean police know.
SHARING_AGENCIES = frozenset({"healthcare", "social_services"})
POLICE_AGENCIES = frozenset({"police", "prosecution"})
VIOLENCE_MARKERS = frozenset({Marker.STRANGULATION, Marker.THREAT_TO_KILL, Marker.INJURIES})


@dataclass(frozen=True, slots=True)
class Audience:
    """Who must act: the region's command, and for releases the probation caseload (the unit).

    `region` is None when every known region could point at a protected victim.
    """

    region: str | None
    caseload: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "caseload": self.caseload}


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    subject: str
    trigger: Trigger
    priority: int
    level_before: Level
    level_after: Level
    score: float
    explanation: str
    factors: tuple[Contribution, ...]
    audience: Audience
    event_time: int
    causing_event_id: str
    policy_version: str
    # Pseudonyms of the causing event's victims without protected identity; the others are only counted.
    victims: tuple[str, ...]
    protected_victims: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "subject": self.subject,
            "trigger": self.trigger.value,
            "priority": self.priority,
            "level_before": self.level_before.label,
            "level_after": self.level_after.label,
            "score": self.score,
            "explanation": self.explanation,
            "factors": [factor.to_dict() for factor in self.factors],
            "audience": self.audience.to_dict(),
            "event_time": self.event_time,
            "causing_event_id": self.causing_event_id,
            "policy_version": self.policy_version,
            "victims": list(self.victims),
            "protected_victims": self.protected_victims,
        }


def pages(alert: Alert, processed_at: int, policy: Policy, *, backfill: bool = False) -> bool:
    """Whether the alert goes to the live queue (a case, the SSE feeds, escalation) or is only history.

    History does not page: an alert whose causing event is older than the paging window when it is
    processed, or that comes from a backfill, is recorded (subject history, evaluation) and calls no
    one. Nor does an alert below the policy's paging level, unless it is urgent (an EM alarm, a
    contact-ban breach, a red flag: acute whatever the level). `processed_at` is passed in: the
    core reads no clock. The projection never depends on this, so a rebuild equals the live ones.
    """
    if backfill or processed_at - alert.event_time > policy.paging_window_ms:
        return False
    return alert.priority == URGENT or alert.level_after >= policy.page_from_level


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as a row of the `alert` table holds it: what the risk stage writes (StoredAlert), the
    workflow's escalation raises (services/workflow/ports.py NewAlert) and a batch run reports
    (services/tools/batch.py BatchAlert) share these fields. Levels by label, times in epoch ms."""

    alert_id: str
    subject: str
    trigger: str
    priority: int
    level_before: str
    level_after: str
    score: float
    explanation: str
    factors: list[dict[str, Any]]
    region: str | None
    caseload: str | None
    event_time: int
    causing_event_id: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class StoredAlert(AlertRecord):
    """The risk stage's alert as it is stored and published: the one record of an alert it writes.

    `paged` False: history, recorded but in no live queue (`pages`). `message` is the alerts.v1
    document the outbox relay publishes on `topic`; it carries history too, marked.
    """

    topic: str
    message: bytes
    paged: bool = True

    @classmethod
    def of(cls, alert: Alert, *, paged: bool, topic: str) -> StoredAlert:
        document = {**alert.to_dict(), "paged": paged}
        return cls(
            alert_id=alert.alert_id, subject=alert.subject, trigger=alert.trigger.value, priority=alert.priority,
            level_before=alert.level_before.label, level_after=alert.level_after.label, score=alert.score,
            explanation=alert.explanation, factors=document["factors"], region=alert.audience.region,
            caseload=alert.audience.caseload, event_time=alert.event_time, causing_event_id=alert.causing_event_id,
            policy_version=alert.policy_version, topic=topic,
            message=encode_published(topic, document, checked=True), paged=paged,  # the topic's Avro contract
        )


def alert_id(subject: str, trigger: str, causing_event_id: str, policy_version: str) -> str:
    return str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{subject}|{trigger}|{causing_event_id}|{policy_version}"))


@dataclass(frozen=True, slots=True)
class _Firing:
    trigger: Trigger
    priority: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Context:
    after: SubjectState
    event: RiskEvent
    was: Brief
    now: Brief  # what the rules read of the assessment after the event
    policy: Policy


def evaluate_arrival(
    before: SubjectState, after: SubjectState, event: RiskEvent, policy: Policy
) -> tuple[list[Alert], Assessment]:
    """The alerts an arriving event causes, and `after` assessed at its time.

    A late event (earlier in event time than events already folded) is checked at its own
    place in time, and every later event is checked again with it in its past: a release
    reported before the crime that preceded it still raises release_at_high. So whatever
    the arrival order, every alert of the in-order run is raised; repeats are the same
    alert (same id). Alerts raised before the late event came are not withdrawn.
    """
    if event.source_type in TICKS or event.event_id not in after.event_ids:
        return evaluate_event(before, after, event, policy)
    position = bisect.bisect_left(after.events, event.sort_key, key=_sort_key)
    if position == len(after.events) - 1:  # in order: the usual case
        return evaluate_event(before, after, event, policy)
    return recheck_from(after, position, policy), assess(after, event.event_time, policy)


def recheck_from(state: SubjectState, position: int, policy: Policy) -> list[Alert]:
    """The alerts of every event of `state` from `position` on, each checked with all of its
    past that `state` holds: what a late event placed at `position` calls for."""
    alerts: list[Alert] = []
    for index in range(position, len(state.events)):
        earlier = state.prefix(index)  # shares the state's ledger: each re-check costs no rebuild
        alerts += _recheck(earlier, fold(earlier, state.events[index]), state.events[index], policy)
    return alerts


def _recheck(before: SubjectState, after: SubjectState, event: RiskEvent, policy: Policy) -> list[Alert]:
    """`evaluate_event`'s alerts, without its assessment: the rules read only the level and the
    victim count, so the full assessment (contributions, explanation) is made only for an alert."""
    at = event.event_time
    if event.event_id in before.event_ids or event.event_id not in after.event_ids:
        return []
    context = _Context(after, event, assess_brief(before, at, policy), assess_brief(after, at, policy), policy)
    firings = [firing for rule in _RULES if (firing := rule(context)) is not None]
    if not firings:
        return []
    now = assess(after, at, policy)
    return [_alert(context, firing, now) for firing in firings]


def _sort_key(event: RiskEvent) -> tuple[int, str]:
    return event.sort_key


def evaluate_event(
    before: SubjectState, after: SubjectState, event: RiskEvent, policy: Policy
) -> tuple[list[Alert], Assessment]:
    """The alerts, and `after` assessed at the event's time (callers reuse it rather than assess twice)."""
    at = event.event_time
    now = assess(after, at, policy)
    if event.event_id in before.event_ids:
        return [], now
    if event.source_type not in TICKS and event.event_id not in after.event_ids:
        # Too old for the state to keep: it changes nothing, so it calls no one.
        return [], now
    context = _Context(after, event, assess_brief(before, at, policy), Brief(now.level, now.components.victims), policy)
    firings = [firing for rule in _RULES if (firing := rule(context)) is not None]
    return [_alert(context, firing, now) for firing in firings], now


def _level_rose(context: _Context) -> _Firing | None:
    was, now = context.was.level, context.now.level
    if now <= was or now < context.policy.level_rose_from:
        return None
    priority = URGENT if now == Level.EXTREME else HIGH_PRIORITY if now == Level.HIGH else ROUTINE
    return _Firing(Trigger.LEVEL_ROSE, priority, f"risk rose from {was.label} to {now.label}")


def _release_at_high(context: _Context) -> _Firing | None:
    event, was = context.event, context.was.level
    if event.source_type not in RELEASE_EVENTS or was < Level.HIGH:
        return None
    return _Firing(
        Trigger.RELEASE_AT_HIGH,
        URGENT if was == Level.EXTREME else HIGH_PRIORITY,
        f"{RELEASE_LABELS[event.source_type]} while at {was.label} risk",
    )


def _contact_ban_breach(context: _Context) -> _Firing | None:
    if context.event.source_type != CONTACT_BAN_BREACH_EVENT:
        return None
    monitored = " under electronic monitoring" if Marker.ELECTRONIC_MONITORING in context.event.markers else ""
    return _Firing(Trigger.CONTACT_BAN_BREACH, URGENT, f"contact ban breach{monitored} reported by prosecution")


def _em_alarm(context: _Context) -> _Firing | None:
    if context.event.source_type != EM_ALARM_EVENT:
        return None
    label, _ = event_label(context.event)
    return _Firing(Trigger.EM_ALARM, URGENT, label)


def _red_flag_separation(context: _Context) -> _Firing | None:
    """Strangulation or a threat to kill within the window of a separation, in either order."""
    event, window = context.event, context.policy.red_flag_window_ms
    near = [
        other
        for other in context.after.around(event.event_time, window)
        if other.event_id != event.event_id
    ]
    pairs: list[tuple[RiskEvent, RiskEvent]] = []  # (separation, act)
    if Marker.SEPARATION in event.markers:
        pairs.extend((event, other) for other in near if other.markers & RED_FLAG_MARKERS)
    if event.markers & RED_FLAG_MARKERS:
        pairs.extend((other, event) for other in near if Marker.SEPARATION in other.markers)
    if not pairs:
        return None
    separation, act = min(
        pairs, key=lambda pair: (abs(pair[0].event_time - pair[1].event_time), pair[0].sort_key, pair[1].sort_key)
    )
    return _Firing(Trigger.RED_FLAG_SEPARATION, URGENT, near_separation(act, separation))


def _suicide_threat_with_violence(context: _Context) -> _Firing | None:
    event, policy = context.event, context.policy
    if Marker.SUICIDE_THREAT not in event.markers:
        return None
    violence = [
        other
        for other in context.after.events
        if other.event_id != event.event_id
        and event.event_time - policy.horizon_ms <= other.event_time <= event.event_time
        and (other.offence in policy.violent_offences or other.markers & VIOLENCE_MARKERS)
    ]
    if not violence:
        return None
    label, _ = event_label(violence[-1])
    return _Firing(
        Trigger.SUICIDE_THREAT_WITH_VIOLENCE,
        HIGH_PRIORITY,
        f"suicide threat reported by {agency_name(event.agency)} after {label} reported by "
        f"{agency_name(violence[-1].agency)}",
    )


def _unknown_to_police(context: _Context) -> _Firing | None:
    event = context.event
    if event.agency not in SHARING_AGENCIES or any(other.agency in POLICE_AGENCIES for other in context.after.events):
        return None
    return _Firing(
        Trigger.UNKNOWN_TO_POLICE,
        HIGH_PRIORITY,
        f"{agency_name(event.agency)} shared a concern about someone police and prosecution have no record of",
    )


def _second_victim(context: _Context) -> _Firing | None:
    if not (context.was.victims == 1 and context.now.victims >= 2):
        return None
    return _Firing(Trigger.SECOND_VICTIM, HIGH_PRIORITY, "a second distinct victim")


_RULES: tuple[Callable[[_Context], _Firing | None], ...] = (
    _level_rose,
    _release_at_high,
    _contact_ban_breach,
    _em_alarm,
    _red_flag_separation,
    _suicide_threat_with_violence,
    _unknown_to_police,
    _second_victim,
)


def _alert(context: _Context, firing: _Firing, now: Assessment) -> Alert:
    event = context.event
    protected = sum(1 for victim in event.victims if victim.protected_identity)
    caseload = event.unit if firing.trigger == Trigger.RELEASE_AT_HIGH and not protected else None
    return Alert(
        alert_id=alert_id(context.after.subject, firing.trigger, event.event_id, context.policy.version),
        subject=context.after.subject,
        trigger=firing.trigger,
        priority=firing.priority,
        level_before=context.was.level,
        level_after=now.level,
        score=now.score,
        explanation=f"{firing.reason[0].upper()}{firing.reason[1:]} ({now.explanation})",
        factors=now.contributions,
        audience=Audience(region=_safe_region(event, context.after.events), caseload=caseload),
        event_time=event.event_time,
        causing_event_id=event.event_id,
        policy_version=context.policy.version,
        victims=tuple(victim.pseudonym for victim in event.victims if not victim.protected_identity),
        protected_victims=protected,
    )


def _safe_region(event: RiskEvent, events: Iterable[RiskEvent]) -> str | None:
    """The event's region, unless it involves a protected victim: then the subject's latest other region.

    An event about a protected victim may have been recorded where she lives or was treated.
    """
    if not any(victim.protected_identity for victim in event.victims):
        return event.region
    safe = [
        other
        for other in events
        if other.event_time <= event.event_time and not any(victim.protected_identity for victim in other.victims)
    ]
    return safe[-1].region if safe else None
