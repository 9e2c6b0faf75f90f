"""Operator metrics: every series Riskwatch exposes, and the worker's small HTTP server.

Base units (seconds), `_total` counters, and labels from bounded sets only: topic names of
the topology, stages, reason classes, alert triggers and levels, partition numbers. No label
ever carries a person, a pseudonym or an event id. docs/operations.md lists the series.

The API serves /metrics on its own port. Each stream worker serves /metrics, /healthz and
/readyz on `metrics_port` from a thread, and samples what only it can see (consumer lag of
its partitions, outbox backlog, projection staleness, readiness) every few seconds.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, MetricsHandler, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from projections.alerts import Trigger
from projections.levels import Level
from projections.ports import OutboxBacklog, OutboxMessage
from projections.quarantine import REASON_CLASSES
from schemas.errors import FieldError
from services.runtime.settings import Settings
from streams.kafka import client_options
from streams.topology import AGENCY_TOPICS, ALL_TOPICS, DEADLETTER, SUBJECT_EVENTS

if TYPE_CHECKING:
    import faust

    from streams.consume import Record, Stage
    from streams.normalize import NormalizeOutcome
    from streams.risk import BatchOutcome

log = logging.getLogger(__name__)

STAGES = ("ingest", "normalize", "risk")
DEAD_LETTER_REASONS = ("malformed", "unknown_type", "missing_field", "wrong_type", "invalid_value",
                       "identity_number", "legal_basis", "unknown_fingerprint", "conflict", "forbidden", "other")
OTHER_TOPIC = "other"

# `_created` samples would double every series for a timestamp nobody charts
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

EVENTS_IN = Counter("riskwatch_events_in", "Records consumed by a stream stage, by topic.", ["topic"])
EVENTS_OUT = Counter("riskwatch_events_out", "Records produced and acknowledged by the broker, by topic.", ["topic"])
INGEST_SUBMISSIONS = Counter("riskwatch_ingest_submissions", "Events submitted to the ingest gateway, by outcome.",
                             ["outcome"])
DEAD_LETTERS = Counter("riskwatch_dead_letters", "Refused events kept as dead letters, by stage and reason class.",
                       ["stage", "reason"])
QUARANTINED = Counter("riskwatch_quarantined", "Records a stage set aside because of their content, by stage and "
                      "reason class (`riskwatch quarantine list`).", ["stage", "reason"])
ALERTS_RAISED = Counter("riskwatch_alerts", "Alerts committed, by trigger and the level after the event.",
                        ["trigger", "level"])
BATCH_DURATION = Histogram("riskwatch_batch_duration_seconds",
                           "Time to get one batch done (retries included), by stage.", ["stage"],
                           buckets=_BATCH_BUCKETS)
INGEST_TO_PROJECTION = Histogram(
    "riskwatch_ingest_to_projection_seconds",
    "From the broker timestamp of the accepted agency record to the commit of its projection update.",
    buckets=_LATENCY_BUCKETS,
)
INGEST_TO_ALERT = Histogram(
    "riskwatch_ingest_to_alert_seconds",
    "End to end: from the broker timestamp of the accepted agency record to the commit of the alert it raised.",
    buckets=_LATENCY_BUCKETS,
)
# The API's requests, by route template (/v1/subjects/{pseudonym}, never the path itself) and method.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
UNMATCHED_ROUTE = "unmatched"
HTTP_REQUESTS = Counter("riskwatch_http_requests", "HTTP requests answered by the API, by route template, method "
                        "and status code.", ["route", "method", "status"])
HTTP_REQUEST_DURATION = Histogram("riskwatch_http_request_duration_seconds",
                                  "Time from a request to the end of its answer (a live feed: its whole life), by "
                                  "route template and method.", ["route", "method"], buckets=_BATCH_BUCKETS)
# Sampled by the stream workers only: registered when a worker starts watching, so that the
# API never exposes a worker's gauges at 0.
CONSUMER_LAG = Gauge("riskwatch_consumer_lag_records",
                     "End offset minus the consumer group's committed offset, per partition this worker owns.",
                     ["group", "topic", "partition"], registry=None)
ASSIGNED_PARTITIONS = Gauge("riskwatch_assigned_partitions", "Partitions assigned to this worker.", registry=None)
OUTBOX_BACKLOG = Gauge("riskwatch_outbox_backlog_messages", "Outbox messages not yet published.", registry=None)
OUTBOX_OLDEST_AGE = Gauge("riskwatch_outbox_oldest_age_seconds",
                          "Age of the oldest unpublished outbox message; 0 when the outbox is empty.", registry=None)
PROJECTION_STALENESS = Gauge(
    "riskwatch_projection_staleness_seconds",
    "0 when this worker has consumed everything on its partitions; otherwise the age of the newest "
    "accepted event its projections reflect.",
    registry=None,
)
WORKER_READY = Gauge("riskwatch_worker_ready", "1 when broker and database answer and partitions are assigned.",
                     registry=None)
WORKER_SERIES = (CONSUMER_LAG, ASSIGNED_PARTITIONS, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, PROJECTION_STALENESS,
                 WORKER_READY)


def _initialise_series() -> None:
    """Every bounded label set starts at 0, so rates and absence alerts work from the first scrape."""
    for topic in (*AGENCY_TOPICS.values(), SUBJECT_EVENTS):
        EVENTS_IN.labels(topic)
    for topic in ALL_TOPICS:
        EVENTS_OUT.labels(topic)
    for stage in STAGES:
        BATCH_DURATION.labels(stage)
        for reason in DEAD_LETTER_REASONS:
            if stage != "risk":  # the risk stage refuses nothing to the dead-letter topic
                DEAD_LETTERS.labels(stage, reason)
    for stage in ("normalize", "risk"):
        for reason in REASON_CLASSES:
            QUARANTINED.labels(stage, reason)
    for outcome in ("accepted", "duplicate", "rejected", "unavailable"):
        INGEST_SUBMISSIONS.labels(outcome)
    for trigger in Trigger:
        for level in Level:
            ALERTS_RAISED.labels(trigger.value, level.label)


_initialise_series()


def topic_label(topic: str) -> str:
    return topic if topic in ALL_TOPICS else OTHER_TOPIC


# ---- dead-letter reason classes ------------------------------------------------------------

_UNREADABLE_FIELDS = frozenset({"event", "marker", "body"})
_IDENTITY_FIELDS = frozenset({"personal_identity_number", "coordination_number"})


def dead_letter_reason(field: str, reason: str) -> str:
    """The reason class of one refusal, from the field it names and the reason given."""
    leaf = field.rsplit(".", 1)[-1]
    if field == "fingerprint":
        return "unknown_fingerprint" if "is not one Riskwatch knows" in reason else "malformed"
    if field in _UNREADABLE_FIELDS or reason.startswith("unknown field"):
        return "malformed"
    if field == "event_type" and ("not a known event type" in reason or "unknown event type" in reason):
        return "unknown_type"
    if field == "legal_basis":
        return "legal_basis"
    if leaf in _IDENTITY_FIELDS or "must be a pseudonym" in reason:
        return "identity_number"
    if reason in ("is missing", "missing"):
        return "missing_field"
    if reason.startswith("expected "):
        return "wrong_type"
    if field == "event_id" and "already accepted" in reason:
        return "conflict"
    return "invalid_value" if field else "other"


def dead_letter_reason_of_text(text: str) -> str:
    """The reason class of a refusal written as "field: reason" (the first one, if several)."""
    first = text.split("; ", 1)[0]
    field, separator, reason = first.partition(": ")
    if not separator or " " in field:
        return "other"
    return dead_letter_reason(field, reason)


# ---- recording, called by the stages -------------------------------------------------------

class Outcome(Protocol):
    """What the metrics read of one submission's outcome (services.ingest.gateway.Outcome)."""

    @property
    def status(self) -> str: ...
    @property
    def topic(self) -> str | None: ...
    @property
    def conflict(self) -> bool: ...
    @property
    def forbidden(self) -> bool: ...
    @property
    def errors(self) -> Sequence[FieldError]: ...


def record_ingest(outcomes: Sequence[Outcome], seconds: float) -> None:
    """One gateway submission batch: outcomes, records produced, dead letters by reason class."""
    BATCH_DURATION.labels("ingest").observe(seconds)
    for outcome in outcomes:
        INGEST_SUBMISSIONS.labels(outcome.status).inc()
        if outcome.status == "accepted" and outcome.topic is not None:
            EVENTS_OUT.labels(topic_label(outcome.topic)).inc()
        elif outcome.status == "rejected":
            if outcome.conflict:
                reason = "conflict"
            elif outcome.forbidden:
                reason = "forbidden"
            elif outcome.errors:
                reason = dead_letter_reason(outcome.errors[0].field, outcome.errors[0].reason)
            else:
                reason = "other"
            DEAD_LETTERS.labels("ingest", reason).inc()
            EVENTS_OUT.labels(DEADLETTER).inc()


def record_normalized(records: Sequence[Record], outcome: NormalizeOutcome, seconds: float) -> None:
    BATCH_DURATION.labels("normalize").observe(seconds)
    for topic, count in collections.Counter(record.topic for record in records).items():
        EVENTS_IN.labels(topic_label(topic)).inc(count)
    EVENTS_OUT.labels(SUBJECT_EVENTS).inc(outcome.forwarded)
    for reason in outcome.refused:
        DEAD_LETTERS.labels("normalize", dead_letter_reason_of_text(reason)).inc()
        EVENTS_OUT.labels(DEADLETTER).inc()
    for entry in outcome.quarantined:
        QUARANTINED.labels("normalize", entry.reason_class).inc()


@dataclass
class _Applied:
    """The newest ingest acceptance time (ms) this process's risk stage committed, for staleness."""

    newest_accepted_ms: int | None = None
    since: float = field(default_factory=time.time)


_applied = _Applied()


def record_risk_batch(batch: Sequence[Record], outcome: BatchOutcome, seconds: float,
                      now: float | None = None) -> None:
    """A committed risk batch: latencies from ingest acceptance, and alerts by trigger and level."""
    committed_at = time.time() if now is None else now
    BATCH_DURATION.labels("risk").observe(seconds)
    EVENTS_IN.labels(SUBJECT_EVENTS).inc(len(batch))
    for entry in outcome.quarantined:
        QUARANTINED.labels("risk", entry.reason_class).inc()
    for accepted_ms in outcome.accepted_ms.values():
        INGEST_TO_PROJECTION.observe(max(0.0, committed_at - accepted_ms / 1000))
    for alert in outcome.alerts:
        ALERTS_RAISED.labels(alert.trigger.value, alert.level_after.label).inc()
        alert_accepted_ms = outcome.accepted_ms.get(alert.causing_event_id)
        if alert_accepted_ms is not None:
            INGEST_TO_ALERT.observe(max(0.0, committed_at - alert_accepted_ms / 1000))
    if outcome.accepted_ms:
        newest = max(outcome.accepted_ms.values())
        _applied.newest_accepted_ms = max(newest, _applied.newest_accepted_ms or newest)


def record_relayed(messages: Sequence[OutboxMessage]) -> None:
    for topic, count in collections.Counter(message.topic for message in messages).items():
        EVENTS_OUT.labels(topic_label(topic)).inc(count)


def projection_staleness(lag: int, now: float) -> float:
    """0 when caught up; else how old the newest accepted event the projections reflect is."""
    if lag <= 0:
        return 0.0
    reflected = _applied.newest_accepted_ms / 1000 if _applied.newest_accepted_ms is not None else _applied.since
    return max(0.0, now - reflected)


# ---- the API's /metrics ----------------------------------------------------------------------

def add_metrics_route(app: FastAPI, token: str | None = None) -> None:
    """GET /metrics on the API's own port (a Mount would answer /metrics with a redirect).

    With a token (RISKWATCH_METRICS_TOKEN) only `Authorization: Bearer <token>` is answered,
    as Prometheus sends it with `authorization: {credentials: ...}` in its scrape config.
    """

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if token is not None and not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}"):
            return Response('{"detail": "authorization: send the metrics token as a bearer token"}', status_code=401,
                            media_type="application/json", headers={"WWW-Authenticate": "Bearer"})
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(REGISTRY), media_type=content_type)


def route_template(scope: Scope) -> str:
    """The matched route's path template, /v1 prefix included, with no parameter's value.

    A route of an included router knows only its own part of the path (/subjects/{pseudonym});
    the prefix is what the request path has before the part the route matched.
    """
    route = scope.get("route")
    path_format = getattr(route, "path_format", None)
    if not isinstance(path_format, str) or not path_format:
        return UNMATCHED_ROUTE
    try:
        matched: str = path_format.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return path_format
    path: str = scope.get("path", "")
    prefix = path[: -len(matched)] if matched and path.endswith(matched) else ""
    return prefix + path_format


class RequestMetrics:
    """ASGI middleware counting and timing every request by its route template, never its path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ["500"]  # what the client gets when the application fails before answering

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = route_template(scope)
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            HTTP_REQUESTS.labels(template, method, status[0]).inc()
            HTTP_REQUEST_DURATION.labels(template, method).observe(time.perf_counter() - started)


# ---- the worker: sampling and its HTTP server ------------------------------------------------

class OutboxCounts(Protocol):
    """What the sampler reads of the outbox (projections.ports.Outbox)."""

    async def backlog(self) -> OutboxBacklog: ...


class WorkerConnections(Protocol):
    """What the sampler needs from the worker's runtime (services.worker.WorkerRuntime)."""

    @property
    def outbox(self) -> OutboxCounts: ...
    @property
    def producer(self) -> AIOKafkaProducer: ...
    @property
    def stages(self) -> Sequence[Stage]: ...

    async def ready(self) -> object: ...


@dataclass
class WorkerHealth:
    """The latest sample, written by the worker's event loop and read by the HTTP thread."""

    interval: float
    checks: dict[str, str] = field(default_factory=lambda: {"database": "not checked yet",
                                                             "broker": "not checked yet",
                                                             "partitions": "not checked yet"})
    sampled_at: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        """The event loop still completes samples (a stuck loop stops updating `sampled_at`)."""
        return time.monotonic() - self.sampled_at < max(60.0, 6 * self.interval)

    @property
    def ready(self) -> bool:
        return self.alive and all(value == "ok" for value in self.checks.values())


class _WorkerHandler(MetricsHandler):
    health: WorkerHealth

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._answer(self.health.alive, {"status": "ok" if self.health.alive else "stalled"})
        elif path == "/readyz":
            self._answer(self.health.ready, {"ready": self.health.ready, **self.health.checks})
        elif path == "/metrics":
            super().do_GET()
        else:
            self.send_error(404)

    def _answer(self, good: bool, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(200 if good else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a scrape every few seconds would flood the worker's log."""


def start_worker_server(host: str, port: int, health: WorkerHealth) -> ThreadingHTTPServer:
    handler = type("WorkerHandler", (_WorkerHandler,), {"health": health})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="riskwatch-metrics", daemon=True).start()
    return server


def port_file(state_dir: Path, pid: int) -> Path:
    """Where a worker writes the port it serves /metrics on, for operators and tests."""
    return state_dir / "metrics" / f"worker-{pid}.port"


async def watch_worker(app: faust.App, runtime: WorkerConnections, settings: Settings) -> None:
    """Serve this worker's /metrics, /healthz and /readyz, and sample until the worker stops."""
    for gauge in WORKER_SERIES:
        REGISTRY.register(gauge)
    health = WorkerHealth(settings.metrics_interval_seconds)
    server = start_worker_server(settings.http_host, settings.metrics_port, health)
    written = port_file(settings.state_dir, os.getpid())
    written.parent.mkdir(parents=True, exist_ok=True)
    written.write_text(str(server.server_address[1]))
    sampler = _WorkerSampler(runtime, settings)
    try:
        while not app.should_stop:
            checks = await sampler.sample()
            if checks != health.checks and any(value != "ok" for value in checks.values()):
                log.warning("worker not ready: %s", ", ".join(f"{name} {value}" for name, value in checks.items()))
            health.checks = checks
            health.sampled_at = time.monotonic()
            await asyncio.sleep(settings.metrics_interval_seconds)
    finally:
        server.shutdown()
        written.unlink(missing_ok=True)
        await sampler.close()


class _WorkerSampler:
    def __init__(self, runtime: WorkerConnections, settings: Settings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.timeout = max(5.0, settings.metrics_interval_seconds)
        self.admin: AIOKafkaAdminClient | None = None
        self.lag_labels: set[tuple[str, str, str]] = set()

    async def sample(self) -> dict[str, str]:
        lag: dict[tuple[str, str, int], int] = {}
        try:
            # shielded: a slow start must go on for the stages waiting on it
            await asyncio.wait_for(asyncio.shield(self.runtime.ready()), self.timeout)
        except Exception as error:  # a sample reports trouble; it never ends the worker
            checks = {"database": _unreachable(error), "broker": _unreachable(error)}
        else:
            checks = {"database": await self._check(self._sample_outbox()),
                      "broker": await self._check(self.runtime.producer.client.fetch_all_metadata())}
            try:
                lag = await asyncio.wait_for(self._lag(), self.timeout)
            except Exception as error:
                checks["broker"] = _unreachable(error)
        self._publish_lag(lag)
        checks["partitions"] = "ok" if lag else "none assigned"
        PROJECTION_STALENESS.set(projection_staleness(sum(lag.values()), time.time()))
        WORKER_READY.set(1 if all(value == "ok" for value in checks.values()) else 0)
        return checks

    async def _check(self, probe: Any) -> str:
        try:
            await asyncio.wait_for(probe, self.timeout)
        except Exception as error:
            return _unreachable(error)
        return "ok"

    async def _sample_outbox(self) -> None:
        backlog = await self.runtime.outbox.backlog()
        OUTBOX_BACKLOG.set(backlog.messages)
        OUTBOX_OLDEST_AGE.set(backlog.oldest_seconds)

    async def _lag(self) -> dict[tuple[str, str, int], int]:
        """End offset minus committed offset for every partition assigned to this worker's stages, by group."""
        lag: dict[tuple[str, str, int], int] = {}
        for stage in self.runtime.stages:
            consumer = stage.consumer
            assigned = sorted(stage.assignment())
            if consumer is None or not assigned:
                continue
            if self.admin is None:
                admin = AIOKafkaAdminClient(**client_options(self.settings))
                await admin.start()
                self.admin = admin
            ends = await consumer.end_offsets(assigned)
            committed = await self.admin.list_consumer_group_offsets(stage.group_id, partitions=assigned)
            for tp in assigned:
                position = committed.get(tp)
                # -1: nothing committed yet; event topics are never truncated, so that is offset 0
                start = max(position.offset, 0) if position is not None else 0
                lag[(stage.group_id, tp.topic, tp.partition)] = max(0, ends[tp] - start)
        return lag

    def _publish_lag(self, lag: dict[tuple[str, str, int], int]) -> None:
        labels = {(group, topic_label(topic), str(partition)): value
                  for (group, topic, partition), value in lag.items()}
        for gone in self.lag_labels - labels.keys():
            CONSUMER_LAG.remove(*gone)
        for (group, topic, partition), value in labels.items():
            CONSUMER_LAG.labels(group, topic, partition).set(value)
        self.lag_labels = set(labels)
        ASSIGNED_PARTITIONS.set(len(labels))

    async def close(self) -> None:
        if self.admin is not None:
            await self.admin.close()


def _unreachable(error: BaseException) -> str:
    return f"unreachable: {type(error).__name__}"

