"""Escalation of unacknowledged cases, with two API instances on a stack of its own (short timeout)."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.codec import decode_published
from services.api.auth import Role
from services.runtime.embedded import free_port, wait_for_port
from services.runtime.state import child_environment
from services.bootstrap import started_stack
from services.runtime.stack import Stack
from streams.topology import ALERT_WORKFLOW, ALERTS
from tests.support.api import client, database, read_topic, released_high_risk_subject, user
from tests.conftest import stack_settings
from tests.support.polling import until

pytestmark = pytest.mark.integration

ACK_TIMEOUT = 4.0
INTERVAL = 0.5


@pytest.fixture(scope="module")
def escalating_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose cases escalate after a few seconds, with a second API instance competing to escalate."""
    settings = stack_settings(tmp_path_factory.mktemp("escalation"), alert_ack_timeout_seconds=ACK_TIMEOUT,
                              escalation_interval_seconds=INTERVAL, live_poll_seconds=0.2)
    with started_stack(settings, workers=1) as stack:
        port = free_port(stack.settings.http_host)
        with Path(stack.logs / "api-2.log").open("ab") as log:
            second = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "--port", str(port)],
                                      env=child_environment(stack.settings), stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(stack.settings.http_host, port, timeout=60, process=second)
            yield stack
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=15)


async def test_an_unacknowledged_case_escalates_once_to_the_supervisors(escalating_stack: Stack) -> None:
    stack = escalating_stack
    story = await released_high_risk_subject(stack)
    analyst = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    supervisor = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"], supervisor=True)
    async with client(stack, analyst) as http:
        # acknowledging one alert on its own leaves the case open: the case is what escalates
        assert (await http.post(f"/v1/alerts/{story.release_alert}/acknowledge")).status_code == 200
    async with database(stack) as pool:
        originals = {row["alert_id"]: row for row in await pool.fetch(
            "SELECT alert_id::text, region, caseload, priority, status, case_id::text FROM alert "
            "WHERE subject = $1 AND paged", story.subject)}
    [case_id] = {row["case_id"] for row in originals.values()}
    assert case_id is not None and len(originals) >= 2, "the story's paged alerts are one case"
    # later rounds (two API instances) do not escalate the case again, nor its escalation: polled until the
    # escalation is itself overdue, by the database's clock (the one escalation reads), for two rounds more
    async with database(stack) as pool:
        await until(lambda: pool.fetchval("SELECT escalated FROM alert_case WHERE case_id = $1", case_id),
                    what="the case escalated", timeout=20)
        await until(lambda: pool.fetchval(
            "SELECT bool_and(created_at <= now() - $2::interval) FROM alert WHERE subject = $1 "
            "AND trigger = 'escalated'", story.subject, dt.timedelta(seconds=ACK_TIMEOUT + 2 * INTERVAL)),
            what="the escalation overdue itself", timeout=20)
    async with database(stack) as pool:
        case_steps = await pool.fetch("SELECT action, actor FROM case_workflow WHERE case_id = $1", case_id)
        escalations = await pool.fetch(
            "SELECT alert_id::text, escalated_from::text, region, caseload, priority, status, explanation "
            "FROM alert WHERE subject = $1 AND trigger = 'escalated'", story.subject)
    assert [(row["action"], row["actor"]) for row in case_steps] == [("escalated", "riskwatch")]
    [escalation] = escalations
    most_urgent = min(row["priority"] for alert_id, row in originals.items() if alert_id != story.release_alert)
    source = originals[escalation["escalated_from"]]
    assert source["priority"] == most_urgent and escalation["escalated_from"] != story.release_alert
    assert (escalation["region"], escalation["caseload"], escalation["priority"]) == (
        source["region"], source["caseload"], source["priority"])
    assert escalation["status"] == "open"
    assert escalation["explanation"].startswith("Not acknowledged within 4 seconds: ")

    async with client(stack, supervisor) as http:
        seen = (await http.get("/v1/alerts", params={"subject": story.subject, "trigger": "escalated"})).json()
        case = (await http.get(f"/v1/cases/{case_id}")).json()
    async with client(stack, analyst) as http:
        hidden = (await http.get("/v1/alerts", params={"subject": story.subject, "trigger": "escalated"})).json()
        refused = await http.get(f"/v1/alerts/{escalation['alert_id']}")
    assert [item["alert_id"] for item in seen["items"]] == [escalation["alert_id"]]
    assert case["escalated"] is True and case["status"] == "open"
    assert hidden["items"] == [] and refused.status_code == 403

    await stack.wait_until_idle()
    published = [decode_published(ALERTS, r.value) for r in await read_topic(stack, ALERTS)
                 if r.key == story.subject.encode()]
    assert [m["alert_id"] for m in published if m["trigger"] == "escalated"] == [escalation["alert_id"]]
    workflow = [decode_published(ALERT_WORKFLOW, r.value)
                for r in await read_topic(stack, ALERT_WORKFLOW) if r.key == story.subject.encode()]
    assert [m["alert_id"] for m in workflow if m["action"] == "escalated"] == [escalation["escalated_from"]]
