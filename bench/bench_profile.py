"""Benchmark: customer features, RFM, lifecycle, tags and 20 segments on DuckDB, against the same
core features computed in pandas.

The canonical tables (customers, identity_links, orders, order_items, products, events) are
built directly inside DuckDB from ``range()`` with hash-based pseudo-random values, so a
1M-customer warehouse takes seconds rather than the generator's minutes.  Each step runs
through the public stage functions (``build_features``, ``build_tags``, ``rfm``,
``compute_members``); a second ``build_tags`` on unchanged data is timed apart (it must append
no history rows).  Writes ``bench/results/profile.json`` (or ``--out``) with the load average
at start and end, since the machine may be shared.

    .venv/bin/python bench/bench_profile.py --customers 1000000 --out bench/results/profile_1m.json

Target (issue 3): 1M customers / 10M orders / 50M events, features + tags + RFM + 20 segments
in under 60 s on DuckDB with 2 threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

AS_OF = date(2026, 1, 1)
SPAN_SECONDS = 730 * 86400
CATEGORIES = ["cosmetics", "apparel", "home", "baby", "snacks", "electronics"]
EVENT_NAMES = [
    "Product Viewed",
    "Product Viewed",
    "Product Viewed",
    "Product List Viewed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
    "Email Opened",
    "Email Link Clicked",
    "Push Notification Opened",
]

SEGMENTS = [
    ("champions", 'rfm_group == "Champions"'),
    ("at_risk_value", 'rfm_group in ("At Risk", "Cannot Lose Them") and monetary > 1000'),
    (
        "price_sensitive_sleepers",
        'has_tag("价格敏感型") and lifecycle_stage in ("at-risk", "dormant")',
    ),
    ("night_owls_app", 'has_tag("熬夜党") and app_share >= 0.5'),
    ("baby_families", 'has_tag("亲子家庭")'),
    ("new_customers", 'lifecycle_stage == "new"'),
    ("reactivated", 'lifecycle_stage == "reactivated"'),
    ("frequent", "orders_365d >= 6"),
    ("big_basket", "aov >= 600"),
    ("email_engaged", "email_opens >= 1"),
    ("browsers_no_buy", "frequency == 0 and events_30d >= 3"),
    ("recent_lapsed", "last_purchase_at < today - 90d and orders_365d >= 2"),
    ("store_loyal", "store_share >= 0.7 and frequency >= 3"),
    ("online_first", "online_share + app_share >= 0.8"),
    ("high_returns", "return_rate >= 0.2"),
    ("cosmetics_fans", "cat_share_cosmetics >= 0.4"),
    ("top_spend_tier", 'has_tag("消费水平", "高")'),
    ("ordered_twice_90d", "count(orders, 90d) >= 2"),
    ("active_sessions", "sessions_30d >= 2 and frequency >= 1"),
    ("vip_in_champions", 'in_segment("champions") and monetary >= 5000'),
]


def build_warehouse(root: Path, customers: int, orders: int, events: int, lines: float) -> Any:
    """A project whose canonical tables are filled by DuckDB SQL (no generator files)."""
    from loupe.config import parse_settings
    from loupe.warehouse import Warehouse

    settings = parse_settings({"warehouse": {"threads": 2}}, root, str(root / "loupe.toml"))
    (root / "loupe.toml").write_text("[warehouse]\nthreads = 2\n", encoding="utf-8")
    wh = Warehouse.open(settings)
    n, m, e = customers, orders, events
    u = "(hash({x}) % 1000000) / 1000000.0"  # uniform in [0, 1) from a seed expression
    sql = [
        f"""INSERT INTO customers (customer_id, email, phone, city, gender, birth_date, first_seen,
            last_seen, record_count)
            SELECT 'C' || i, 'c' || i || '@x.cn', '+86138' || lpad(i::VARCHAR, 8, '0'),
                   ['上海', '北京', '广州', '深圳', '杭州'][(1 + hash(i, 1) % 5)::BIGINT],
                   ['F', 'M'][(1 + hash(i, 2) % 2)::BIGINT],
                   DATE '1970-01-01' + (hash(i, 3) % 12000)::INT,
                   TIMESTAMP '2023-06-01' + to_seconds((hash(i, 4) % (900 * 86400))::BIGINT),
                   TIMESTAMP '2025-12-31', 1
            FROM range({n}) t(i)""",
        f"""INSERT INTO identity_links
            SELECT 'record', 'bench:' || i, 'C' || i FROM range({n}) t(i)
            UNION ALL SELECT 'user_id', 'U' || i, 'C' || i FROM range({n}) t(i)""",
        f"""INSERT INTO products (product_id, source, name, category, brand, price, currency)
            SELECT 'P' || i, 'bench', 'product ' || i, {CATEGORIES!r}[1 + i % 6],
                   'brand' || (i % 18), 10 + (i * 37) % 990, 'CNY'
            FROM range(720) t(i)""",
        f"""INSERT INTO orders (order_id, source, contact_source, source_key, ordered_at, amount,
            amount_base, currency, discount, coupon_code, channel, status)
            SELECT 'O' || j, 'bench', 'bench', (hash(j, 5) % {n})::VARCHAR,
                   TIMESTAMP '2024-01-01' + to_seconds((hash(j, 6) % {SPAN_SECONDS})::BIGINT),
                   a, a, 'CNY', CASE WHEN {u.format(x="j, 7")} < 0.3 THEN 20.0 ELSE 0 END,
                   CASE WHEN {u.format(x="j, 8")} < 0.2 THEN 'SAVE20' END,
                   ['web', 'app', 'store'][(1 + hash(j, 9) % 3)::BIGINT],
                   CASE WHEN {u.format(x="j, 10")} < 0.03 THEN 'cancelled'
                        WHEN {u.format(x="j, 10")} < 0.05 THEN 'refunded' ELSE 'delivered' END
            FROM (SELECT j, round(-ln(1 - {u.format(x="j, 11")}) * 400 + 10, 2) AS a
                  FROM range({m}) t(j))""",
        f"""INSERT INTO order_items (order_id, source, line_no, product_id, quantity, unit_price,
            discount)
            SELECT 'O' || (k % {m}), 'bench', k // {m}, 'P' || (hash(k, 12) % 720),
                   1 + hash(k, 13) % 3, 10 + hash(k, 14) % 500, 0
            FROM range({int(m * lines)}) t(k)""",
        f"""INSERT INTO events (event_id, source, type, event, user_id, ts)
            SELECT 'E' || k, 'bench', 'track', {EVENT_NAMES!r}[(1 + hash(k, 15) % 10)::BIGINT],
                   'U' || (hash(k, 16) % {n}),
                   TIMESTAMP '2024-01-01' + to_seconds((hash(k, 17) % {SPAN_SECONDS})::BIGINT)
            FROM range({e}) t(k)""",
    ]
    for statement in sql:
        wh.con.raw_sql(statement)
    return wh


# -- the same core features in pandas ---------------------------------------------------------
def pandas_features(wh: Any) -> tuple[pd.DataFrame, float, float]:
    """Core features (RFM windows, AOV, shares, intervals, category shares, activity) in pandas.

    Returns the frame, the seconds spent loading the tables into pandas, and the seconds spent
    computing.
    """
    t0 = time.perf_counter()
    con = wh.con
    orders = con.sql(
        "SELECT o.order_id, l.customer_id, o.ordered_at, o.amount_base AS amount, o.status, "
        "o.channel, o.coupon_code, o.discount FROM orders o JOIN identity_links l "
        "ON l.id_type = 'record' AND l.id_value = o.contact_source || ':' || o.source_key"
    ).to_pandas()
    items = (
        con.table("order_items")
        .select("order_id", "product_id", "quantity", "unit_price")
        .to_pandas()
    )
    products = con.table("products").select("product_id", "category").to_pandas()
    events = con.sql(
        "SELECT l.customer_id, e.ts, e.event FROM events e JOIN identity_links l "
        "ON l.id_type = 'user_id' AND l.id_value = e.user_id "
        f"WHERE e.ts >= TIMESTAMP '{AS_OF.isoformat()}' - INTERVAL 90 DAY"  # only the window
    ).to_pandas()
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    cutoff = pd.Timestamp(AS_OF)
    o = orders[orders.ordered_at < cutoff]
    o = o[~o.status.isin(["cancelled", "refunded", "returned"])].copy()
    o["disc"] = o.coupon_code.notna() | (o.discount > 0)
    for w in (30, 90, 365):
        o[f"in{w}"] = o.ordered_at >= cutoff - pd.Timedelta(days=w)
        o[f"amt{w}"] = o.amount.where(o[f"in{w}"], 0.0)
    for ch in ("web", "app", "store"):
        o[f"ch_{ch}"] = o.channel == ch
    hour = (o.ordered_at + pd.Timedelta(hours=8)).dt.hour
    o["night"] = (hour >= 22) | (hour < 5)
    g = o.groupby("customer_id")
    f = pd.DataFrame(
        {
            "frequency": g.size(),
            "monetary": g.amount.sum(),
            "last": g.ordered_at.max(),
            "discount_share": g.disc.mean(),
            "night_share": g.night.mean(),
            **{f"orders_{w}d": g[f"in{w}"].sum() for w in (30, 90, 365)},
            **{f"revenue_{w}d": g[f"amt{w}"].sum() for w in (30, 90, 365)},
            **{f"{ch}_share": g[f"ch_{ch}"].mean() for ch in ("web", "app", "store")},
        }
    )
    f["aov"] = f.monetary / f.frequency
    f["recency_days"] = (cutoff - f["last"].dt.normalize()).dt.days
    days = o.assign(day=o.ordered_at.dt.normalize())[["customer_id", "day"]].drop_duplicates()
    days = days.sort_values(["customer_id", "day"])
    days["gap"] = days.groupby("customer_id").day.diff().dt.days
    gi = days.groupby("customer_id").gap
    f["interval_mean"], f["interval_std"] = gi.mean(), gi.std()
    lines = items.merge(o[["order_id", "customer_id"]], on="order_id").merge(
        products, on="product_id"
    )
    lines["spend"] = lines.quantity * lines.unit_price
    spend = lines.pivot_table(
        index="customer_id", columns="category", values="spend", aggfunc="sum"
    )
    shares = spend.div(spend.sum(axis=1), axis=0).add_prefix("cat_share_")
    f = f.join(shares)
    ev = events[(events.ts < cutoff) & (events.ts >= cutoff - pd.Timedelta(days=90))]
    for w in (7, 30, 90):
        f[f"events_{w}d"] = (ev.ts >= cutoff - pd.Timedelta(days=w)).groupby(ev.customer_id).sum()
    f["email_opens"] = ev[ev.event == "Email Opened"].groupby("customer_id").size()
    return f, load, time.perf_counter() - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=10.0)
    parser.add_argument("--events-per-customer", type=float, default=50.0)
    parser.add_argument("--lines-per-order", type=float, default=1.5)
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / "work")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "profile.json"
    )
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas comparison")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the tables of a previous run of this size"
    )
    a = parser.parse_args()

    from loupe.profile import build_features, build_tags, rfm
    from loupe.segments import compute_members
    from loupe.segments.settings import SegmentSettings

    n = a.customers
    m, e = int(n * a.orders_per_customer), int(n * a.events_per_customer)
    root = a.work / f"profile-{n}"
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    if a.reuse and (root / "loupe.duckdb").exists():
        from loupe.config import load_settings
        from loupe.warehouse import Warehouse

        wh = Warehouse.open(load_settings(root))
        for table in ("customer_tags", "lifecycle_history", "segment_members", "segments"):
            wh.drop(table)  # start the profile from scratch, as on a fresh warehouse
    else:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        wh = build_warehouse(root, n, m, e, a.lines_per_order)
    seconds["build_tables"] = round(time.perf_counter() - t, 2)
    print(f"tables built in {seconds['build_tables']}s", flush=True)

    load_at_start = os.getloadavg()
    t = time.perf_counter()
    features = build_features(wh, AS_OF)
    seconds["features_rfm_lifecycle"] = round(time.perf_counter() - t, 2)
    print(f"features {seconds['features_rfm_lifecycle']}s", flush=True)
    t = time.perf_counter()
    tags = build_tags(wh)
    seconds["tags"] = round(time.perf_counter() - t, 2)
    print(f"tags {seconds['tags']}s", flush=True)
    t = time.perf_counter()
    grid = rfm(wh)
    seconds["rfm_grid"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    segs = compute_members(wh, [SegmentSettings(name=k, expr=v) for k, v in SEGMENTS])
    seconds["segments_20"] = round(time.perf_counter() - t, 2)
    print(f"segments {seconds['segments_20']}s", flush=True)
    # not part of the target: a second tags run on unchanged data appends no history rows
    t = time.perf_counter()
    again = build_tags(wh)
    seconds["tags_rerun_unchanged"] = round(time.perf_counter() - t, 2)
    seconds["total_profile"] = round(
        seconds["features_rfm_lifecycle"]
        + seconds["tags"]
        + seconds["rfm_grid"]
        + seconds["segments_20"],
        2,
    )
    result: dict[str, Any] = {
        "customers": n,
        "orders": m,
        "order_items": int(m * a.lines_per_order),
        "events": e,
        "backend": "duckdb",
        "threads": 2,
        "seconds": seconds,
        "target_seconds": 60,
        "features_columns": len(features.columns),
        "lifecycle": features.lifecycle,
        "tag_rows": tags.rows,
        "tag_rows_appended_by_rerun": again.rows,
        "rfm_buyers": grid["buyers"],
        "segment_sizes": segs.sizes,
        "load_average_at_start": list(load_at_start),
        "load_average_at_end": list(os.getloadavg()),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    if not a.no_pandas:
        frame, load, compute = pandas_features(wh)
        result["pandas"] = {
            "load_seconds": round(load, 2),
            "compute_seconds": round(compute, 2),
            "customers": len(frame),
            "features": "frequency, monetary, recency, aov, orders/revenue 30/90/365d, discount/night/"
            "channel shares, interval mean/std, category shares, events 7/30/90d, email opens",
        }
        duck = wh.to_pandas(
            wh.table("customer_features").select("customer_id", "frequency", "monetary")
        ).set_index("customer_id")
        mine = frame[["frequency", "monetary"]].add_suffix("_pd")
        both = duck.merge(mine, left_index=True, right_index=True)
        result["pandas"]["agree_frequency"] = bool((both.frequency == both.frequency_pd).all())
        result["pandas"]["agree_monetary"] = bool(np.allclose(both.monetary, both.monetary_pd))
        result["pandas"]["load_average_at_end"] = list(os.getloadavg())
        print(f"pandas load {load:.1f}s compute {compute:.1f}s", flush=True)
    wh.close()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    print(json.dumps(result["seconds"], indent=2))


if __name__ == "__main__":
    main()
