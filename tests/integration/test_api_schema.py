"""Property-based requests generated from the API's own OpenAPI schema: none may end in a server error,
every answer must match the schema documented for its status, and every refusal is problem details.

Derandomised: the same cases on every run, so the suite cannot fail at random. `make fuzz` runs
many more (RISKWATCH_FUZZ_EXAMPLES per operation, role and kind of path) and prints the answers
counted by status."""

from __future__ import annotations

import asyncio
import collections
import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.api.auth import Role
from services.runtime.stack import Stack
from tests.support.api import released_high_risk_subject, user

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("RISKWATCH_FUZZ_EXAMPLES", "5"))  # per operation, role and kind of path
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "errors"}
statuses: collections.Counter[int] = collections.Counter()


@schemathesis.check
def problem_details(ctx: Any, response: Any, case: schemathesis.Case[Any]) -> bool:
    """Every 4xx and 5xx answer is RFC 9457 problem details naming its status."""
    statuses[response.status_code] += 1
    if response.status_code < 400:
        return True
    assert response.headers.get("content-type", [""])[0].startswith("application/problem+json"), response.headers
    document = response.json()
    assert set(document) >= PROBLEM_MEMBERS and document["status"] == response.status_code, document
    assert all(set(error) == {"field", "reason"} for error in document["errors"]), document
    return True


def test_generated_requests_cause_no_server_error(stack: Stack) -> None:
    async def world() -> tuple[dict[str, str], dict[str, str]]:
        story = await released_high_risk_subject(stack)
        tokens = {"admin": await user(stack, Role.ADMIN),
                  "analyst": await user(stack, Role.INTELLIGENCE_ANALYST, ["national"])}
        return tokens, {"alert_id": story.release_alert, "pseudonym": story.subject}

    tokens, known = asyncio.run(world())
    # The live feeds never end by themselves; their requests are covered by the alert and case tests.
    schema = (schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
              .exclude(path="/v1/alerts/live").exclude(path="/v1/cases/live"))
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    sessions = [requests.Session() for _ in tokens]
    for session, token in zip(sessions, tokens.values(), strict=True):
        session.headers["Authorization"] = f"Bearer {token}"
    assert len(operations) >= 15
    for operation in operations:
        # Generated identifiers mostly find nothing; known ones take the requests on to the data.
        existing = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
        strategies = [operation.as_strategy()] + ([operation.as_strategy(path_parameters=existing)] if existing else [])
        for session in sessions:
            for strategy in strategies:
                _explore(stack, strategy, session)
    print(f"\nAPI fuzz: {sum(statuses.values())} requests, by status: {dict(sorted(statuses.items()))}")


def _explore(stack: Stack, strategy: SearchStrategy[schemathesis.Case[Any]], session: requests.Session) -> None:
    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def answered_as_documented(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=stack.api_url, session=session,
                               checks=[not_a_server_error, response_schema_conformance, problem_details], timeout=30)

    answered_as_documented()
