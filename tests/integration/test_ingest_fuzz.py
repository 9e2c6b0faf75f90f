"""Generated ingest input against the running gateway: never a server error, every refusal in the
dead letters, every acceptance canonical on its topic.

Derandomised (the same cases every run); RISKWATCH_FUZZ_EXAMPLES scales it up for `make fuzz`,
which prints the counts by status.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import decode_event
from schemas.rules import MULTILINE_TEXT, PAYLOAD_TEXT_MAX, TEXT_MAX
from schemas.text import free_text_fault
from services.runtime.stack import Stack
from streams.topology import AGENCY_TOPICS
from tests.support.api import agency_token, client, database, read_topic
from tests.support.scenario import at, event, new_person

pytestmark = pytest.mark.integration

BATCH = 20  # cases per request (JSON Lines); a tenth of them are also sent alone as application/json
EXAMPLES = int(os.environ.get("RISKWATCH_FUZZ_EXAMPLES", "100"))  # 100 x 20 = 2,000 cases in the suite
NASTY_TEXT = ["a\x00b", "\ud800", "\udfff x", "\x1b[31m", "tab\there", "x" * 5000, "19850312-0001",
              "１９８５０３１２－０００１", "٨٥٠٣١٢٠٠٠١", "Malmo\u0308", "\ufeff", "\u202e", ""]
NASTY_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "２０２６-03-01T08:15:00+01:00",
               "2026-02-30T10:00:00Z", "2026-03-01T08:15:00", "2026-03-01 08:15:00+01:00"]
FIELDS = ["unit", "region", "event_time", "recorded_time", "event_id", "agency", "event_type", "legal_basis",
          "subject", "related_persons", "payload", "payload.offence", "payload.offence_code",
          "payload.strangulation", "payload.extra"]
nasty_value = st.one_of(
    st.sampled_from(NASTY_TEXT), st.sampled_from(NASTY_TIMES), st.text(max_size=30),
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
statuses: collections.Counter[str] = collections.Counter()


@st.composite
def ingest_case(draw: st.DrawFn) -> bytes:
    """One line of input: a valid crime report, with a field set to something nasty or its bytes damaged.

    Event ids are fresh: generated ids repeat, and a repeated id is a conflict, not a case."""
    document = event("police.crime_report", new_person(), at(draw(st.integers(0, 200))),
                     {"offence": "assault"}, victims=[new_person()], event_id=str(uuid.uuid4()))
    how = draw(st.sampled_from(["valid", "field", "field", "field", "bytes", "encoding", "nesting", "number"]))
    if how == "field":
        target, _, leaf = draw(st.sampled_from(FIELDS)).partition(".")
        if leaf:
            document["payload"][leaf] = draw(nasty_value)
        else:
            document[target] = draw(nasty_value)
    raw = json.dumps(document).encode()
    if how == "bytes":
        position = draw(st.integers(0, len(raw) - 1))
        splice = draw(st.binary(min_size=1, max_size=4).filter(lambda b: b"\n" not in b and b"\r" not in b))
        raw = raw[:position] + splice + raw[position + 1:]
    elif how == "encoding":
        raw = json.dumps(document).encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1"])))
        raw = raw.replace(b"\n", b" ").replace(b"\r", b" ")
    elif how == "nesting":
        depth = draw(st.integers(5, 3000))
        raw = raw.replace(b'"assault"', b"[" * depth + b"]" * depth)
    elif how == "number":
        raw = raw.replace(b'"assault"', b"9" * draw(st.integers(19, 5000)))
    return raw


async def _post(stack: Stack, lines: list[bytes]) -> tuple[int, list[dict[str, Any]]]:
    # a police client of the generated reports' unit: a report it may not send is refused (403) and kept too
    async with client(stack, await agency_token(stack, "police", ["Polisen Region Stockholm"])) as http:
        answer = await http.post("/v1/events", content=b"\n".join(lines),
                                 headers={"content-type": "application/x-ndjson"})
        single = await http.post("/v1/events", content=lines[0], headers={"content-type": "application/json"})
    for status in (answer.status_code, single.status_code):
        assert status < 500, answer.text
        statuses[str(status)] += 1
    return answer.status_code, answer.json()["results"]


def test_generated_ingest_input_is_refused_into_the_dead_letters_or_accepted_canonical(stack: Stack) -> None:
    loop = asyncio.new_event_loop()
    accepted: set[str] = set()
    refused: list[bytes] = []

    @given(lines=st.lists(ingest_case(), min_size=BATCH, max_size=BATCH))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def answered(lines: list[bytes]) -> None:
        lines = [line for line in lines if line.strip()]
        _, results = loop.run_until_complete(_post(stack, lines))
        assert len(results) == len(lines)
        for line, result in zip(lines, results, strict=True):
            statuses[f"line {result['status']}"] += 1
            if result["status"] == "accepted":
                accepted.add(result["event_id"])
            elif result["status"] == "rejected":
                refused.append(line)

    try:
        answered()
        loop.run_until_complete(_check(stack, accepted, refused))
    finally:
        loop.close()
        print(f"\ningest fuzz: {sum(v for k, v in statuses.items() if k.startswith('line'))} cases, "
              f"by status: {dict(sorted(statuses.items()))}")
    assert accepted and refused, "the cases reach both sides of the boundary"


async def _check(stack: Stack, accepted: set[str], refused: list[bytes]) -> None:
    async with database(stack) as pool:
        kept = await pool.fetchval("SELECT count(DISTINCT original) FROM dead_letter WHERE original = ANY($1::bytea[])",
                                   list(set(refused)))
    assert kept == len(set(refused)), "every refused input is in the dead letters"
    seen = 0
    for record in await read_topic(stack, AGENCY_TOPICS["police"]):
        decoded = decode_event(record.value)
        if decoded.record["event_id"] not in accepted:
            continue
        seen += 1
        for path, text in _texts(decoded.record):
            limit = TEXT_MAX.get(path, PAYLOAD_TEXT_MAX if path.startswith("payload.") else 200)
            assert free_text_fault(text, max_length=limit, multiline=path in MULTILINE_TEXT) is None, (path, text)
        assert decoded.record["subject"]["kind"] == "pseudonym"
    assert seen >= len(accepted), "every accepted event is on its topic"


def _texts(record: dict[str, Any]) -> list[tuple[str, str]]:
    texts = [("unit", record["unit"])]
    texts += [(f"payload.{name}", value) for name, value in record["payload"].items() if isinstance(value, str)]
    return texts
