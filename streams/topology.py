"""The whole topology in one place: topics, who writes them, who reads them.

    ingest gateway ──> agency.<agency>.v1 ──normalize──> subject-events.v1 ──risk──> PostgreSQL
         │                                                  ▲                          │ outbox
         └──> ingest.deadletter.v1          scheduler, overrides                       ▼
                                                                      risk-changes.v1, alerts.v1
    query API (acknowledge, assign, close, escalate) ──outbox──> alert-workflow.v1

Every event topic is keyed by the subject pseudonym, so one subject's events stay in order
on one partition and one worker owns a subject at a time.
"""

from __future__ import annotations

AGENCIES = ("police", "prosecution", "prison_probation", "social_services", "healthcare")

AGENCY_TOPICS: dict[str, str] = {agency: f"agency.{agency.replace('_', '-')}.v1" for agency in AGENCIES}
SUBJECT_EVENTS = "subject-events.v1"
RISK_CHANGES = "risk-changes.v1"
ALERTS = "alerts.v1"
DEADLETTER = "ingest.deadletter.v1"
ALERT_WORKFLOW = "alert-workflow.v1"  # acknowledged, assigned, closed, escalated (written by the API)

ALL_TOPICS = (*AGENCY_TOPICS.values(), SUBJECT_EVENTS, RISK_CHANGES, ALERTS, DEADLETTER, ALERT_WORKFLOW)


# Who writes and who reads each topic, for people and for the AsyncAPI document (services/api/asyncapi.py).
# Readers outside Riskwatch (an agency's alert inbox, a data warehouse) subscribe with groups of their own.
PRODUCERS: dict[str, tuple[str, ...]] = {
    **{topic: ("ingest gateway",) for topic in AGENCY_TOPICS.values()},
    SUBJECT_EVENTS: ("normalize", "scheduler", "query API (analyst overrides)"),
    RISK_CHANGES: ("outbox relay",),
    ALERTS: ("outbox relay",),
    DEADLETTER: ("ingest gateway", "normalize"),
    ALERT_WORKFLOW: ("outbox relay",),
}
CONSUMERS: dict[str, tuple[str, ...]] = {
    **{topic: ("normalize",) for topic in AGENCY_TOPICS.values()},
    SUBJECT_EVENTS: ("risk",),
    RISK_CHANGES: (),
    ALERTS: ("`riskwatch demo`",),
    DEADLETTER: (),
    ALERT_WORKFLOW: (),
}

# the worker's consuming stages: each is its own consumer group, named after the configured one
STAGE_TOPICS: dict[str, tuple[str, ...]] = {"normalize": tuple(AGENCY_TOPICS.values()), "risk": (SUBJECT_EVENTS,)}


def stage_group(consumer_group: str, stage: str) -> str:
    return f"{consumer_group}-{stage}"


def agency_topic(event_type: str) -> str:
    return AGENCY_TOPICS[event_type.split(".", 1)[0]]
