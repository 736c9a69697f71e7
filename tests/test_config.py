"""loupe.toml validation: every error names the file and key, with hints."""

from __future__ import annotations

import pytest

from loupe.config import load_settings
from loupe.errors import ConfigError
from loupe.scaffold import demo_toml, example_toml


def test_example_and_demo_configs_validate(tmp_path):
    (tmp_path / "loupe.toml").write_text(example_toml("x"))
    assert load_settings(tmp_path).sources == []
    (tmp_path / "loupe.toml").write_text(demo_toml("d"))
    s = load_settings(tmp_path)
    assert {x.name for x in s.sources} >= {"crm", "eshop_accounts", "pos_members", "web", "app"}
    assert s.source("web").target_table == "events"
    assert s.identity.source_priority[0] == "crm"


def test_misspelt_key_gets_a_hint_with_file_and_key(tmp_path):
    (tmp_path / "loupe.toml").write_text(
        '[warehouse]\nbackand = "duckdb"\n\n[[sources]]\nname = "crm"\nformat = "csv"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    text = str(err.value)
    assert "warehouse.backand" in text and "did you mean 'backend'" in text
    assert "sources['crm']" in text and "path" in text
    assert str(tmp_path / "loupe.toml") in text


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="loupe init"):
        load_settings(tmp_path)
    (tmp_path / "loupe.toml").write_text("[project\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path)


def test_duplicate_source_names_rejected(tmp_path):
    src = '[[sources]]\nname = "a"\nformat = "csv"\npath = "x.csv"\n'
    (tmp_path / "loupe.toml").write_text(src + src)
    with pytest.raises(ConfigError, match="repeated: a"):
        load_settings(tmp_path)
