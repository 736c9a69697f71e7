"""Portable parsing expressions, checked against Python's own datetime arithmetic."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import ibis
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from loupe.warehouse import functions as fn

CASES = {
    "2024-03-05 10:00:00": "2024-03-05 02:00:00",
    "2024-03-05T02:00:00Z": "2024-03-05 02:00:00",
    "2024-03-05T10:00:00+08:00": "2024-03-05 02:00:00",
    "2024-03-05T10:00:00.123+0800": "2024-03-05 02:00:00",
    "2024-03-04T21:00:00-05:00": "2024-03-05 02:00:00",
    "2024/3/5 10:00": "2024-03-05 02:00:00",
    "20240305 100000": "2024-03-05 02:00:00",
    "2024年3月5日 10:00": "2024-03-05 02:00:00",
    "2024-03-05": "2024-03-04 16:00:00",
    " 2024-03-05 10:00:00 ": "2024-03-05 02:00:00",
    "2024-13-45": None,
    "2024-02-30 10:00:00": None,
    "not a date": None,
    "": None,
}


def _run(wh, expr_fn, values):
    t = ibis.memtable({"s": pd.Series(values, dtype="string")})
    return list(wh.to_pandas(t.select(v=expr_fn(t.s)))["v"])


def test_parse_timestamp_forms(wh):
    got = _run(wh, lambda s: fn.parse_timestamp(s, "Asia/Shanghai", wh.backend), list(CASES))
    for raw, want, value in zip(CASES, CASES.values(), got, strict=True):
        if want is None:
            assert pd.isna(value), raw
        else:
            assert str(value) == want, raw


_WH: dict = {}


def _shared_wh(factory):
    """One warehouse for all Hypothesis examples (a fixture would be rebuilt per example)."""
    from loupe.warehouse import Warehouse
    from tests.conftest import make_settings

    if "wh" not in _WH:
        _WH["wh"] = Warehouse.open(make_settings(factory.mktemp("fnwh")))
    return _WH["wh"]


def _utc(local: datetime, zone: str, fold: int) -> datetime:
    aware = local.replace(tzinfo=ZoneInfo(zone), fold=fold)
    return aware.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@settings(max_examples=30, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.sampled_from(["America/New_York", "Europe/Berlin", "Asia/Shanghai", "UTC"]),
)
def test_naive_local_time_matches_zoneinfo(tmp_path_factory, local, zone):
    wh = _shared_wh(tmp_path_factory)
    got = _run(wh, lambda s: fn.parse_timestamp(s, zone, wh.backend), [local.isoformat(" ")])[0]
    if _utc(local, zone, 0) == _utc(local, zone, 1):  # skip DST gaps and overlaps
        assert pd.Timestamp(got).to_pydatetime() == _utc(local, zone, 0)


def test_numbers_bools_and_json(wh):
    assert _run(wh, fn.parse_number, ["1,234.5", "¥12", " -3 ", "x", ""])[:3] == [
        1234.5,
        12.0,
        -3.0,
    ]
    assert all(pd.isna(v) for v in _run(wh, fn.parse_number, ["x", ""]))
    assert _run(wh, fn.parse_bool, ["TRUE", "no", "是", "maybe"])[:3] == [True, False, True]
    docs = ['{"a": {"b": 1}}', '{"a":', "[]"]
    assert _run(wh, lambda s: fn.json_valid(s, wh.backend), docs) == [True, False, True]
    t = ibis.memtable({"s": docs[:1]})
    assert wh.to_pandas(t.select(v=fn.json_get(t.s, "$.a.b", wh.backend)))["v"][0] == "1"


def test_row_hash_distinguishes_null_from_text(wh):
    t = ibis.memtable(
        {
            "a": pd.Series(["x", None, "x"], dtype="string"),
            "b": pd.Series(["y", "y", "y"], dtype="string"),
        }
    )
    hashes = list(wh.to_pandas(t.select(h=fn.row_hash([t.a, t.b])))["h"])
    assert hashes[0] == hashes[2] != hashes[1]
