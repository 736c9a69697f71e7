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


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("latin-9000", "unknown text encoding 'latin-9000'"),
        ("base64", "unknown text encoding 'base64'"),  # a codec, but bytes to bytes
        ("utf-16", "'utf-16' files cannot be read line by line"),
        ("utf-32-le", "'utf-32-le' files cannot be read line by line"),
        ("cp500", "'cp500' files cannot be read line by line"),  # EBCDIC: a line break is 0x25
    ],
)
def test_a_source_encoding_that_cannot_be_read_is_a_config_error(tmp_path, encoding, message):
    """Files are split into lines on the byte \\n before they are decoded.  Until
    2026-12-07 an unknown encoding on a JSONL or Segment source was a LookupError traceback
    from the reader thread, and a UTF-16 CSV file's header was misread."""
    (tmp_path / "loupe.toml").write_text(
        f'[[sources]]\nname = "web"\nformat = "segment"\npath = "e.jsonl"\nencoding = "{encoding}"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert "sources['web'].encoding" in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf-8-sig", "ascii", "gbk", "GB18030"])
def test_text_encodings_split_on_line_breaks_are_accepted(tmp_path, encoding):
    (tmp_path / "loupe.toml").write_text(
        f'[[sources]]\nname = "web"\nformat = "segment"\npath = "e.jsonl"\nencoding = "{encoding}"\n'
    )
    assert load_settings(tmp_path).source("web").encoding == encoding


_CSV = '[[sources]]\nname = "crm"\ntable = "contacts"\nformat = "csv"\npath = "c.csv"\n'


@pytest.mark.parametrize(
    ("toml", "key", "message"),
    [
        (_CSV + 'delimiter = ";;"\n', "sources['crm'].delimiter", "a delimiter is one character"),
        (_CSV + "delimiter = '\"'\n", "sources['crm'].delimiter", "other than a quote"),
        (
            _CSV + 'timezone = "asia/shanghai"\n',
            "sources['crm'].timezone",
            "unknown time zone 'asia/shanghai' (did you mean 'Asia/Shanghai'?)",
        ),
        ('[project]\ntimezone = "Asia"\n', "project.timezone", "unknown time zone 'Asia'"),
        ('[project]\ntimezone = "GMT+8"\n', "project.timezone", "use an IANA name"),
        ('[warehouse]\nmemory_limit = "lots"\n', "warehouse.memory_limit", "'lots' is not a size"),
        ('[warehouse]\nmemory_limit = "4"\n', "warehouse.memory_limit", "'4' is not a size"),
        ("[warehouse]\nthreads = -1\n", "warehouse.threads", "greater than or equal to 0"),
        ('[project]\ndefault_region = "XX"\n', "project.default_region", "no region 'XX'"),
        ("[currency_rates]\nUSD = -7.1\n", "currency_rates", "got USD = -7.1"),
        ("[identity]\nmatch_threshold = 1.5\n", "identity.match_threshold", "less than or equal"),
        (
            "[identity]\nmax_records_per_identifier = { emial = 5 }\n",
            "identity.max_records_per_identifier",
            "unknown identifier type(s) 'emial'",
        ),
        (
            "[identity]\nmax_records_per_identifier = { phone = 0 }\n",
            "identity.max_records_per_identifier",
            "got phone = 0",
        ),
        ("[quality]\noutlier_threshold = 0\n", "quality.outlier_threshold", "greater than 0"),
    ],
)
def test_settings_the_engines_would_refuse_are_config_errors(tmp_path, toml, key, message):
    """Until 2026-12-07 these were accepted.  Some then reached DuckDB, PyArrow or the csv
    module and ended in a traceback at the first ingest (a delimiter of two characters, a time
    zone DuckDB does not know, a memory limit without a unit, a negative thread count); the
    others gave wrong results without a word (an unknown phone region made every local number
    invalid, a negative rate negative amounts, a threshold above 1 no probabilistic links, a
    misspelt identifier type no limit)."""
    (tmp_path / "loupe.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert key in str(err.value)
    assert message in str(err.value)


def test_sizes_and_zones_the_engines_read_are_accepted(tmp_path):
    for limit in ("4GB", "512 MiB", "1.5gb", "80%", "2 gigabytes"):
        (tmp_path / "loupe.toml").write_text(
            '[project]\ntimezone = "Europe/Berlin"\n'
            f'[warehouse]\nmemory_limit = "{limit}"\nthreads = 0\n'
            + _CSV
            + 'timezone = "UTC"\ndelimiter = "\\t"\n'
        )
        s = load_settings(tmp_path)
        assert (s.warehouse.memory_limit, s.project.timezone) == (limit, "Europe/Berlin")
        assert s.project.default_region == "CN"
        assert (s.source("crm").timezone, s.source("crm").delimiter) == ("UTC", "\t")
    (tmp_path / "loupe.toml").write_text('[project]\ndefault_region = "hk"\ntimezone = "utc"\n')
    project = load_settings(tmp_path).project
    assert (project.default_region, project.timezone) == ("HK", "UTC")
