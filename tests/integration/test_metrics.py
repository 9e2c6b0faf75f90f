"""Operator metrics: dead-letter reason classes, and /metrics, /healthz, /readyz of the running processes."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from schemas.codec import decode_event, encode_event
from schemas.errors import ContractError, EventValidationError, FieldError
from schemas.json_format import event_from_json
from services.runtime import metrics
from services.ingest.gateway import Outcome
from services.runtime.stack import Stack
from tests.support.api import post_documents, sender_headers
from tests.support.polling import until
from tests.support.scenario import at, event, new_person

TODAY = at(300).date()
IDENTITY_NUMBER = re.compile(r"\d{6}(?:\d{2})?[-+]?\d{4}")


def first_error(document: object) -> FieldError:
    try:
        event_from_json(document, today=TODAY)
    except EventValidationError as error:
        return error.errors[0]
    raise AssertionError("the document was accepted")


def decode_error(raw: bytes) -> FieldError:
    try:
        decode_event(raw)
    except ContractError as error:
        return FieldError(error.field, error.reason)
    raise AssertionError("the bytes decoded")


def good() -> dict[str, Any]:
    return event("police.domestic_callout", new_person(), at(3), {"injuries": False})


def changed(path: str, value: object) -> dict[str, Any]:
    document = good()
    *parents, leaf = path.split(".")
    target = document
    for name in parents:
        target = target[name]
    target[leaf] = value
    return document


def without(name: str) -> dict[str, Any]:
    document = good()
    del document[name]
    return document


def healthcare_without_basis() -> dict[str, Any]:
    document = event("healthcare.suicide_threat", new_person(), at(3), {"attempt": False})
    document["legal_basis"] = None
    return document


def avro_body() -> bytes:
    return encode_event(*event_from_json(good(), today=TODAY))


REFUSALS: list[tuple[str, Callable[[], FieldError], str]] = [
    ("not an object", lambda: first_error([1, 2]), "malformed"),
    ("unknown field", lambda: first_error(dict(good(), colour="red")), "malformed"),
    ("not single-object Avro", lambda: decode_error(b'{"event_type": 1}'), "malformed"),
    ("unknown fingerprint", lambda: decode_error(avro_body()[:2] + bytes(8) + avro_body()[10:]), "unknown_fingerprint"),
    ("unknown event type", lambda: first_error({"event_type": "police.teleport"}), "unknown_type"),
    ("missing field", lambda: first_error(without("region")), "missing_field"),
    ("wrong type", lambda: first_error(changed("payload.injuries", "yes")), "wrong_type"),
    ("bad identity number", lambda: first_error(changed("subject.personal_identity_number", "19700101-0001")),
     "identity_number"),
    ("no legal basis", lambda: first_error(healthcare_without_basis()), "legal_basis"),
    ("not a region", lambda: first_error(changed("region", "atlantis")), "invalid_value"),
    ("impossible date", lambda: first_error(changed("event_time", "2026-02-30T10:00:00+01:00")), "invalid_value"),
]


@pytest.mark.parametrize(("name", "refusal", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_gateway_refusals_fall_in_their_reason_class(name: str, refusal: Callable[[], FieldError],
                                                     reason: str) -> None:
    error = refusal()
    assert metrics.dead_letter_reason(error.field, error.reason) == reason, error


NORMALIZE_REFUSALS = [
    ("payload.release_date: missing", "missing_field"),
    ("subject: must be a pseudonym, got kind 'personal_identity_number'", "identity_number"),
    ("event_type: unknown event type 'police.teleport'", "unknown_type"),
    ("legal_basis: healthcare events require osl_10_18c", "legal_basis"),
    ("payload.offence: unknown offence category 'x'", "invalid_value"),
    ("event_id: was already accepted for a different event; give this event its own id", "conflict"),
    ("the broker said no", "other"),
    ("", "other"),
]


@pytest.mark.parametrize(("text", "reason"), NORMALIZE_REFUSALS)
def test_refusal_texts_fall_in_their_reason_class(text: str, reason: str) -> None:
    assert metrics.dead_letter_reason_of_text(text) == reason
    assert reason in metrics.DEAD_LETTER_REASONS


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_ingest_outcomes_count_submissions_topics_and_dead_letters() -> None:
    topic = "agency.police.v1"
    before = {
        "accepted": sample("riskwatch_ingest_submissions_total", outcome="accepted"),
        "out": sample("riskwatch_events_out_total", topic=topic),
        "conflict": sample("riskwatch_dead_letters_total", stage="ingest", reason="conflict"),
        "legal_basis": sample("riskwatch_dead_letters_total", stage="ingest", reason="legal_basis"),
        "dead": sample("riskwatch_events_out_total", topic="ingest.deadletter.v1"),
        "batches": sample("riskwatch_batch_duration_seconds_count", stage="ingest"),
    }
    metrics.record_ingest([
        Outcome("accepted", "http", str(uuid.uuid4()), "police.arrest", topic=topic, partition=0, offset=1),
        Outcome("rejected", "http", errors=(FieldError("legal_basis", "must be osl_10_18c"),)),
        Outcome("rejected", "http", errors=(FieldError("event_id", "was already accepted"),), conflict=True),
        Outcome("duplicate", "http"),
    ], seconds=0.02)
    assert sample("riskwatch_ingest_submissions_total", outcome="accepted") == before["accepted"] + 1
    assert sample("riskwatch_events_out_total", topic=topic) == before["out"] + 1
    assert sample("riskwatch_dead_letters_total", stage="ingest", reason="conflict") == before["conflict"] + 1
    assert sample("riskwatch_dead_letters_total", stage="ingest", reason="legal_basis") == before["legal_basis"] + 1
    assert sample("riskwatch_events_out_total", topic="ingest.deadletter.v1") == before["dead"] + 2
    assert sample("riskwatch_batch_duration_seconds_count", stage="ingest") == before["batches"] + 1


def test_staleness_is_zero_when_caught_up_and_the_age_of_the_newest_applied_event_when_behind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    assert metrics.projection_staleness(0, now) == 0.0
    monkeypatch.setattr(metrics._applied, "newest_accepted_ms", int((now - 42) * 1000))
    assert metrics.projection_staleness(5, now) == pytest.approx(42, abs=0.01)


# ---- the running stack -----------------------------------------------------------------------

Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, url: str) -> Scrape:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(scraped: Scrape, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def series(scraped: Scrape, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in scraped.items() if n == name}


async def worker_urls(stack: Stack) -> list[str]:
    """Base URLs of the live workers, read from the port files they write."""
    files = [stack.settings.state_dir / "metrics" / f"worker-{p.pid}.port" for p in stack.workers if p.poll() is None]

    async def written() -> bool:
        return all(f.exists() and f.read_text().strip() for f in files)

    await until(written, what="the workers' metrics port files")
    return [f"http://{stack.settings.http_host}:{int(f.read_text())}" for f in files]


def assert_no_person_in_labels(scraped: Scrape) -> None:
    for name, labels in scraped:
        for label, label_value in labels:
            assert not label_value.startswith("ps_"), (name, label)
            assert not IDENTITY_NUMBER.search(label_value), (name, label)


@pytest.mark.integration
async def test_worker_serves_health_and_readiness(stack: Stack) -> None:
    (url, *_) = await worker_urls(stack)
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{url}/healthz")).status_code == 200

        async def ready() -> bool:
            return (await client.get(f"{url}/readyz")).status_code == 200

        await until(ready, what="the worker ready")
        answer = (await client.get(f"{url}/readyz")).json()
        assert answer == {"ready": True, "database": "ok", "broker": "ok", "partitions": "ok"}
        assert (await client.get(f"{url}/nothing-here")).status_code == 404


@pytest.mark.integration
async def test_metrics_show_lag_latency_alerts_and_dead_letters_without_persons(stack: Stack) -> None:
    urls = await worker_urls(stack)
    async with httpx.AsyncClient(timeout=10) as client:
        api_before = await scrape(client, f"{stack.api_url}/metrics")
        workers_before = [await scrape(client, f"{url}/metrics") for url in urls]
        subject, victim = new_person(), new_person()
        story = [
            event("police.crime_report", subject, at(20), {"offence": "assault"}, victims=[victim]),
            event("prosecution.contact_ban_breach_reported", subject, at(21), {"electronic_monitoring": True},
                  victims=[victim], unit="Åklagarmyndigheten Stockholm"),
        ]
        await post_documents(stack, *story)
        unlawful = healthcare_without_basis()
        refused = await client.post(f"{stack.api_url}/v1/events", content=json.dumps(unlawful),
                                    headers={"content-type": "application/json",
                                             **await sender_headers(stack, unlawful)})
        assert refused.status_code == 422
        await stack.wait_until_idle()

        api = await scrape(client, f"{stack.api_url}/metrics")
        assert value(api, "riskwatch_ingest_submissions_total", outcome="accepted") == \
            value(api_before, "riskwatch_ingest_submissions_total", outcome="accepted") + 2
        assert value(api, "riskwatch_dead_letters_total", stage="ingest", reason="legal_basis") == \
            value(api_before, "riskwatch_dead_letters_total", stage="ingest", reason="legal_basis") + 1
        assert value(api, "riskwatch_batch_duration_seconds_count", stage="ingest") > \
            value(api_before, "riskwatch_batch_duration_seconds_count", stage="ingest")

        workers: list[Scrape] = []

        async def caught_up() -> bool:
            # the lag is sampled every few seconds: wait for a sample taken after the commit
            workers[:] = [await scrape(client, f"{url}/metrics") for url in urls]
            lags = [series(w, "riskwatch_consumer_lag_records") for w in workers]
            return all(lag for lag in lags) and sum(sum(lag.values()) for lag in lags) == 0

        await until(caught_up, what="a lag sample of zero from every worker")

    def total(scrapes: list[Scrape], name: str, **labels: str) -> float:
        return sum(value(s, name, **labels) for s in scrapes)

    def breach_alerts(scrapes: list[Scrape]) -> float:
        return sum(v for s in scrapes for labels, v in series(s, "riskwatch_alerts_total").items()
                   if dict(labels)["trigger"] == "contact_ban_breach")

    lag_topics = {dict(labels)["topic"] for w in workers for labels in series(w, "riskwatch_consumer_lag_records")}
    assert {"agency.police.v1", "subject-events.v1"} <= lag_topics
    lag_groups = {(dict(labels)["group"], dict(labels)["topic"]) for w in workers
                  for labels in series(w, "riskwatch_consumer_lag_records")}
    assert {("riskwatch-normalize", "agency.police.v1"), ("riskwatch-risk", "subject-events.v1")} <= lag_groups
    assert total(workers, "riskwatch_projection_staleness_seconds") == 0
    assert total(workers, "riskwatch_worker_ready") == len(workers)
    assert total(workers, "riskwatch_events_in_total", topic="agency.police.v1") >= \
        total(workers_before, "riskwatch_events_in_total", topic="agency.police.v1") + 1
    assert breach_alerts(workers) > breach_alerts(workers_before)
    alerts = total(workers, "riskwatch_ingest_to_alert_seconds_count") - \
        total(workers_before, "riskwatch_ingest_to_alert_seconds_count")
    seconds = total(workers, "riskwatch_ingest_to_alert_seconds_sum") - \
        total(workers_before, "riskwatch_ingest_to_alert_seconds_sum")
    assert alerts >= 1
    assert 0 < seconds / alerts < 60, "ingest-to-alert latency is measured from acceptance, in seconds"
    applied = total(workers, "riskwatch_ingest_to_projection_seconds_count") - \
        total(workers_before, "riskwatch_ingest_to_projection_seconds_count")
    assert applied >= 2
    assert total(workers, "riskwatch_outbox_backlog_messages") == 0
    for scraped in (api, *workers):
        assert_no_person_in_labels(scraped)
