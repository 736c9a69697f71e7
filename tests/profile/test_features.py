"""Features against a brute-force pandas reference, and no leakage across the as-of date."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loupe.profile import FeatureSpec, category_column, customer_features
from tests.profile.shop import CATEGORIES, make_shop, reference_features

COMPARED = [
    "frequency",
    "monetary",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "revenue_30d",
    "revenue_90d",
    "revenue_365d",
    "recency_days",
    "aov",
    "discount_share",
    "online_share",
    "app_share",
    "store_share",
    "night_share",
    "morning_share",
    "afternoon_share",
    "evening_share",
    "interval_mean",
    "interval_std",
    "return_rate",
    "tenure_days",
    "events_7d",
    "events_30d",
    "events_90d",
    "sessions_7d",
    "sessions_30d",
    "sessions_90d",
    "email_opens",
    "email_clicks",
    "push_opens",
    "email_delivered",
    "push_received",
    "email_click_rate",
    "email_open_rate",
    "push_open_rate",
    *[category_column(c) for c in CATEGORIES],
]


def as_ibis(shop: dict[str, pd.DataFrame]) -> dict[str, ibis.Table]:
    schemas = {
        "customers": {"customer_id": "string", "first_seen": "timestamp"},
        "orders": {
            "order_id": "string",
            "customer_id": "string",
            "ordered_at": "timestamp",
            "amount": "float64",
            "amount_base": "float64",
            "discount": "float64",
            "coupon_code": "string",
            "channel": "string",
            "status": "string",
        },
        "order_items": {
            "order_id": "string",
            "product_id": "string",
            "quantity": "int64",
            "unit_price": "float64",
            "discount": "float64",
        },
        "products": {"product_id": "string", "category": "string", "brand": "string"},
        "events": {
            "customer_id": "string",
            "ts": "timestamp",
            "event": "string",
            "session_id": "string",
        },
    }
    return {
        name: ibis.memtable(df[list(schemas[name])], schema=ibis.schema(schemas[name]))
        for name, df in shop.items()
    }


def compute(shop: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame:
    spec = FeatureSpec(as_of=as_of, categories=tuple(CATEGORIES))
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    df = con.execute(customer_features(as_ibis(shop), spec))
    return df.set_index("customer_id").sort_index()


def assert_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.index) == list(want.index)
    for col in COMPARED:
        g = pd.to_numeric(got[col], errors="coerce").astype("float64").to_numpy()
        ref = want[col] if col in want else pd.Series(np.nan, index=want.index)
        w = pd.to_numeric(ref, errors="coerce").astype("float64").reindex(got.index)
        np.testing.assert_allclose(g, w.to_numpy(), rtol=1e-9, atol=1e-9, err_msg=col)


@pytest.mark.parametrize("as_of", [date(2025, 12, 31), date(2025, 3, 1), date(2024, 2, 15)])
def test_features_match_a_brute_force_reference(as_of):
    shop = make_shop(seed=1)
    assert_matches(compute(shop, as_of), reference_features(shop, as_of))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), day=st.integers(30, 760))
def test_features_match_the_reference_on_random_shops(seed, day):
    shop = make_shop(seed=seed, customers=15, orders=60, events=150)
    as_of = (datetime(2024, 1, 1) + timedelta(days=day)).date()
    assert_matches(compute(shop, as_of), reference_features(shop, as_of))


def test_data_after_the_cutoff_cannot_change_features():
    as_of = date(2025, 6, 1)
    cutoff = datetime(2025, 6, 1)
    shop = make_shop(seed=3)
    before = compute(shop, as_of)
    changed = {k: v.copy() for k, v in shop.items()}
    o = changed["orders"]
    late = o["ordered_at"] >= cutoff
    o.loc[late, "amount_base"] *= 10
    o.loc[late, "status"] = "refunded"
    o.loc[late, "customer_id"] = "C005"
    extra = o.head(50).copy()
    extra["order_id"] = extra["order_id"] + "x"
    extra["ordered_at"] = cutoff + timedelta(seconds=1)
    changed["orders"] = pd.concat([o, extra], ignore_index=True)
    late_lines = changed["order_items"]["order_id"].isin(o.loc[late, "order_id"])
    changed["order_items"].loc[late_lines, "quantity"] = 99
    e = changed["events"]
    e.loc[e["ts"] >= cutoff, "event"] = "Email Opened"
    newcomer = pd.DataFrame({"customer_id": ["NEW"], "first_seen": [cutoff + timedelta(days=3)]})
    changed["customers"] = pd.concat([changed["customers"], newcomer], ignore_index=True)
    after = compute(changed, as_of)
    pd.testing.assert_frame_equal(before, after)
    assert "NEW" not in after.index


def test_a_customer_without_purchases_has_zero_counts_and_no_shares():
    shop = make_shop(seed=2)
    got = compute(shop, date(2026, 1, 1))
    never = got.loc["C000"]
    assert never["frequency"] == 0 and never["monetary"] == 0
    assert pd.isna(never["recency_days"]) and pd.isna(never["discount_share"])
