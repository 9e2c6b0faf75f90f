"""Operator conventions on the running stack: record headers, dead letters, request metrics, the
operations status, the AsyncAPI document served, and live-feed clients that leave."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.api.asyncapi import asyncapi_document
from services.api.auth import Role
from services.runtime.stack import Stack
from streams.kafka import DEAD_LETTER_HEADERS, EVENT_HEADERS
from streams.topology import DEADLETTER, SUBJECT_EVENTS, agency_topic, stage_group
from tests.support.api import client, ingest, read_topic, sender_headers, user
from tests.support.polling import until
from tests.support.scenario import at, event, new_person

pytestmark = pytest.mark.integration


async def test_events_carry_type_fingerprint_and_one_trace_from_agency_topic_to_subject_events(stack: Stack) -> None:
    document = event("police.arrest", new_person(), at(1), {"offence": "assault"})
    await ingest(stack, document)
    event_id = document["event_id"]
    (agency_record,) = [r for r in await read_topic(stack, agency_topic("police.arrest"))
                        if dict(r.headers).get("ce_id") == event_id.encode()]
    headers = dict(agency_record.headers)
    assert [name for name, _ in agency_record.headers] == list(EVENT_HEADERS)
    assert headers["ce_type"] == b"police.arrest" and headers["ce_source"] == b"riskwatch/ingest"
    fingerprint = int.from_bytes(agency_record.value[2:10], "little")
    assert headers["schema_fingerprint"] == f"0x{fingerprint:016x}".encode()
    trace = headers["traceparent"].decode().split("-")[1]
    assert trace == event_id.replace("-", "")

    (risk_record,) = [r for r in await read_topic(stack, SUBJECT_EVENTS)
                      if dict(r.headers).get("ce_id") == event_id.encode()]
    risk_headers = dict(risk_record.headers)
    assert risk_headers["ce_source"] == b"riskwatch/normalize" and risk_headers["ce_type"] == b"police.arrest"
    assert risk_headers["traceparent"].decode().split("-")[1] == trace
    assert risk_record.key == agency_record.key


async def test_dead_letters_are_keyed_and_carry_connect_error_headers(stack: Stack) -> None:
    document = event("police.arrest", new_person(), at(1), {"offence": "not-an-offence"})
    async with client(stack) as http:
        response = await http.post("/v1/events", json=document, headers=await sender_headers(stack, document))
    assert response.status_code == 422
    (dead,) = [r for r in await read_topic(stack, DEADLETTER) if r.key == document["event_id"].encode()]
    headers = dict(dead.headers)
    assert set(headers) <= set(DEAD_LETTER_HEADERS)
    assert headers["__connect.errors.stage"] == b"ingest"
    assert b"payload.offence" in headers["__connect.errors.exception.message"]
    assert not re.search(rb"\d{6}(\d{2})?[-+]?\d{4}", b"".join(value for _, value in dead.headers))


async def _scrape(stack: Stack) -> str:
    async with client(stack) as http:
        return (await http.get("/metrics")).text


def _count(text: str, route: str, method: str, status: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "riskwatch_http_requests_total"
               and sample.labels == {"route": route, "method": method, "status": status})


async def test_requests_are_counted_by_route_template_never_by_path(stack: Stack) -> None:
    analyst = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    before = await _scrape(stack)
    async with client(stack, analyst) as http:
        status = str((await http.get("/v1/subjects/ps_nobody_here")).status_code)
        assert (await http.get("/no/such/path")).status_code == 404
    after = await _scrape(stack)
    assert status in ("404", "422")
    assert _count(after, "/v1/subjects/{pseudonym}", "GET", status) == _count(
        before, "/v1/subjects/{pseudonym}", "GET", status) + 1
    assert _count(after, "unmatched", "GET", "404") >= 1
    assert "ps_nobody_here" not in after and "/no/such/path" not in after
    assert "riskwatch_http_request_duration_seconds_bucket" in after


async def test_a_client_leaving_the_live_feed_is_not_an_error(stack: Stack) -> None:
    analyst = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    before = _count(await _scrape(stack), "/v1/alerts/live", "GET", "200")
    async with client(stack, analyst) as http, http.stream("GET", "/v1/alerts/live") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith(":"):  # the first comment: the feed is live
                break

    async def ended_on_the_server() -> bool:
        return _count(await _scrape(stack), "/v1/alerts/live", "GET", "200") != before

    await until(ended_on_the_server, what="the live feed ended on the server", timeout=30)
    log = (stack.logs / "api.log").read_text(errors="replace")
    assert "BrokenResourceError" not in log and "Exception in ASGI application" not in log


async def test_operations_status_shows_lag_by_group_and_alert_latency(stack: Stack) -> None:
    operator = await user(stack, Role.OPERATOR)
    await stack.wait_until_idle()
    async with client(stack, operator) as http:
        response = await http.get("/v1/operations/status")
    assert response.status_code == 200, response.text
    status = response.json()
    group = stack.settings.consumer_group
    assert set(status["consumer_lag"]) == {stage_group(group, "normalize"), stage_group(group, "risk")}
    assert status["consumer_lag"][stage_group(group, "risk")].keys() == {SUBJECT_EVENTS}
    assert all(lag >= 0 for topics in status["consumer_lag"].values() for lag in topics.values())
    latency = status["alert_latency_last_hour"]
    assert set(latency) == {"alerts", "p50_seconds", "p95_seconds", "max_seconds"}
    if latency["alerts"]:
        assert 0 <= latency["p50_seconds"] <= latency["p95_seconds"] <= latency["max_seconds"]


async def test_the_api_serves_the_asyncapi_document(stack: Stack) -> None:
    async with client(stack) as http:
        response = await http.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(asyncapi_document(stack.settings)))
