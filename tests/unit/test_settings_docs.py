"""Every setting is documented: docs/operations.md holds the table generated from services/runtime/settings.py."""

from __future__ import annotations

from pathlib import Path

from services.runtime.settings import Settings, settings_table

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_the_settings_table_in_the_docs_matches_the_code() -> None:
    text = OPERATIONS.read_text()
    begin, end = "<!-- settings table: python -m services.runtime.settings -->\n", "<!-- end of settings table -->"
    assert begin in text and end in text
    documented = text.split(begin, 1)[1].split(end, 1)[0]
    assert documented == settings_table(), "regenerate it: python -m services.runtime.settings"
    for name in Settings.model_fields:
        assert f"`RISKWATCH_{name.upper()}`" in documented


def test_every_setting_says_what_it_means() -> None:
    assert [name for name, info in Settings.model_fields.items() if not info.description] == []
