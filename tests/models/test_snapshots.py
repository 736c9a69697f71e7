"""Snapshots use no data on or after their cutoff; labels use only the horizon after it."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from tests.profile.company import company

from loupe.config import load_settings
from loupe.errors import LoupeError
from loupe.models.settings import LabelSettings
from loupe.models.snapshots import SnapshotBuilder, check_label_window, label_table
from loupe.warehouse import Warehouse

pytestmark = pytest.mark.slow

CUTOFF = date(2025, 7, 1)
CHURN = LabelSettings(name="churn_90d", kind="churn", horizon_days=90)


def _copy(tmp_path) -> Warehouse:
    src, wh0, _ = company()
    wh0.con.raw_sql("CHECKPOINT")
    for name in ("loupe.toml", "loupe.duckdb"):
        shutil.copy(src / name, tmp_path / name)
    return Warehouse.open(load_settings(tmp_path))


def _add_and_change_after(wh: Warehouse, cutoff: date) -> None:
    """Orders, lines, events and complaints dated after the cutoff; cancel later orders."""
    c = f"TIMESTAMP '{cutoff.isoformat()}'"
    shift = "INTERVAL 200 DAY"
    early = f"ordered_at >= {c} - {shift} AND ordered_at < {c}"
    sql = [
        f"UPDATE orders SET status = 'cancelled' WHERE ordered_at >= {c} AND random() < 0.5",
        f"""INSERT INTO order_items SELECT * REPLACE (i.order_id || '-late' AS order_id)
            FROM order_items i WHERE i.order_id IN (SELECT order_id FROM orders WHERE {early})""",
        f"""INSERT INTO orders SELECT * REPLACE (order_id || '-late' AS order_id,
            ordered_at + {shift} AS ordered_at, 'delivered_late' AS status) FROM orders
            WHERE {early}""",
        f"""INSERT INTO events SELECT * REPLACE (event_id || '-late' AS event_id,
            ts + {shift} AS ts) FROM events WHERE ts >= {c} - {shift} AND ts < {c}""",
        f"""INSERT INTO feedback SELECT * REPLACE (feedback_id || '-late' AS feedback_id,
            ts + {shift} AS ts, 1.0 AS rating) FROM feedback
            WHERE ts >= {c} - {shift} AND ts < {c}""",
    ]
    for statement in sql:
        wh.con.raw_sql(statement)


def test_data_after_the_cutoff_cannot_change_features_but_changes_labels(tmp_path):
    wh = _copy(tmp_path)
    before = SnapshotBuilder(wh).training(CUTOFF, CHURN)
    _add_and_change_after(wh, CUTOFF)
    after = SnapshotBuilder(wh).training(CUTOFF, CHURN)
    wh.close()
    assert len(before) > 500
    # The driver features exist (and so can leak) and vary between customers.
    for col in ("late_share", "last_online_late", "app_trend", "low_review_count"):
        assert before[col].nunique() > 1
    features = [c for c in before.columns if c != "label"]
    pd.testing.assert_frame_equal(before[features], after[features])
    changed = (before["label"] != after["label"]).sum()
    assert changed > 20  # half the orders after the cutoff were cancelled


def test_purchase_label_in_a_category_matches_a_recount():
    _, wh, _ = company()
    builder = SnapshotBuilder(wh)
    label = LabelSettings(name="buy_baby", kind="purchase", horizon_days=30, category="baby")
    start = datetime(2025, 11, 1)
    end = start + timedelta(days=30)
    got = set(
        wh.to_pandas(label_table(builder.tables, builder.spec(start.date()), label))["customer_id"]
    )
    o = builder.tables["orders"]
    o = o.filter(o.ordered_at >= start, o.ordered_at < end, o.customer_id.notnull())
    orders = wh.to_pandas(o.select("order_id", "customer_id", "status"))
    orders = orders[~orders["status"].str.lower().isin(["cancelled", "refunded"])]
    items = wh.to_pandas(
        wh.table("order_items").filter(lambda t: t.order_id.isin(list(orders["order_id"])))
    )
    products = wh.to_pandas(wh.table("products").select("product_id", "category"))
    baby = items.merge(products, on="product_id").query("category == 'baby'")
    want = set(orders[orders["order_id"].isin(baby["order_id"])]["customer_id"])
    assert len(want) > 5
    assert got == want
    snapshot = builder.training(start.date(), label)
    assert set(snapshot.loc[snapshot["label"] == 1, "customer_id"]) == want & set(
        snapshot["customer_id"]
    )


def test_a_horizon_beyond_the_data_is_refused():
    _, wh, _ = company()
    with pytest.raises(LoupeError, match="choose a cutoff on or before 2025-10-03"):
        check_label_window(wh, date(2025, 12, 1), CHURN)
