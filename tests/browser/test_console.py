"""The console as its users meet it, in Chromium, on the running stack: nothing from another host,
no WCAG 2.1 AA violation that axe-core finds, and the data exactly what the /v1 API says."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from services.api.auth import Role
from services.api.console import REGION_NAMES
from services.runtime.stack import Stack
from tests.support.api import client, released_high_risk_subject, user
from tests.browser.conftest import Console

pytestmark = pytest.mark.integration


async def test_an_unauthenticated_visit_is_refused(console: Console) -> None:
    page = console.page
    await page.goto(console.url("/console/queue"))
    await expect(page).to_have_url(re.compile(r"/console/\?reason="))
    await expect(page.locator("#reason")).to_have_text("Sign in to use the console.")
    await page.get_by_label("Bearer token").fill("rw_not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_contain_text("The token was refused")
    assert console.api_paths() == {"/v1/me"}, "no data was asked for without a valid token"
    await expect(page.locator("#nav")).to_be_hidden()
    await console.accessible("sign-in")
    # The check itself sees a fault: a field without a label.
    await page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    assert "label" in {violation["id"] for violation in await console.violations()}


async def test_an_analyst_sees_alerts_arrive_live_works_them_and_reads_why(stack: Stack, console: Console) -> None:
    token = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    page = console.page
    await console.sign_in(token)
    await expect(page).to_have_url(console.url("/console/queue"))
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    # the new ones on top, whatever the queue holds
    await page.locator("#filters select[name=sort]").select_option("newest")
    await page.evaluate("window.notReloaded = true")

    story = await released_high_risk_subject(stack)  # posted through the ingest gateway
    second = await released_high_risk_subject(stack)
    async with client(stack, token) as http:
        cases = (await http.get("/v1/cases", params={"limit": 500})).json()["cases"]
        view = (await http.get(f"/v1/subjects/{story.subject}")).json()
    first = next(case for case in cases if case["subject"] == story.subject)
    other = next(case for case in cases if case["subject"] == second.subject)
    assert first["alert_count"] >= 3, "the subject's alerts are one case"
    for case in (first, other):
        await expect(page.locator(f'#queue-rows tr[data-id="{case["case_id"]}"]')).to_be_visible()
    assert await page.evaluate("window.notReloaded") is True, "the cases came without a reload"
    await console.accessible("queue")

    row = page.locator(f'#queue-rows tr[data-id="{first["case_id"]}"]')
    await row.get_by_role("button", name=re.compile("^Acknowledge")).click()
    await expect(row.locator("td.status")).to_have_text("acknowledged")
    await page.locator(f'#queue-rows tr[data-id="{other["case_id"]}"] input[type=checkbox]').check()
    await page.get_by_role("button", name="Acknowledge selected").click()
    await expect(page.locator(f'#queue-rows tr[data-id="{other["case_id"]}"] td.status')).to_have_text(
        "acknowledged")
    async with client(stack, token) as http:
        after = (await http.get("/v1/alerts", params={"subject": story.subject})).json()["items"]
    assert {alert["status"] for alert in after} == {"acknowledged"}, "acknowledging the case acknowledges its alerts"

    await row.get_by_role("button", name=re.compile("^Assign")).click()
    await page.get_by_label("Assign to").fill("Insp. Åsa Öberg")
    await page.get_by_role("button", name="Confirm").click()
    await expect(row).to_contain_text("Insp. Åsa Öberg")
    await row.get_by_role("button", name=re.compile("^Close")).click()
    await page.get_by_role("textbox", name="Note").fill("Säkerhetsplan gjord med målsäganden")
    await page.get_by_role("button", name="Confirm").click()
    await expect(row.locator("td.status")).to_have_text("closed")
    async with client(stack, token) as http:
        steps = (await http.get(f"/v1/cases/{first['case_id']}")).json()["workflow"]
    assert [(step["action"], step.get("assignee"), step.get("note")) for step in steps][-3:] == [
        ("acknowledged", None, None), ("assigned", "Insp. Åsa Öberg", None),
        ("closed", None, "Säkerhetsplan gjord med målsäganden")]

    await row.get_by_role("link", name=story.subject).click()
    await expect(page.locator("#explanation")).to_have_text(view["explanation"])
    await expect(page.locator("#chart svg circle")).to_have_count(len(view["history"]))
    await expect(page.locator("#contribution-rows tr")).to_have_count(len(view["contributions"]))
    await expect(page.locator("#summary")).to_contain_text(f"{view['score']:.1f}")
    await page.get_by_label("Level", exact=True).select_option("moderate")
    await page.get_by_label("Reason").fill("risken bedöms lägre efter samtal med frivården")
    await page.get_by_role("button", name="Override").click()
    await expect(page.locator("#override-result")).to_contain_text("Override to moderate")
    await stack.wait_until_idle()
    await page.reload()
    await expect(page.locator("#summary")).to_contain_text("moderate by ")
    await page.get_by_label("Purpose").fill("threat assessment meeting")
    await page.get_by_role("button", name="Reveal identity").click()
    await expect(page.locator("#identity-result strong")).to_have_text(re.compile(r"\d{6}"))
    shown = re.sub(r"\D", "", await page.locator("#identity-result strong").inner_text())
    assert shown.endswith(re.sub(r"\D", "", story.person)[-10:])
    await console.accessible("subject")

    async with client(stack, token) as http:
        top = (await http.get("/v1/priority", params={"region": "stockholm", "limit": 1})).json()["items"][0]
    await page.get_by_role("link", name="Priority list").click()
    first_row = page.locator("#priority-rows tr").first.locator("td")
    await expect(first_row.nth(1)).to_have_text(top["subject"])
    for column, component in enumerate(("recency", "frequency", "gravity", "victims"), start=4):
        await expect(first_row.nth(column)).to_have_text(f"{top[component]:.2f}")
    await console.accessible("priority")


async def test_a_probation_officer_watches_the_caseloads_releases(stack: Stack, console: Console) -> None:
    story = await released_high_risk_subject(stack)
    token = await user(stack, Role.PROBATION_OFFICER, [story.caseload])
    page = console.page
    await console.sign_in_by_keyboard(token)
    await expect(page).to_have_url(console.url("/console/releases"))
    await page.get_by_label("As of (day, Swedish time)").fill("2026-04-20")  # ten days after the release
    await page.get_by_role("button", name="Show").click()
    recent = page.locator("#recent-rows tr", has=page.get_by_role("link", name=story.subject))
    await expect(recent).to_contain_text("release (conditional)")
    await expect(recent).to_contain_text(story.caseload)  # Swedish letters: "Kriminalvården Frivård …"
    await expect(page.get_by_role("link", name="Priority list")).to_be_hidden()
    await console.accessible("releases")
    await recent.get_by_role("link", name=story.subject).click()
    await expect(page.locator("#explanation")).not_to_be_empty()
    await expect(page.locator("#identity")).to_be_hidden()  # no identity reveal for probation


async def test_the_operator_page_shows_stream_health_and_no_personal_data(stack: Stack, console: Console) -> None:
    await released_high_risk_subject(stack)  # there is personal data to leak
    await console.sign_in(await user(stack, Role.OPERATOR))
    page = console.page
    await expect(page).to_have_url(console.url("/console/operations"))
    await expect(page.locator('#status dd[data-key="outbox_backlog"]')).to_have_text(re.compile(r"^\d+$"))
    await expect(page.locator("#ingest-rows")).to_contain_text("accepted")
    await expect(page.locator("#published-rows")).to_contain_text("agency.police.v1")
    await expect(page.locator("#lag-rows")).to_contain_text("riskwatch-risk")  # the risk stage's group
    await expect(page.locator("#alert-latency")).to_contain_text("Alerts in the last hour")
    text = await page.locator("body").inner_text()
    assert "ps_" not in text
    assert not [name for name in REGION_NAMES.values() if name in text]
    assert console.api_paths() == {"/v1/me", "/v1/operations/status", "/metrics"}
    await console.accessible("operations")
    await page.goto(console.url("/console/queue"))
    await expect(page.get_by_role("heading", name="Not for your role")).to_be_visible()
    assert "/v1/alerts" not in console.api_paths()


async def test_the_admin_reads_the_access_log_and_the_api_docs_work_offline(stack: Stack, console: Console) -> None:
    analyst = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    async with client(stack, analyst) as http:
        assert (await http.get("/v1/me")).status_code == 200
        name = (await http.get("/v1/me")).json()["name"]
        assert (await http.get("/v1/alerts", headers={"X-Purpose": "weekly MATAC meeting"})).status_code == 200
    page = console.page
    await console.sign_in(await user(stack, Role.ADMIN))
    await expect(page).to_have_url(console.url("/console/admin"))
    await page.get_by_label("User name").fill(name)
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#log-rows tr")).to_have_count(1)
    await expect(page.locator("#log-rows")).to_contain_text("weekly MATAC meeting")
    await console.accessible("admin")

    await page.goto(console.url("/docs"))
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Riskwatch")
    await expect(page.locator(".opblock").first).to_be_visible()
    await page.goto(console.url("/redoc"))
    await expect(page.locator("h1").first).to_contain_text("Riskwatch")
