"""Protected victims: a region or unit recorded with a protected victim is shown nowhere.

The subject view, the priority list and the release watch apply the alerts' rule
(projections/alerts.py, the audience): such a region is never the subject's; a subject with
no other region is seen only in national scope, under the region `national` of the priority
list; a caseload recorded with a protected victim is no caseload of the subject's.
"""

from __future__ import annotations

import pytest

from services.api.auth import NATIONAL, Role
from services.runtime.stack import Stack
from tests.support.api import alias, client, database, ingest, unique_unit, user
from tests.support.scenario import at, event, new_person

pytestmark = pytest.mark.integration


async def test_a_subject_known_only_with_a_protected_victim_is_seen_in_national_scope_only(stack: Stack) -> None:
    person, victim, caseload = new_person(), new_person(), unique_unit()
    await ingest(
        stack,
        event("police.crime_report", person, at(1), {"offence": "aggravated_assault", "strangulation": True,
                                                     "threat_to_kill": True}, victims=[victim], protected=True),
        event("prison_probation.released", person, at(20), {"release_kind": "conditional"}, victims=[victim],
              protected=True, unit=caseload),
    )
    subject = alias(stack, person)
    async with database(stack) as pool:
        projection = await pool.fetchrow("SELECT region, caseload FROM risk_projection WHERE subject = $1", subject)
        alert_regions = {row["region"] for row in await pool.fetch("SELECT region FROM alert WHERE subject = $1",
                                                                      subject)}
    assert (projection["region"], projection["caseload"]) == (None, None)
    assert alert_regions == {None}, "the alerts name no region either"

    stockholm = await user(stack, Role.INTELLIGENCE_ANALYST, ["stockholm"])
    national = await user(stack, Role.INTELLIGENCE_ANALYST, [NATIONAL])
    officer = await user(stack, Role.PROBATION_OFFICER, [caseload])
    async with client(stack, stockholm) as http:
        assert (await http.get(f"/v1/subjects/{subject}")).status_code == 403
        listed = (await http.get("/v1/priority", params={"region": "stockholm", "limit": 500})).json()
        assert subject not in {item["subject"] for item in listed["items"]}
        assert (await http.get("/v1/priority", params={"region": NATIONAL})).status_code == 403
    async with client(stack, national) as http:
        view = await http.get(f"/v1/subjects/{subject}")
        assert view.status_code == 200 and view.json()["region"] is None and view.json()["caseload"] is None
        assert "stockholm" not in view.text and caseload not in view.text
        listed = (await http.get("/v1/priority", params={"region": NATIONAL, "limit": 500})).json()
        assert subject in {item["subject"] for item in listed["items"]}
    async with client(stack, officer) as http:
        watch = (await http.get("/v1/releases", params={"as_of": "2026-03-25"})).json()
        assert subject not in {item["subject"] for item in watch["upcoming"] + watch["recent"]}
        assert (await http.get(f"/v1/subjects/{subject}")).status_code == 403


async def test_the_region_and_caseload_shown_are_those_recorded_without_a_protected_victim(stack: Stack) -> None:
    person, victim, other_victim = new_person(), new_person(), new_person()
    caseload, protected_unit = unique_unit(), unique_unit()
    await ingest(
        stack,
        event("police.crime_report", person, at(1), {"offence": "unlawful_threat"}, victims=[other_victim],
              region="vast"),
        event("prison_probation.custody_started", person, at(2), {"facility": "Anstalten Hall"}, unit=caseload,
              region="vast"),
        event("police.crime_report", person, at(5), {"offence": "aggravated_assault", "strangulation": True},
              victims=[victim], protected=True, region="stockholm"),
        event("prison_probation.released", person, at(20), {"release_kind": "conditional"}, victims=[victim],
              protected=True, unit=protected_unit, region="stockholm"),
    )
    subject = alias(stack, person)
    national = await user(stack, Role.INTELLIGENCE_ANALYST, [NATIONAL])
    async with client(stack, national) as http:
        view = (await http.get(f"/v1/subjects/{subject}")).json()
    assert (view["region"], view["caseload"]) == ("vast", caseload)
    assert protected_unit not in str(view)
    vast = await user(stack, Role.INTELLIGENCE_ANALYST, ["vast"])
    async with client(stack, vast) as http:
        assert (await http.get(f"/v1/subjects/{subject}")).status_code == 200
        listed = (await http.get("/v1/priority", params={"region": "vast", "limit": 500})).json()
        assert subject in {item["subject"] for item in listed["items"]}
    officer = await user(stack, Role.PROBATION_OFFICER, [protected_unit])
    async with client(stack, officer) as http:
        watch = (await http.get("/v1/releases", params={"as_of": "2026-03-25"})).json()
        assert subject not in {item["subject"] for item in watch["upcoming"] + watch["recent"]}
