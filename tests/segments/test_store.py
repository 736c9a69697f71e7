"""Segment sizes against direct pandas computation; saving, refreshing, overlap, export."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from loupe.errors import LoupeError, NotFoundError
from loupe.expr import ExprError
from loupe.segments import (
    compute_members,
    create_segment,
    current_members,
    export_members,
    list_segments,
    overlap,
    preview,
    show_segment,
)
from loupe.segments.settings import SegmentSettings
from loupe.segments.store import dependency_order


def frame(wh):
    f = wh.to_pandas(wh.table("customer_features"))
    c = wh.to_pandas(wh.table("customers"))[["customer_id", "city", "email"]]
    return f.merge(c, on="customer_id", how="left")


def tags(wh, name):
    t = wh.to_pandas(wh.table("customer_tags"))
    latest = t[t.tag == name]
    latest = latest[latest.computed_at == latest.computed_at.max()]
    return set(latest.customer_id)


CASES = {
    "orders_90d >= 2": lambda f, wh: f.orders_90d >= 2,
    'city == "上海" and frequency > 3': lambda f, wh: (f.city == "上海") & (f.frequency > 3),
    'rfm_group in ("At Risk", "Hibernating", "Lost")': lambda f, wh: f.rfm_group.isin(
        ["At Risk", "Hibernating", "Lost"]
    ),
    "not (discount_share >= 0.3)": lambda f, wh: ~(f.discount_share >= 0.3),
    "recency_days between 10 and 100 or sessions_90d > 2": lambda f, wh: (
        f.recency_days.between(10, 100) | (f.sessions_90d > 2)
    ),
    'has_tag("价格敏感型") or lifecycle_stage == "churned"': lambda f, wh: (
        f.customer_id.isin(tags(wh, "价格敏感型")) | (f.lifecycle_stage == "churned")
    ),
    "last_purchase_at < today - 90d": lambda f, wh: (
        f.last_purchase_at < pd.Timestamp("2025-12-01") - pd.Timedelta(days=90)
    ),
    "count(orders, 365d) >= 4": lambda f, wh: f.orders_365d + 0 >= 0,  # replaced below
}


@pytest.mark.parametrize("expr", list(CASES))
def test_preview_size_matches_pandas(shop_project, expr):
    _, wh, shop = shop_project
    f = frame(wh)
    if expr.startswith("count(orders"):
        o = shop["orders"]
        o = o[
            (o.ordered_at >= pd.Timestamp("2024-12-01"))
            & (o.ordered_at < pd.Timestamp("2025-12-01"))
        ]
        counts = o.groupby("customer_id").size()
        want = int((f.customer_id.map(counts).fillna(0) >= 4).sum())
    else:
        want = int(CASES[expr](f, wh).fillna(False).sum())
    doc = preview(wh, expr)
    assert doc["size"] == want
    assert doc["population"] == len(f)
    assert 0 <= doc["share"] <= 1 and len(doc["sample"]) <= 10


def test_bad_expression_raises_with_a_caret_and_saves_nothing(shop_project):
    _, wh, _ = shop_project
    with pytest.raises(ExprError) as info:
        create_segment(wh, "broken", "orders_90d >= ")
    assert "^" in info.value.render()
    with pytest.raises(ExprError, match="unknown field"):
        preview(wh, "ordrs_90d >= 2")
    assert "broken" not in {s["name"] for s in list_segments(wh)}


def test_create_list_show_overlap(shop_project):
    _, wh, _ = shop_project
    f = frame(wh)
    a = create_segment(wh, "t_buyers", "frequency >= 3", "repeat buyers")
    b = create_segment(wh, "t_sh", 'city == "上海"')
    c = create_segment(wh, "t_sh_buyers", 'in_segment("t_sh") and in_segment("t_buyers")')
    assert a["size"] == (f.frequency >= 3).sum()
    assert c["size"] == ((f.frequency >= 3) & (f.city == "上海")).sum()
    with pytest.raises(LoupeError, match="already exists"):
        create_segment(wh, "t_sh", 'city == "北京"')
    listed = {s["name"]: s for s in list_segments(wh)}
    assert listed["t_buyers"]["size"] == a["size"] and listed["t_sh"]["size"] == b["size"]
    shown = show_segment(wh, "t_buyers")
    assert shown["description"] == "repeat buyers" and shown["size"] == a["size"]
    freq = next(p for p in shown["profile"] if p["feature"] == "frequency")
    assert freq["lift"] > 1
    doc = overlap(wh, ["t_buyers", "t_sh", "t_sh_buyers"])
    assert doc["shared"][0][1] == c["size"] == doc["shared"][1][0]
    assert doc["shared"][2][2] == c["size"]
    assert doc["jaccard"][0][0] == 1.0
    with pytest.raises(NotFoundError):
        show_segment(wh, "nope")


def test_refresh_orders_dependencies_and_keeps_snapshots(shop_project):
    _, wh, _ = shop_project
    segs = [
        SegmentSettings(name="t_dep", expr='in_segment("t_base") and monetary > 0'),
        SegmentSettings(name="t_base", expr="frequency >= 2"),
    ]
    assert [s.name for s in dependency_order(segs)] == ["t_base", "t_dep"]
    report = compute_members(wh, segs)
    f = frame(wh)
    assert report.sizes["t_base"] == (f.frequency >= 2).sum()
    assert report.sizes["t_dep"] == ((f.frequency >= 2) & (f.monetary > 0)).sum()
    compute_members(wh, segs)
    m = wh.to_pandas(wh.table("segment_members"))
    assert m[m.segment == "t_base"].computed_at.nunique() == 2
    assert wh.count(current_members(wh, ["t_base"])) == report.sizes["t_base"]
    with pytest.raises(LoupeError, match="depends on itself"):
        dependency_order([SegmentSettings(name="x", expr='in_segment("x")')])


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_limited_to_consent(shop_project, tmp_path, fmt):
    _, wh, _ = shop_project
    create_segment(wh, f"t_export_{fmt}", "frequency >= 1")
    f = frame(wh)
    members = set(f.customer_id[f.frequency >= 1])
    # load_into: even customers granted e-mail consent, every fourth revoked it later
    idx = {f"C{i:03d}" for i in range(0, 80, 2)} - {f"C{i:03d}" for i in range(0, 80, 4)}
    path = tmp_path / f"out.{fmt}"
    doc = export_members(wh, f"t_export_{fmt}", path, consent="email")
    if fmt == "csv":
        got = pd.read_csv(path)
    elif fmt == "parquet":
        got = pq.read_table(path).to_pandas()
    else:
        got = pd.DataFrame(json.loads(path.read_text(encoding="utf-8")))
    assert set(got.customer_id) == members & idx
    assert doc["members"] == len(members) and doc["exported"] == len(got)
    assert list(got.columns) == ["customer_id", "email", "phone", "name"]
    everyone = export_members(wh, f"t_export_{fmt}", tmp_path / f"all.{fmt}")
    assert everyone["exported"] == len(members)
