"""Lifecycle stages on hand-made purchase histories, and the transition history."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import ibis
import pandas as pd

from loupe.profile import FeatureSpec, LifecycleSettings, customer_features, lifecycle_stages
from loupe.profile.lifecycle import HISTORY_SCHEMA, transitions

AS_OF = date(2025, 12, 1)


def history_of(days_ago: dict[str, list[int]]) -> dict[str, ibis.Table]:
    """Purchases ``days_ago`` (before AS_OF) per customer, at noon UTC."""
    rows = [
        (
            f"{cid}-{i}",
            cid,
            datetime.combine(AS_OF, datetime.min.time()) - timedelta(days=d, hours=-12),
        )
        for cid, ds in days_ago.items()
        for i, d in enumerate(ds)
    ]
    orders = pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at"])
    orders = orders.assign(
        amount=100.0, channel="web", status="delivered", coupon_code=None, discount=0.0
    )
    ids = [*days_ago, "browser"]
    customers = pd.DataFrame({"customer_id": ids, "first_seen": datetime(2023, 1, 1)})
    empty_items = pd.DataFrame(
        {"order_id": ["x"], "product_id": ["p"], "quantity": [1], "unit_price": [1.0]}
    )
    events = pd.DataFrame(
        {
            "customer_id": ["browser"],
            "ts": [datetime(2025, 11, 1)],
            "event": ["Home"],
            "session_id": [None],
        }
    )
    return {
        "orders": ibis.memtable(
            orders,
            schema={
                "order_id": "string",
                "customer_id": "string",
                "ordered_at": "timestamp",
                "amount": "float64",
                "channel": "string",
                "status": "string",
                "coupon_code": "string",
                "discount": "float64",
            },
        ),
        "customers": ibis.memtable(customers),
        "order_items": ibis.memtable(empty_items),
        "products": ibis.memtable(
            pd.DataFrame({"product_id": ["p"], "category": ["c"], "brand": ["b"]})
        ),
        "events": ibis.memtable(
            events,
            schema={
                "customer_id": "string",
                "ts": "timestamp",
                "event": "string",
                "session_id": "string",
            },
        ),
    }


def stages(
    days_ago: dict[str, list[int]], settings: LifecycleSettings | None = None
) -> pd.DataFrame:
    features = customer_features(history_of(days_ago), FeatureSpec(as_of=AS_OF))
    t = lifecycle_stages(features, settings or LifecycleSettings())
    return ibis.duckdb.connect().execute(t).set_index("customer_id")


def test_stages_are_judged_against_each_customers_own_cadence():
    weekly = list(range(3, 200, 7))  # every week, last 3 days ago
    got = stages(
        {
            "weekly_active": weekly,
            "weekly_at_risk": [d + 10 for d in weekly],  # 13 days: > 1.5 x 7
            "weekly_dormant": [d + 22 for d in weekly],  # 25 days: > 3 x 7
            "weekly_churned": [d + 60 for d in weekly],  # 63 days: > 6 x 7
            "monthly_active": [20, 50, 80, 110, 140, 170],  # 20 days < 1.5 x 30
            "quarterly_active": [60, 150, 240, 330, 420],  # 60 days is normal for them
            "new": [10],
            "back": [5, 400, 430, 460, 490],  # a year away, then back 5 days ago
            "very_old": [700, 730],  # beyond churned_after_days
        }
    )
    assert got.loc["weekly_active", "lifecycle_stage"] == "active"
    assert got.loc["weekly_at_risk", "lifecycle_stage"] == "at-risk"
    assert got.loc["weekly_dormant", "lifecycle_stage"] == "dormant"
    assert got.loc["weekly_churned", "lifecycle_stage"] == "churned"
    assert got.loc["monthly_active", "lifecycle_stage"] == "active"
    assert got.loc["quarterly_active", "lifecycle_stage"] == "active"
    assert got.loc["new", "lifecycle_stage"] == "new"
    assert got.loc["back", "lifecycle_stage"] == "reactivated"
    assert got.loc["very_old", "lifecycle_stage"] == "churned"
    assert got.loc["browser", "lifecycle_stage"] == "prospect"
    # since: the day the ratio crossed its threshold (last purchase + floor(1.5 x 7) + 1)
    last = AS_OF - timedelta(days=13)
    assert got.loc["weekly_at_risk", "lifecycle_since"].date() == last + timedelta(days=11)
    assert got.loc["new", "lifecycle_since"].date() == AS_OF - timedelta(days=10)


def test_few_purchases_fall_back_to_the_population_cadence():
    # population usual = median of customers with >= 2 intervals = 10 days
    many = {f"c{i}": list(range(1, 60, 10)) for i in range(5)}
    got = stages(
        {**many, "two_buys_recent": [12, 24], "two_buys_lapsed": [40, 41]},
        LifecycleSettings(new_days=5),
    )
    assert got.loc["two_buys_recent", "usual_interval"] == 10
    assert got.loc["two_buys_recent", "lifecycle_stage"] == "active"  # 12 <= 1.5 x 10
    assert got.loc["two_buys_lapsed", "lifecycle_stage"] == "dormant"  # 40 > 3 x 10


def test_transitions_append_only_changes():
    con = ibis.duckdb.connect()
    at1, at2 = datetime(2025, 12, 1), datetime(2025, 12, 8)
    con.create_table("h", schema=HISTORY_SCHEMA)
    cur1 = ibis.memtable(
        {
            "customer_id": ["a", "b"],
            "lifecycle_stage": ["active", "active"],
            "lifecycle_since": [date(2025, 11, 1)] * 2,
        }
    )
    con.insert("h", transitions(cur1, con.table("h"), at1))
    cur2 = ibis.memtable(
        {
            "customer_id": ["a", "b", "c"],
            "lifecycle_stage": ["active", "at-risk", "new"],
            "lifecycle_since": [date(2025, 11, 1), date(2025, 12, 5), date(2025, 12, 6)],
        }
    )
    con.insert("h", transitions(cur2, con.table("h"), at2))
    h = con.table("h").execute().sort_values(["customer_id", "computed_at"])
    assert list(zip(h.customer_id, h.stage, strict=True)) == [
        ("a", "active"),
        ("b", "active"),
        ("b", "at-risk"),
        ("c", "new"),
    ]
    # "became at-risk this week" is a query
    week = h[(h.stage == "at-risk") & (h.since >= pd.Timestamp(2025, 12, 1))]
    assert list(week.customer_id) == ["b"]
