"""Benchmark: 5-step funnel (7-day window), weekly retention, and basket rules vs mlxtend.

    .venv/bin/python bench/bench_analytics.py --events 5000000 --lines 200000

Events are generated inside DuckDB (no Python loop): ``events/50`` people, 8 event names,
times spread over 120 days; half the people are identified through ``identity_links``.
Results land in ``bench/results/analytics.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import ibis

from loupe.analytics import BasketSpec, FunnelSpec, RetentionSpec, basket_rules, funnel, parse_steps
from loupe.analytics.retention import retention
from loupe.config import parse_settings
from loupe.warehouse import Warehouse
from loupe.warehouse.schemas import canonical_schema

NAMES = ["Page Viewed", "Product Viewed", "Product Added", "Cart Viewed", "Checkout Started",
         "Order Completed", "Search", "Login"]  # fmt: skip


def make_events(wh: Warehouse, n: int, seed: int = 0) -> None:
    people = max(n // 50, 1)
    names = "[" + ",".join(f"'{x}'" for x in NAMES) + "]"
    cols = []
    for name, dtype in canonical_schema("events").items():
        expr = {
            "event_id": "CAST(i AS VARCHAR)",
            "type": "'track'",
            "event": f"{names}[1 + CAST(floor(random() * 8) AS INTEGER) % 8]",
            "anonymous_id": f"'a' || CAST(hash(i // 7) % {people} AS VARCHAR)",
            "ts": "TIMESTAMP '2024-01-01' + to_seconds(CAST(floor(random() * 120 * 86400) AS BIGINT))",
            "session_id": "CAST(i // 7 AS VARCHAR)",
            "utm_source": "CASE WHEN random() < 0.3 THEN 'wechat' ELSE NULL END",
        }.get(name)
        sql_type = {"string": "VARCHAR", "timestamp": "TIMESTAMP", "float64": "DOUBLE",
                    "int64": "BIGINT"}.get(str(dtype), "VARCHAR[]")  # fmt: skip
        cols.append(f'CAST({expr or "NULL"} AS {sql_type}) AS "{name}"')
    wh.con.raw_sql(f"SELECT setseed({seed / 10})")
    wh.con.raw_sql(
        f"CREATE OR REPLACE TABLE events AS SELECT {', '.join(cols)} FROM range({n}) t(i)"
    )
    wh.con.raw_sql(
        "CREATE OR REPLACE TABLE identity_links AS SELECT 'anonymous_id' AS id_type, "
        f"'a' || CAST(j AS VARCHAR) AS id_value, 'c' || CAST(j AS VARCHAR) AS customer_id "
        f"FROM range(0, {people}, 2) t(j)"
    )


def make_lines(n_lines: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    orders = rng.integers(0, n_lines // 3, n_lines)
    products = (rng.zipf(1.3, n_lines) % 200).astype(int)
    return pd.DataFrame(
        {"order_id": orders.astype(str), "source": "s", "line_no": np.arange(n_lines),
         "product_id": [f"p{p:03d}" for p in products], "quantity": 1}
    )  # fmt: skip


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "analytics.json"
    )
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp())
    settings = parse_settings(
        {"warehouse": {"threads": args.threads}}, root, str(root / "loupe.toml")
    )
    result: dict = {"machine": platform.platform(), "threads": args.threads}
    with Warehouse.open(settings) as wh:
        _, t_gen = timed(lambda: make_events(wh, args.events))
        spec = FunnelSpec(parse_steps(",".join(NAMES[1:6])), window=timedelta(days=7))
        f, t_funnel = timed(lambda: funnel(wh, spec))
        r, t_ret = timed(lambda: retention(wh, RetentionSpec(period="week", max_periods=16)))
        result["events"] = {
            "rows": args.events,
            "generate_s": round(t_gen, 2),
            "funnel_5_steps_7d_s": round(t_funnel, 2),
            "funnel_counts": [s["count"] for s in f.steps],
            "retention_weekly_s": round(t_ret, 2),
            "retention_cells": len(r),
        }
        print(json.dumps(result["events"]))
        lines = make_lines(args.lines)
        wh.replace("order_items", ibis.memtable(lines).cast(
            {k: v for k, v in canonical_schema("order_items").items() if k in lines.columns}))  # fmt: skip
        bspec = BasketSpec(min_support=0.002, min_confidence=0.05, max_len=2)
        rules, t_rules = timed(lambda: basket_rules(wh, bspec))
    t_mlx = None
    try:
        import pandas as pd
        from mlxtend.frequent_patterns import association_rules, fpgrowth

        def mlx():
            onehot = pd.crosstab(lines["order_id"], lines["product_id"]).astype(bool)
            its = fpgrowth(onehot, min_support=0.002, use_colnames=True, max_len=2)
            return association_rules(its, num_itemsets=len(onehot), metric="confidence",
                                     min_threshold=0.05)  # fmt: skip

        ref, t_mlx = timed(mlx)
        same = len(ref) == len(rules)
    except ImportError:
        same = None
    result["basket"] = {
        "order_lines": args.lines,
        "rules": len(rules),
        "loupe_s": round(t_rules, 2),
        "mlxtend_s": None if t_mlx is None else round(t_mlx, 2),
        "speedup": None if t_mlx is None else round(t_mlx / t_rules, 1),
        "same_rule_count": same,
    }
    print(json.dumps(result["basket"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
