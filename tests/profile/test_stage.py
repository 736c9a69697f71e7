"""The profile stage on a small warehouse: features, RFM, lifecycle history and tags."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from loupe.errors import LoupeError
from loupe.profile import (
    TagSettings,
    audience_table,
    build_features,
    build_profile,
    build_tags,
    evaluate_tags,
    profile_tables,
    rfm,
    tag_context,
)
from loupe.warehouse import utcnow
from tests.conftest import make_settings
from tests.profile.shop import load_into, make_shop, reference_features


@pytest.fixture
def shop_wh(tmp_path):
    from loupe.warehouse import Warehouse

    wh = Warehouse.open(make_settings(tmp_path))
    shop = make_shop(seed=5, customers=60, orders=500, events=800)
    load_into(wh, shop)
    yield wh, shop
    wh.close()


def test_profile_writes_features_history_and_tags(shop_wh):
    wh, shop = shop_wh
    report = build_profile(wh, date(2025, 12, 1))
    f = wh.to_pandas(wh.table("customer_features")).set_index("customer_id").sort_index()
    want = reference_features(shop, date(2025, 12, 1))
    assert list(f.index) == list(want.index)
    assert (f.frequency == want.frequency).all()
    assert report.features.customers == len(f)
    assert sum(report.features.lifecycle.values()) == len(f)
    assert report.features.transitions == len(f)  # first run: everyone enters a stage
    assert wh.count("lifecycle_history") == len(f)
    runs = wh.to_pandas(wh.table("stage_runs"))
    assert {"features", "tags"} <= set(runs.stage) and (runs.status == "success").all()
    # tags: the starter set, checked against their definitions
    tags = wh.to_pandas(wh.table("customer_tags"))
    frequent = set(tags[tags.tag == "高频购买用户"].customer_id)
    assert frequent == set(f.index[f.orders_365d >= 6])
    price = set(tags[tags.tag == "价格敏感型"].customer_id)
    assert price == set(f.index[(f.frequency >= 2) & (f.discount_share >= 0.5)])
    level = tags[tags.tag == "消费水平"]
    assert set(level.value) <= {"低", "中", "高"} and len(level) == (f.revenue_365d > 0).sum()
    fav = tags[tags.tag == "偏好品类"].set_index("customer_id").value
    top = f.loc[fav.index]
    assert (fav == top.top_category).all() and (top.top_category_share >= 0.3).all()
    assert report.tags.tags["亲子家庭"] == (f.cat_share_baby >= 0.2).sum()


def test_second_run_keeps_history_and_only_appends_changes(shop_wh):
    wh, _ = shop_wh
    build_profile(wh, date(2025, 6, 1))
    first = wh.to_pandas(wh.table("customer_features")).set_index("customer_id")
    report = build_features(wh, date(2025, 12, 1))
    second = wh.to_pandas(wh.table("customer_features")).set_index("customer_id")
    common = first.index.intersection(second.index)
    changed = (first.loc[common, "lifecycle_stage"] != second.loc[common, "lifecycle_stage"]).sum()
    newcomers = len(second.index.difference(first.index))
    assert report.transitions == changed + newcomers
    build_tags(wh)
    tags = wh.to_pandas(wh.table("customer_tags"))
    assert tags.computed_at.nunique() == 2  # history kept


def test_rfm_doc(shop_wh):
    wh, _ = shop_wh
    build_features(wh, date(2025, 12, 1))
    doc = rfm(wh)
    f = wh.to_pandas(wh.table("customer_features"))
    assert doc["buyers"] == (f.frequency > 0).sum()
    assert doc["as_of"] == date(2025, 12, 1)
    counts = f.rfm_group.value_counts()
    assert {g["group"]: g["customers"] for g in doc["groups"] if g["customers"]} == counts.to_dict()


def test_a_bad_tag_names_the_tag_and_shows_the_caret(shop_wh):
    wh, _ = shop_wh
    build_features(wh, date(2025, 12, 1))
    aud = audience_table(wh.table("customers"), wh.table("customer_features"))
    ctx = tag_context(wh, profile_tables(wh), date(2025, 12, 1))
    bad = TagSettings(name="broken", expr="frequency >= ")
    with pytest.raises(LoupeError) as info:
        evaluate_tags([bad], aud, context=ctx, computed_at=utcnow())
    text = info.value.render()
    assert "broken" in text and "^" in text


def test_an_optional_tag_on_a_missing_column_is_skipped(shop_wh):
    from loupe.profile.audience import audience_table
    from loupe.profile.settings import starter_tags
    from loupe.profile.stage import tag_context
    from loupe.profile.tables import profile_tables
    from loupe.profile.tags import evaluate_tags
    from loupe.warehouse import utcnow

    wh, _ = shop_wh
    build_features(wh, date(2025, 12, 1))
    tags = [
        TagSettings(name="pets", expr="cat_share_pets > 0.2", optional=True),
        TagSettings(name="vip", expr='has_tag("高频购买用户") and monetary > 0'),
        *[t for t in starter_tags() if t.name == "高频购买用户"],
    ]
    aud = audience_table(wh.table("customers"), wh.table("customer_features"))
    ctx = tag_context(wh, profile_tables(wh), date(2025, 12, 1))
    # "vip" uses a tag computed later in the list: it sees the previous snapshot (none)
    result = evaluate_tags(tags, aud, context=ctx, computed_at=utcnow())
    assert result.skipped.keys() == {"pets"}
    rows = wh.to_pandas(result.rows)
    assert "vip" not in set(rows.tag)
    # in declaration order a later tag sees an earlier one of the same run
    result = evaluate_tags([tags[2], tags[1]], aud, context=ctx, computed_at=utcnow())
    rows = wh.to_pandas(result.rows)
    assert set(rows[rows.tag == "vip"].customer_id) == set(
        rows[rows.tag == "高频购买用户"].customer_id
    )
    assert isinstance(rows, pd.DataFrame)


def test_a_project_of_orders_alone_says_why_it_has_no_customers(tmp_path):
    """Customers come from contact records: with orders only, the profile stage used to say
    'customer_features is empty, run loupe profile' to a user who had just run it."""
    from datetime import datetime

    import ibis

    from loupe.identity import resolve_identities
    from loupe.profile import build_profile
    from loupe.warehouse import Warehouse
    from loupe.warehouse.schemas import canonical_schema

    wh = Warehouse.open(make_settings(tmp_path))
    schema = canonical_schema("orders")
    rows = {c: [None, None] for c in schema.names}
    rows.update(order_id=["o1", "o2"], source=["shop", "shop"], user_id=["u1", "u2"])
    rows.update(ordered_at=[datetime(2025, 1, 1), datetime(2025, 2, 1)], amount=[10.0, 20.0])
    wh.append("orders", ibis.memtable(rows, schema=schema))
    assert resolve_identities(wh).customers == 0
    with pytest.raises(LoupeError, match="there are no customers") as err:
        build_profile(wh, date(2025, 3, 1))
    assert "contacts sources" in (err.value.fix or "")
    wh.close()
