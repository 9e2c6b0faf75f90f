"""evaluate_arrival: each trigger fires in its scenario and stays quiet in the near miss."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.alerts import Alert, Trigger, alert_id, evaluate_arrival
from projections.events import DAY_MS, RISKWATCH_NAMESPACE, REVIEW_DUE, RiskEvent, Victim
from projections.levels import Level
from projections.model import SubjectState, assess, empty_state, fold, fold_all
from projections.policy import default_policy
from tests.support.scenario import SUBJECT, T0, crime
from tests.support.scenario import risk_event as event
from tests.support.ticks import stored_tick

POLICY = default_policy()
PROTECTED_VICTIM = Victim("victim-protected", True)


def separation(event_id: str, day: float) -> RiskEvent:
    return event(
        event_id, day, "social_services.separation_reported", markers=["separation"], unit="Socialtjänsten Lund"
    )


def released(event_id: str, day: float, source_type: str = "prison_probation.released") -> RiskEvent:
    return event(event_id, day, source_type, markers=["release"], unit="Kriminalvården Frivård Malmö", region="syd")


def alerts_for(history: Iterable[RiskEvent], arriving: RiskEvent) -> dict[Trigger, Alert]:
    before = fold_all(empty_state(SUBJECT), history)
    after = fold(before, arriving)
    return {alert.trigger: alert for alert in evaluate_arrival(before, after, arriving, POLICY)[0]}


STRANGULATION_RECENTLY = crime("s", 0, "assault", "strangulation")  # high on its own
ASSAULT_LONG_AGO = crime("old", -700)


def test_level_rose() -> None:
    alerts = alerts_for([], crime("a", 0, "assault", "strangulation"))
    rose = alerts[Trigger.LEVEL_ROSE]
    assert (rose.level_before, rose.level_after, rose.priority) == (Level.LOW, Level.HIGH, 2)
    assert rose.explanation.startswith("Risk rose from low to high (high: strangulation reported by police today")
    assert Trigger.LEVEL_ROSE not in alerts_for([], crime("a", 0, "harassment"))


@pytest.mark.parametrize(
    "source_type", ["prison_probation.released", "prison_probation.furlough_started", "prosecution.detention_lifted"]
)
def test_release_at_high_goes_to_the_probation_caseload(source_type: str) -> None:
    alert = alerts_for([STRANGULATION_RECENTLY], released("r", 5, source_type))[Trigger.RELEASE_AT_HIGH]
    assert alert.level_before == Level.HIGH
    assert alert.audience.caseload == "Kriminalvården Frivård Malmö"
    assert alert.audience.region == "syd"
    assert "while at high risk" in alert.explanation


def test_release_while_low_is_no_alert() -> None:
    assert Trigger.RELEASE_AT_HIGH not in alerts_for([ASSAULT_LONG_AGO], released("r", 0))


def test_contact_ban_breach_and_em_alarm_are_priority_one() -> None:
    breach = event(
        "b",
        0,
        "prosecution.contact_ban_breach_reported",
        offence="contact_ban_breach",
        markers=["breach_of_conditions"],
    )
    assert alerts_for([], breach)[Trigger.CONTACT_BAN_BREACH].priority == 1
    alarm = event(
        "e",
        0,
        "police.em_alarm",
        markers=["electronic_monitoring", "breach_of_conditions"],
        attributes={"alarm": "zone_breach"},
    )
    em_alert = alerts_for([], alarm)[Trigger.EM_ALARM]
    assert em_alert.priority == 1
    assert em_alert.explanation.startswith("EM alarm (zone breach)")
    issued = event("i", 0, "prosecution.contact_ban_issued", markers=["contact_ban"])
    assert not {Trigger.CONTACT_BAN_BREACH, Trigger.EM_ALARM} & set(alerts_for([], issued))


@pytest.mark.parametrize(
    ("history", "arriving", "words"),
    [
        (
            [separation("sep", 0)],
            crime("s", 3, "assault", "strangulation"),
            "strangulation reported by police 3 days after separation",
        ),
        (
            [crime("t", 0, "unlawful_threat", "threat_to_kill")],
            separation("sep", 30),
            "threat to kill reported by police 30 days before separation",
        ),
    ],
)
def test_red_flag_separation_either_order(history: list[RiskEvent], arriving: RiskEvent, words: str) -> None:
    alert = alerts_for(history, arriving)[Trigger.RED_FLAG_SEPARATION]
    assert alert.priority == 1
    assert words in alert.explanation


def test_red_flag_needs_the_window() -> None:
    assert Trigger.RED_FLAG_SEPARATION not in alerts_for(
        [separation("sep", 0)], crime("s", 31, "assault", "strangulation")
    )
    assert Trigger.RED_FLAG_SEPARATION not in alerts_for([separation("sep", 0)], crime("s", 3, "assault"))


def test_suicide_threat_with_prior_violence() -> None:
    threat = event("st", 10, "healthcare.suicide_threat", markers=["suicide_threat"])
    alert = alerts_for([crime("a", 0)], threat)[Trigger.SUICIDE_THREAT_WITH_VIOLENCE]
    assert alert.explanation.startswith("Suicide threat reported by healthcare after assault reported by police")
    assert Trigger.SUICIDE_THREAT_WITH_VIOLENCE not in alerts_for([crime("h", 0, "harassment")], threat)
    # Violence that happened after the threat is not prior violence.
    assert Trigger.SUICIDE_THREAT_WITH_VIOLENCE not in alerts_for([crime("a", 11)], threat)


def test_unknown_to_police() -> None:
    concern = event("c", 0, "healthcare.threats_expressed_in_care", markers=["threat_to_kill"])
    alert = alerts_for([event("p", -5, "healthcare.psychiatric_emergency", markers=["mental_ill_health"])], concern)[
        Trigger.UNKNOWN_TO_POLICE
    ]
    assert alert.priority == 2
    assert Trigger.UNKNOWN_TO_POLICE not in alerts_for(
        [event("x", -400, "prosecution.charge_filed", offence="harassment")], concern
    )
    assert Trigger.UNKNOWN_TO_POLICE not in alerts_for([], crime("a", 0))


def test_second_victim_counts_protected_victims_without_naming_them() -> None:
    first = crime("a", 0, victims=[Victim("victim-open", False)])
    second = crime("b", 5, victims=[PROTECTED_VICTIM])
    alert = alerts_for([first], second)[Trigger.SECOND_VICTIM]
    assert (alert.victims, alert.protected_victims) == ((), 1)
    assert "victim-protected" not in json.dumps(alert.to_dict())
    assert Trigger.SECOND_VICTIM not in alerts_for([first], crime("b", 5, victims=[Victim("victim-open", False)]))


def test_protected_victim_keeps_her_unit_and_region_out_of_the_alert() -> None:
    treated = event(
        "t",
        2,
        "healthcare.victim_injury_treated",
        markers=["injuries", "strangulation"],
        victims=[PROTECTED_VICTIM],
        unit="Akutmottagningen Kiruna",
        region="nord",
    )
    alerts = alerts_for([crime("a", 0)], treated)
    assert alerts
    for alert in alerts.values():
        text = json.dumps(alert.to_dict())
        assert "Kiruna" not in text and "nord" not in text and "victim-protected" not in text
        assert alert.audience.region == "syd"  # the subject's own latest region
    assert alerts_for([], treated)[Trigger.LEVEL_ROSE].audience.region is None


def test_a_review_tick_raises_no_alert() -> None:
    # Due reviews are a work queue of their own (services/api/reviews.py), not alerts.
    tick = stored_tick(REVIEW_DUE, SUBJECT, T0 + 7 * DAY_MS)
    assert alerts_for([STRANGULATION_RECENTLY], tick) == {}


def test_alert_ids_are_derived_and_repeats_are_silent() -> None:
    before = empty_state(SUBJECT)
    breach = event("b", 0, "prosecution.contact_ban_breach_reported", offence="contact_ban_breach")
    after = fold(before, breach)
    first = evaluate_arrival(before, after, breach, POLICY)[0]
    assert first == evaluate_arrival(before, after, breach, POLICY)[0]
    expected = str(uuid.uuid5(RISKWATCH_NAMESPACE, f"{SUBJECT}|contact_ban_breach|b|{POLICY.version}"))
    assert alert_id(SUBJECT, "contact_ban_breach", "b", POLICY.version) == expected
    assert expected in {alert.alert_id for alert in first}
    assert evaluate_arrival(after, fold(after, breach), breach, POLICY)[0] == []


def test_alert_serialises() -> None:
    alert = alerts_for([], crime("a", 0, "assault", "strangulation"))[Trigger.LEVEL_ROSE]
    data = json.loads(json.dumps(alert.to_dict()))
    assert data["trigger"] == "level_rose"
    assert data["audience"] == {"region": "syd", "caseload": None}
    assert {factor["factor"] for factor in data["factors"]} >= {"gravity", "strangulation"}
    assert data["factors"][0]["agencies"] == ["police"]


def test_realistic_escalation_from_separation_to_release() -> None:
    """Separation, strangulation, ban, breach, custody, release: risk rises, each step calls the right people."""
    victim = [PROTECTED_VICTIM]
    story = [
        separation("separation", 0),
        event(
            "strangulation",
            3,
            "police.crime_report",
            offence="assault",
            markers=["strangulation", "victim_fear"],
            victims=victim,
        ),
        event(
            "ban",
            6,
            "prosecution.contact_ban_issued",
            markers=["contact_ban"],
            victims=victim,
            attributes={"ban_type": "ordinary", "valid_from": "2026-01-07", "valid_to": "2026-07-07"},
        ),
        event(
            "breach",
            20,
            "prosecution.contact_ban_breach_reported",
            offence="contact_ban_breach",
            markers=["breach_of_conditions"],
            victims=victim,
        ),
        event("detention", 21, "prosecution.detention_decided", offence="contact_ban_breach", markers=["custody"]),
        released("release", 60),
    ]
    state: SubjectState = empty_state(SUBJECT)
    levels: list[Level] = []
    fired: dict[str, set[Trigger]] = {}
    alerts: dict[Trigger, Alert] = {}
    for step in story:
        after = fold(state, step)
        step_alerts = evaluate_arrival(state, after, step, POLICY)[0]
        fired[step.event_id] = {alert.trigger for alert in step_alerts}
        alerts.update({alert.trigger: alert for alert in step_alerts})
        levels.append(assess(after, step.event_time, POLICY).level)
        state = after

    assert levels[0] == Level.LOW
    assert levels[1:] == [Level.EXTREME] * 5
    assert fired["strangulation"] >= {Trigger.RED_FLAG_SEPARATION, Trigger.LEVEL_ROSE}
    assert Trigger.CONTACT_BAN_BREACH in fired["breach"]
    assert Trigger.RELEASE_AT_HIGH in fired["release"]
    assert alerts[Trigger.RED_FLAG_SEPARATION].explanation.startswith(
        "Strangulation reported by police 3 days after separation reported by social services"
    )
    release = alerts[Trigger.RELEASE_AT_HIGH]
    assert release.audience.caseload == "Kriminalvården Frivård Malmö"
    assert "released from custody today" in release.explanation
    assert release.priority == 1
    assert alerts[Trigger.CONTACT_BAN_BREACH].explanation.startswith(
        "Contact ban breach reported by prosecution (extreme: "
    )
    for alert in alerts.values():
        assert "victim-protected" not in json.dumps(alert.to_dict())


def _story() -> list[RiskEvent]:
    victim = [PROTECTED_VICTIM]
    return [
        separation("separation", 0),
        event("strangulation", 3, "police.crime_report", offence="assault", markers=["strangulation"], victims=victim),
        event("breach", 20, "prosecution.contact_ban_breach_reported", offence="contact_ban_breach",
              markers=["breach_of_conditions"], victims=victim),
        event("threat", 25, "healthcare.suicide_threat", markers=["suicide_threat"]),
        event("second", 30, "police.crime_report", offence="assault", victims=[Victim("victim-2", False)]),
        released("release", 60),
    ]


def _arrive(events: Sequence[RiskEvent]) -> set[str]:
    state = empty_state(SUBJECT)
    raised: set[str] = set()
    for arriving in events:
        after = fold(state, arriving)
        raised |= {alert.alert_id for alert in evaluate_arrival(state, after, arriving, POLICY)[0]}
        state = after
    return raised


@given(st.permutations(_story()))
@settings(max_examples=60, deadline=None)
def test_every_in_order_alert_is_raised_whatever_the_arrival_order(arrival: list[RiskEvent]) -> None:
    in_order = _arrive(_story())
    assert len(in_order) >= 4
    assert in_order <= _arrive(arrival)


def test_a_release_reported_before_the_crime_that_preceded_it_still_alerts_probation() -> None:
    crime_first = _arrive([STRANGULATION_RECENTLY, released("r", 2)])
    release_first = _arrive([released("r", 2), STRANGULATION_RECENTLY])
    release_alert = alert_id(SUBJECT, Trigger.RELEASE_AT_HIGH, "r", POLICY.version)
    assert release_alert in crime_first and release_alert in release_first


def test_a_rise_below_the_policys_alerting_level_raises_no_alert() -> None:
    """A rise to moderate shows in the projection; only a policy that asks for it alerts on it."""
    import dataclasses

    threat = crime("threat", 0, "unlawful_threat")
    after = fold(empty_state(SUBJECT), threat)
    assert assess(after, threat.event_time, POLICY).level == Level.MODERATE
    assert POLICY.level_rose_from == Level.HIGH
    shipped, _ = evaluate_arrival(empty_state(SUBJECT), after, threat, POLICY)
    assert Trigger.LEVEL_ROSE not in {a.trigger for a in shipped}
    eager = dataclasses.replace(POLICY, level_rose_from=Level.MODERATE)
    raised, _ = evaluate_arrival(empty_state(SUBJECT), after, threat, eager)
    assert Trigger.LEVEL_ROSE in {a.trigger for a in raised}
