"""The policy file: the shipped one loads with its version; malformed ones are refused by key and reason."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from projections.events import DAY_MS, HOUR_MS
from projections.levels import Level
from projections.policy import PolicyError, default_policy, load_policy, parse_policy


def shipped_document() -> dict[str, Any]:
    return tomllib.loads(resources.files("projections").joinpath("policies", "2026.2.toml").read_text(encoding="utf-8"))


def test_default_policy_carries_the_domain_starting_values() -> None:
    policy = default_policy()
    assert policy.version == "2026.2"
    assert policy.horizon_ms == 1825 * DAY_MS
    assert policy.half_life_ms == 180 * DAY_MS
    assert policy.offence_gravity["murder"] == policy.offence_gravity["attempted_murder"] == 10
    assert policy.offence_gravity["stalking"] > policy.offence_gravity["assault"] > policy.offence_gravity["harassment"]
    assert policy.review_ms[Level.EXTREME] == 72 * HOUR_MS
    assert policy.review_ms[Level.HIGH] == 7 * 24 * HOUR_MS
    assert policy.review_ms[Level.LOW] == 60 * 24 * HOUR_MS
    factors = {multiplier.name: multiplier.factor for multiplier in policy.multipliers}
    assert factors["strangulation"] == factors["firearm_access"] == 2.0
    assert factors["separation"] == factors["suicide_threat"] == 1.8
    windows = {multiplier.name: multiplier.window_ms for multiplier in policy.multipliers}
    assert windows["release"] == 30 * DAY_MS
    assert windows["strangulation"] is None
    assert policy.red_flag_window_ms == 30 * DAY_MS
    assert policy.level_for(0) == Level.LOW
    assert policy.level_for(policy.thresholds[Level.HIGH]) == Level.HIGH


def test_load_policy_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "2026.2.toml"
    path.write_text(
        resources.files("projections").joinpath("policies", "2026.2.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    assert load_policy(path) == default_policy()


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('version = "2026.2\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML") as refused:
        load_policy(path)
    assert str(path) in str(refused.value)


def _without(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    table = document
    for key in keys[:-1]:
        table = table[key]
    del table[keys[-1]]
    return document


def _with(document: dict[str, Any], value: Any, *keys: str) -> dict[str, Any]:
    table = document
    for key in keys[:-1]:
        table = table[key]
    table[keys[-1]] = value
    return document


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda d: _without(d, "version"), "version", "missing"),
        (lambda d: _with(d, "", "version"), "version", "must not be empty"),
        (lambda d: _without(d, "gravity", "offence", "stalking"), "gravity.offence.stalking", "missing"),
        (lambda d: _with(d, 5, "gravity", "offence", "stalkng"), "gravity.offence.stalkng", "unknown key"),
        (lambda d: _with(d, "ten", "gravity", "offence", "murder"), "gravity.offence.murder", "must be a number"),
        (lambda d: _with(d, True, "gravity", "offence", "murder"), "gravity.offence.murder", "must be a number"),
        (lambda d: _with(d, -1, "gravity", "offence", "assault"), "gravity.offence.assault", "at least 0"),
        (
            lambda d: _with(d, 0.5, "multipliers", "marker", "separation", "factor"),
            "multipliers.marker.separation.factor",
            "at least 1",
        ),
        (
            lambda d: _with(d, ["choking"], "multipliers", "marker", "strangulation", "markers"),
            "multipliers.marker.strangulation.markers",
            "unknown marker",
        ),
        (lambda d: _with(d, 1.2, "escalation", "weight"), "escalation.weight", "at most 1"),
        (lambda d: _with(d, 40.0, "levels", "high"), "levels", "rise strictly"),
        (lambda d: _with(d, 0, "time", "half_life_days"), "time.half_life_days", "positive"),
        (lambda d: _with(d, 3650, "time", "horizon_days"), "time.horizon_days", "at most"),
        (
            lambda d: _with(d, 1.5, "gravity", "offence_share", "police.arrest"),
            "gravity.offence_share.police.arrest",
            "at most 1",
        ),
        (lambda d: _with(d, 3, "gravity", "event", "em_alarm"), "gravity.event.em_alarm", "event type"),
        (lambda d: _with(d, ["burglary"], "alerts", "violent_offences"), "alerts.violent_offences", "unknown offence"),
        (lambda d: _with(d, {"markers": ["strangulation"]}, "gravity", "floor"), "gravity.floor", "array of tables"),
        (lambda d: _with(d, {}, "review_hours"), "review_hours.low", "missing"),
        (lambda d: _with(d, 1, "extra"), "extra", "unknown key"),
    ],
)
def test_malformed_policy_is_refused_with_key_and_reason(change: Any, key: str, reason: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(change(shipped_document()), source="test.toml")
    assert refused.value.key == key
    assert reason in refused.value.reason
    assert str(refused.value).startswith(f"test.toml: {key}: ")


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda d: _with(d, [1], "multipliers", "marker", "firearm_access", "ended_by"),
         "multipliers.marker.firearm_access.ended_by[0]",
         "must be an event type like 'police.weapons_licence_revoked'"),
        (lambda d: _with(d, [7], "gravity", "floor"), "gravity.floor[0]", "must be a table"),
        (lambda d: _with(d, [{"markers": [], "gravity": 2}], "gravity", "floor"), "gravity.floor[0].markers",
         "must name at least one marker"),
        (lambda d: _with(d, "severe", "alerts", "page_from_level"), "alerts.page_from_level",
         "must be one of low, moderate, high, extreme"),
        (lambda d: _with(d, 2, "alerts", "page_from_level"), "alerts.page_from_level", "must be a string"),
        (lambda d: _with(d, 1.5, "time", "half_life_days"), "time.half_life_days", "must be a whole number"),
        (lambda d: _with(d, True, "time", "half_life_days"), "time.half_life_days", "must be a whole number"),
        (lambda d: _with(d, 3, "frequency"), "frequency", "must be a table"),
        (lambda d: _with(d, {"valid_days": 0}, "structured_assessment"), "structured_assessment.valid_days",
         "must be a positive whole number"),
        (lambda d: _with(d, {"from_level": "high", "often": 1}, "reviews"), "reviews.often",
         "unknown key; expected one of from_level, overdue_hours"),
    ],
)
def test_every_entry_is_refused_by_its_full_key(change: Any, key: str, reason: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(change(shipped_document()), source="test.toml")
    assert (refused.value.key, refused.value.reason) == (key, reason)


def test_optional_tables_and_entries_take_their_defaults() -> None:
    document = shipped_document()
    for table in ("reviews", "structured_assessment"):
        document.pop(table, None)
    for key in ("paging_window_hours", "page_from_level", "level_rose_from"):
        document["alerts"].pop(key, None)
    policy = parse_policy(document)
    assert (policy.paging_window_ms, policy.page_from_level, policy.level_rose_from) == (
        72 * HOUR_MS, Level.LOW, Level.MODERATE)
    assert (policy.review_from_level, policy.review_overdue_ms, policy.assessment_valid_ms) == (
        Level.HIGH, 24 * HOUR_MS, None)
