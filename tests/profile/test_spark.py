"""The profile stage and a segment give the same results on PySpark as on DuckDB."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from loupe.profile import build_profile
from loupe.segments import compute_members, current_members
from loupe.segments.settings import SegmentSettings
from loupe.warehouse import Warehouse
from tests.conftest import make_settings
from tests.profile.shop import load_into, make_shop

SEGMENT = SegmentSettings(
    name="s", expr='frequency >= 2 and (has_tag("熬夜党") or count(orders, 365d) >= 3)'
)


def run(root, backend: str):
    settings = make_settings(root, warehouse={"backend": backend})
    wh = Warehouse.open(settings)
    load_into(wh, make_shop(seed=4, customers=40, orders=300, events=400))
    report = build_profile(wh, date(2025, 12, 1))
    compute_members(wh, [SEGMENT])
    features = wh.to_pandas(wh.table("customer_features")).sort_values("customer_id")
    members = sorted(wh.to_pandas(current_members(wh, ["s"]))["customer_id"])
    tags = wh.to_pandas(wh.table("customer_tags").select("customer_id", "tag", "value"))
    wh.close()
    return report, features.reset_index(drop=True), members, tags


@pytest.mark.spark
@pytest.mark.slow
def test_pyspark_gives_the_same_profile(tmp_path):
    duck = run(tmp_path / "duck", "duckdb")
    spark = run(tmp_path / "spark", "pyspark")
    assert duck[0].features.lifecycle == spark[0].features.lifecycle
    assert duck[0].tags.tags == spark[0].tags.tags
    f1, f2 = duck[1], spark[1]
    assert list(f1.columns) == list(f2.columns)
    for col in f1.columns:
        a, b = f1[col], f2[col]
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            pd.testing.assert_series_equal(
                a.astype("float64"), b.astype("float64"), check_names=False, rtol=1e-9
            )
        else:
            assert list(a.astype(str)) == list(b.astype(str)), col
    assert duck[2] == spark[2]
    key = ["customer_id", "tag", "value"]
    assert duck[3].sort_values(key).values.tolist() == spark[3].sort_values(key).values.tolist()
