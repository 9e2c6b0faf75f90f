"""The ingest gateway on the in-memory twins of its ports: no broker, no database, no waiting.

The broker's and the database's bounds are tested on a manual clock: a broker that never
acknowledges makes the outcome 503 once the gateway's timeout has passed on that clock.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from schemas.codec import decode_event
from schemas.errors import FieldError
from schemas.identity import parse_identity_number, pseudonym
from services.adapters.memory import ManualClock
from services.adapters.memory.ingest import MemoryEventPublisher, MemoryIngestRecords
from services.ingest.clients import AgencyClient
from services.ingest.gateway import IngestGateway, Outcome, Submission
from streams.topology import DEADLETTER, agency_topic
from tests.support.scenario import at, event, new_person

KEY = bytes(range(32))
TODAY = dt.date(2026, 11, 1)
TIMEOUT = 2.0
CLUSTER = "cluster-unit"
POLICE = AgencyClient("police-test", "police", frozenset({"Polisen Region Stockholm"}))


class Twins:
    def __init__(self) -> None:
        self.clock = ManualClock(start=1000.0)
        self.records = MemoryIngestRecords(clock=self.clock)
        self.publisher = MemoryEventPublisher(wait=self.clock.advance)
        self.gateway = IngestGateway(self.records, self.publisher, KEY, CLUSTER, timeout=TIMEOUT, client=POLICE,
                                     today=lambda: TODAY, clock=self.clock)

    async def submit(self, *documents: dict[str, Any] | bytes, client: AgencyClient | None = None) -> list[Outcome]:
        submissions = [Submission(d if isinstance(d, bytes) else json.dumps(d).encode(), "json", f"test:{n}")
                       for n, d in enumerate(documents, start=1)]
        return await self.gateway.submit(submissions, client)


@pytest.fixture
def twins() -> Twins:
    return Twins()


def arrest(person: str | None = None, **overrides: Any) -> dict[str, Any]:
    return {**event("police.domestic_callout", person or new_person(), at(3), {"injuries": False}), **overrides}


def alias(number: str) -> str:
    return pseudonym(parse_identity_number(number, today=TODAY), KEY)


async def test_an_accepted_event_is_on_the_broker_pseudonymized_and_recorded(twins: Twins) -> None:
    person, victim = new_person(), new_person()
    document = event("police.domestic_callout", person, at(3), {"injuries": True}, victims=[victim])
    [outcome] = await twins.submit(document)
    topic = agency_topic("police.domestic_callout")
    assert (outcome.status, outcome.event_id, outcome.topic, outcome.offset) == (
        "accepted", document["event_id"], topic, 0)
    [record] = twins.publisher.published(topic)
    assert person.encode() not in record.value and victim.encode() not in record.value
    decoded = decode_event(record.value)
    assert decoded.record["subject"] == {"kind": "pseudonym", "value": alias(person)}
    assert record.key == alias(person).encode()
    assert ("ce_id", document["event_id"].encode()) in record.headers
    assert twins.records.identities[alias(person)] == (
        parse_identity_number(person, today=TODAY).canonical, "personal_identity_number")
    assert alias(victim) in twins.records.identities
    assert await twins.records.claimed_hashes([document["event_id"]]) == {
        document["event_id"]: (twins.records.claims[document["event_id"]].content_hash, True)}


async def test_the_same_event_again_is_a_duplicate_and_another_under_its_id_a_conflict(twins: Twins) -> None:
    document = arrest()
    [first] = await twins.submit(document)
    [again] = await twins.submit(document)
    [other] = await twins.submit({**document, "payload": {"injuries": True}})
    assert (first.status, again.status) == ("accepted", "duplicate")
    assert other.status == "rejected" and other.conflict and other.errors[0].field == "event_id"
    assert len(twins.publisher.published(agency_topic("police.domestic_callout"))) == 1
    assert [source for source, _, _ in twins.records.dead_letters] == ["test:1"]


async def test_repeats_within_one_batch_are_published_once(twins: Twins) -> None:
    document = arrest()
    outcomes = await twins.submit(document, document, {**document, "unit": "Polisen Region Stockholm",
                                                       "payload": {"injuries": True}})
    assert [o.status for o in outcomes] == ["accepted", "duplicate", "rejected"]
    assert outcomes[2].conflict
    assert len(twins.publisher.published(agency_topic("police.domestic_callout"))) == 1


async def test_another_agencys_event_and_another_unit_are_forbidden_and_kept(twins: Twins) -> None:
    foreign = event("healthcare.suicide_threat", new_person(), at(2), {"attempt": False},
                    unit="Polisen Region Stockholm")
    elsewhere = arrest(unit="Polisen Region Syd")
    outcomes = await twins.submit(foreign, elsewhere)
    assert [(o.status, o.forbidden, o.errors[0].field) for o in outcomes] == [
        ("rejected", True, "event_type"), ("rejected", True, "unit")]
    assert twins.publisher.published(agency_topic("police.domestic_callout")) == []
    assert twins.records.claims == {}, "nothing forbidden is claimed"
    assert [source for source, _, _ in twins.records.dead_letters] == ["test:1", "test:2"]
    assert len(twins.publisher.published(DEADLETTER)) == 2
    [allowed] = await twins.submit(foreign, client=AgencyClient("care", "healthcare",
                                                                frozenset({"Polisen Region Stockholm"})))
    assert allowed.status == "accepted"


async def test_a_wrong_identity_number_is_refused_and_withheld_from_the_dead_letter_topic(twins: Twins) -> None:
    good = new_person()
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)  # the check digit no longer fits
    [outcome] = await twins.submit(arrest(wrong))
    assert outcome.status == "rejected" and not outcome.forbidden and not outcome.conflict
    assert outcome.errors and any("subject" in error.field for error in outcome.errors)
    assert twins.records.identities == {} and twins.records.claims == {}
    [(source, reason, original)] = twins.records.dead_letters
    assert source == "test:1" and wrong.encode() in original, "PostgreSQL keeps the input in full"
    [letter] = twins.publisher.published(DEADLETTER)
    assert wrong.encode() not in letter.value and wrong not in reason
    assert letter.key == (outcome.event_id or "test:1").encode()


async def test_unreadable_input_is_rejected_with_the_reason_and_kept(twins: Twins) -> None:
    outcomes = await twins.submit(b"{not json", {**arrest(), "event_id": "not-a-uuid"})
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    assert outcomes[0].event_id is None
    assert [source for source, _, _ in twins.records.dead_letters] == ["test:1", "test:2"]


async def test_a_silent_broker_is_unavailable_within_the_timeout_and_the_claim_abandoned(twins: Twins) -> None:
    twins.publisher.mode = "silent"
    document = arrest()
    started = twins.clock.now
    [outcome] = await twins.submit(document)
    assert outcome.status == "unavailable" and outcome.errors[0].field == "broker"
    assert twins.publisher.waited == [TIMEOUT], "the broker was waited for the gateway's bound, not longer"
    assert twins.clock.now - started <= TIMEOUT + 0.1
    # handed over, maybe on the broker: the same content may be sent again at once, other content not
    assert twins.records.claims[document["event_id"]].topic is None
    twins.publisher.mode = "up"
    [conflict] = await twins.submit({**document, "payload": {"injuries": True}})
    assert conflict.conflict
    [retried] = await twins.submit(document)
    assert retried.status == "accepted"


async def test_a_broker_that_is_away_releases_the_claims(twins: Twins) -> None:
    twins.publisher.mode = "down"
    document = arrest()
    [outcome] = await twins.submit(document)
    assert outcome.status == "unavailable"
    assert document["event_id"] not in twins.records.claims, "never sent: the id is free again"
    twins.publisher.mode = "up"
    [other] = await twins.submit({**document, "payload": {"injuries": True}})
    assert other.status == "accepted", "the id was never used"


async def test_refusals_that_cannot_reach_the_dead_letter_topic_are_unavailable(twins: Twins) -> None:
    twins.publisher.mode = "silent"
    [outcome] = await twins.submit(b"{not json")
    assert outcome.status == "unavailable" and outcome.errors[0].field == "dead letters"
    assert twins.publisher.waited and twins.publisher.waited[0] <= TIMEOUT


async def test_a_database_away_is_unavailable_and_nothing_is_published(twins: Twins) -> None:
    twins.records.available = False
    outcomes = await twins.submit(arrest(), b"{not json")
    assert [(o.status, o.errors[0].field) for o in outcomes] == [("unavailable", "database"),
                                                                 ("unavailable", "dead letters")]
    assert twins.publisher.topics == {}


async def test_a_body_refused_as_a_whole_is_kept(twins: Twins) -> None:
    raw = b"x" * 100
    kept = await twins.gateway.refuse(Submission(raw, "other", "http"), FieldError("content-type", "not taken"))
    assert kept.status == "rejected"
    assert twins.records.dead_letters == [("http", "content-type: not taken", raw)]
    [letter] = twins.publisher.published(DEADLETTER)
    assert letter.key == b"http" and letter.value == raw


async def test_a_submission_needs_a_client() -> None:
    records, publisher = MemoryIngestRecords(), MemoryEventPublisher()
    gateway = IngestGateway(records, publisher, KEY, CLUSTER, today=lambda: TODAY)
    with pytest.raises(ValueError, match="agency client"):
        await gateway.submit([Submission(json.dumps(arrest()).encode(), "json", "x")])
    assert records.claims == {} and publisher.topics == {}
