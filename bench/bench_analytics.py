"""Benchmark: 5-step funnel (7-day window), weekly retention, and basket rules vs mlxtend.

    .venv/bin/python bench/bench_analytics.py            # 50M events, 10M order lines
    .venv/bin/python bench/bench_analytics.py --quick    # 1M events, 200k lines (smoke run)

The issue's targets, on DuckDB with 2 threads: funnel and retention each under 10 s over 50M
events; rules at least 10x faster than mlxtend (fpgrowth + association_rules) on the same
baskets.  The funnel is also compared with a plain-pandas implementation of the same semantics
on a sample pandas can hold.  Retention split by acquisition channel and paths after an event
(within the session, 4 steps) are measured on the same events, without a target.

Data is generated inside DuckDB (vectorised SQL, no Python loop) once per size and cached as a
project warehouse under ``bench/work/`` (gitignored; 50M events take about 1 GB):

* ``events / 50`` anonymous ids, 8 event names, times uniform over 120 days at whole seconds
  (so ties happen); an anonymous id with an even number belongs to customer ``c<k // 4>``
  (two devices per customer), and a fifth of those events also carry the ``user_id``
  ``u<k // 4>``; odd ids are visitors never identified.  ``identity_links`` links both.
* order lines: ``lines / 3`` orders, products drawn from a Zipf law over 200 products.

The events are then given their person keys (``event_persons``) as ``loupe identity`` gives
them at the end of its run; the funnel is timed with them (``funnel_5_steps_7d_s``), and once
without them, joining the events to ``identity_links`` (``funnel_without_person_index_s``);
``event_persons_build_s`` is what building them adds to each identity run.

Rules are timed twice: grouping the order lines into baskets (``loupe_from_lines_s``), and from
the baskets the quality stage stores (``order_baskets``; ``loupe_s``, building them:
``baskets_build_s``).  mlxtend is timed from its one-hot basket frame (``mlxtend_s``; building
that frame: ``mlxtend_encode_s``), so ``speedup`` compares the two from baskets and
``speedup_from_lines`` the two from order lines.

Results land in ``bench/results/analytics.json`` with the load average of the (shared) machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from loupe.analytics import (
    BasketSpec,
    FunnelSpec,
    PathSpec,
    RetentionSpec,
    basket_rules,
    funnel,
    parse_steps,
    paths,
)
from loupe.analytics.retention import retention
from loupe.config import parse_settings
from loupe.identity.attach import store_event_persons
from loupe.quality.baskets import store_baskets
from loupe.warehouse import Warehouse
from loupe.warehouse.schemas import canonical_schema

HERE = Path(__file__).parent
NAMES = ["Page Viewed", "Product Viewed", "Product Added", "Cart Viewed", "Checkout Started",
         "Order Completed", "Search", "Login"]  # fmt: skip
STEPS = NAMES[1:6]
WINDOW = timedelta(days=7)
SQL_TYPES = {"string": "VARCHAR", "timestamp": "TIMESTAMP", "float64": "DOUBLE", "int64": "BIGINT"}


def _events_sql(n: int) -> str:
    ids = max(n // 50, 1)
    names = "[" + ",".join(f"'{x}'" for x in NAMES) + "]"
    exprs = {
        "event_id": "CAST(i AS VARCHAR)",
        "source": "'bench'",
        "type": "'track'",
        "event": f"{names}[1 + CAST(floor(random() * 8) AS INTEGER)]",
        "anonymous_id": "'a' || CAST(k AS VARCHAR)",
        "user_id": "CASE WHEN k % 2 = 0 AND random() < 0.2 THEN 'u' || CAST(k // 4 AS VARCHAR) END",
        "ts": "TIMESTAMP '2024-01-01' + to_seconds(CAST(floor(random() * 120 * 86400) AS BIGINT))",
        "session_id": "CAST(i // 7 AS VARCHAR)",
        "utm_source": "CASE WHEN random() < 0.3 THEN 'wechat' END",
    }
    cols = [
        f'CAST({exprs.get(name, "NULL")} AS {SQL_TYPES.get(str(dtype), "VARCHAR[]")}) AS "{name}"'
        for name, dtype in canonical_schema("events").items()
    ]
    return (
        f"SELECT {', '.join(cols)} FROM "
        f"(SELECT i, CAST(hash(i // 7) % {ids} AS BIGINT) AS k FROM range({n}) t(i))"
    )


def _links_sql(n: int) -> str:
    ids = max(n // 50, 1)
    return (
        "SELECT 'anonymous_id' AS id_type, 'a' || CAST(k AS VARCHAR) AS id_value, "
        f"'c' || CAST(k // 4 AS VARCHAR) AS customer_id FROM range(0, {ids}, 2) t(k) "
        "UNION ALL SELECT 'user_id', 'u' || CAST(m AS VARCHAR), 'c' || CAST(m AS VARCHAR) "
        f"FROM range(0, {(ids + 3) // 4}) t(m)"
    )


def ensure_events(n: int, work: Path) -> Path:
    """The project folder holding ``n`` generated events (built once, then reused)."""
    root = work / f"analytics-{n}"
    db = root / "loupe.duckdb"
    done = root / "ready"
    if done.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    with Warehouse.open(_settings(root, 2)) as wh:
        wh.con.raw_sql("SELECT setseed(0.5)")
        wh.con.raw_sql(f"CREATE OR REPLACE TABLE events AS {_events_sql(n)}")
        wh.con.raw_sql(f"CREATE OR REPLACE TABLE identity_links AS {_links_sql(n)}")
        person_index(wh)
    done.write_text(str(n))
    return root


def person_index(wh: Warehouse) -> float:
    """(Re)build ``event_persons`` as the identity stage does; returns the seconds taken."""
    t = time.perf_counter()
    store_event_persons(wh)
    return round(time.perf_counter() - t, 2)


def _settings(root: Path, threads: int, memory: str = "6GB") -> Any:
    sections = {"warehouse": {"threads": threads, "memory_limit": memory}}
    return parse_settings(sections, root, str(root / "loupe.toml"))


def make_lines(n_lines: int, seed: int = 0) -> pd.DataFrame:
    """``n_lines`` order lines: ``n_lines / 3`` orders, Zipf-distributed products (vectorised)."""
    rng = np.random.default_rng(seed)
    orders = rng.integers(0, max(n_lines // 3, 1), n_lines)
    products = rng.zipf(1.3, n_lines) % 200
    return pd.DataFrame(
        {
            "order_id": pd.Series(orders).astype(str).to_numpy(),
            "source": "s",
            "line_no": np.arange(n_lines),
            "product_id": pd.Series(products).map(lambda p: f"p{p:03d}").to_numpy(),
            "quantity": 1,
        }
    )


def ensure_lines(n: int, work: Path) -> Path:
    """The project folder holding ``n`` generated order lines (built once, then reused)."""
    root = work / f"analytics-lines-{n}"
    done = root / "ready"
    if done.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "loupe.duckdb").unlink(missing_ok=True)
    lines = make_lines(n)
    with Warehouse.open(_settings(root, 2)) as wh:
        wh.con.con.register("lines_df", lines)
        cols = ", ".join(
            f"CAST({c if c in lines.columns else 'NULL'} AS "
            f'{SQL_TYPES.get(str(t), "VARCHAR[]")}) AS "{c}"'
            for c, t in canonical_schema("order_items").items()
        )
        wh.con.raw_sql(f"CREATE OR REPLACE TABLE order_items AS SELECT {cols} FROM lines_df")
    done.write_text(str(n))
    return root


def timed(fn: Any) -> tuple[Any, float, float]:
    """``(result, wall seconds, CPU seconds of this process, all threads)``."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - t, 2), round(time.process_time() - c, 2)


# -- plain pandas funnel (the comparison) ------------------------------------------------------


def pandas_funnel(events: pd.DataFrame, links: pd.DataFrame) -> list[int]:
    """The strict funnel of ``STEPS`` in plain pandas, same semantics as Loupe.

    People are resolved by ``map``; each step advances every candidate start to the earliest
    step event strictly after it with ``merge_asof`` (forward, exact matches excluded).
    """
    uid = links[links.id_type == "user_id"].groupby("id_value").customer_id.min()
    anon = links[links.id_type == "anonymous_id"].groupby("id_value").customer_id.min()
    e = events[events.event.isin(STEPS)]
    person = e.user_id.map(uid).fillna(e.anonymous_id.map(anon)).fillna(e.anonymous_id)
    e = pd.DataFrame({"person": person.to_numpy(), "ts": e.ts.to_numpy(), "event": e.event})
    by_step = [e[e.event == s][["person", "ts"]].sort_values("ts") for s in STEPS]
    cands = by_step[0].rename(columns={"ts": "t"}).assign(t1=lambda d: d.t)
    counts = [cands.person.nunique()]
    for k in range(1, len(STEPS)):
        nxt = by_step[k].rename(columns={"ts": "nxt"})
        m = pd.merge_asof(
            cands.sort_values("t"), nxt, left_on="t", right_on="nxt", by="person",
            direction="forward", allow_exact_matches=False,
        )  # fmt: skip
        m = m[m.nxt.notna() & (m.nxt <= m.t1 + WINDOW)]
        cands = m.groupby(["person", "nxt"], as_index=False).t1.max().rename(columns={"nxt": "t"})
        counts.append(cands.person.nunique())
    return counts


# -- mlxtend (the comparison for rules) --------------------------------------------------------


def mlxtend_rules(lines: pd.DataFrame, spec: BasketSpec) -> tuple[pd.DataFrame, float, float]:
    """fpgrowth + association_rules on the one-hot baskets; returns the rules and the seconds
    spent one-hot encoding (numpy) and in mlxtend itself."""
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    t = time.perf_counter()
    basket = lines.source.astype(str) + "\x1f" + lines.order_id.astype(str)
    b_codes, _ = pd.factorize(basket)
    i_codes, items = pd.factorize(lines.product_id)
    onehot = np.zeros((b_codes.max() + 1, len(items)), dtype=bool)
    onehot[b_codes, i_codes] = True
    frame = pd.DataFrame(onehot, columns=list(items))
    t_encode = time.perf_counter() - t
    t = time.perf_counter()
    its = fpgrowth(frame, min_support=spec.min_support, use_colnames=True, max_len=spec.max_len)
    rules = association_rules(
        its, num_itemsets=len(frame), metric="confidence", min_threshold=spec.min_confidence
    )
    return rules, round(t_encode, 2), round(time.perf_counter() - t, 2)


def _rule_keys(rules: Any) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    if isinstance(rules, pd.DataFrame):
        pairs = zip(rules.antecedents, rules.consequents, strict=True)
    else:
        pairs = ((r["antecedents"], r["consequents"]) for r in rules)
    return {(tuple(sorted(a)), tuple(sorted(c))) for a, c in pairs}


# -- the benchmark -----------------------------------------------------------------------------


def bench_events(n: int, threads: int, work: Path) -> dict[str, Any]:
    root = ensure_events(n, work)
    with Warehouse.open(_settings(root, threads)) as wh:
        spec = FunnelSpec(parse_steps(",".join(STEPS)), window=WINDOW)
        wh.drop("event_persons")
        f0, wall_j, cpu_j = timed(lambda: funnel(wh, spec))
        build_s = person_index(wh)
        f, wall_f, cpu_f = timed(lambda: funnel(wh, spec))
        assert f.steps == f0.steps, "the person index changed the funnel"
        rspec = RetentionSpec(period="week", max_periods=16)
        r, wall_r, cpu_r = timed(lambda: retention(wh, rspec))
        cspec = RetentionSpec(period="week", max_periods=16, split="channel")
        rc, wall_c, cpu_c = timed(lambda: retention(wh, cspec))
        pspec = PathSpec("Product Viewed", max_len=4)
        pa_, wall_p, cpu_p = timed(lambda: paths(wh, pspec))
    return {
        "rows": n,
        "funnel_5_steps_7d_s": wall_f,
        "funnel_cpu_s": cpu_f,
        "funnel_counts": [s["count"] for s in f.steps],
        "funnel_without_person_index_s": wall_j,
        "funnel_without_person_index_cpu_s": cpu_j,
        "event_persons_build_s": build_s,
        "retention_weekly_s": wall_r,
        "retention_cpu_s": cpu_r,
        "retention_cells": len(r),
        "retention_by_channel_s": wall_c,
        "retention_by_channel_cpu_s": cpu_c,
        "retention_by_channel_cells": len(rc),
        "paths_after_in_session_s": wall_p,
        "paths_cpu_s": cpu_p,
        "paths_occurrences_shown": pa_["shown_occurrences"],
    }


def bench_pandas(n: int, threads: int, work: Path) -> dict[str, Any]:
    root = ensure_events(n, work)
    with Warehouse.open(_settings(root, threads)) as wh:
        if not wh.exists("event_persons"):  # a warehouse cached before the index existed
            person_index(wh)
        spec = FunnelSpec(parse_steps(",".join(STEPS)), window=WINDOW)
        f, wall_l, _ = timed(lambda: funnel(wh, spec))
    con = duckdb.connect(str(root / "loupe.duckdb"), read_only=True)
    events = con.sql("SELECT anonymous_id, user_id, event, ts FROM events").df()
    links = con.sql("SELECT * FROM identity_links").df()
    con.close()
    counts, wall_p, _ = timed(lambda: pandas_funnel(events, links))
    loupe_counts = [s["count"] for s in f.steps]
    return {
        "rows": n,
        "loupe_s": wall_l,
        "pandas_s": wall_p,
        "speedup": round(wall_p / wall_l, 1),
        "same_counts": counts == loupe_counts,
        "counts": loupe_counts,
    }


def bench_rules(sizes: list[int], mlx_max: int, threads: int, work: Path) -> list[dict[str, Any]]:
    spec = BasketSpec(min_support=0.002, min_confidence=0.05, max_len=2)
    out = []
    for n in sizes:
        root = ensure_lines(n, work)
        with Warehouse.open(_settings(root, threads)) as wh:
            # grouping the lines (no stored baskets), then from the baskets the quality stage
            # stores: the form mlxtend is timed from too (its one-hot frame is built first)
            for name in ("order_baskets", "basket_items"):
                wh.drop(name)
            rules0, wall_0, cpu_0 = timed(lambda: basket_rules(wh, spec))
            _, build_s, _ = timed(lambda: store_baskets(wh))
            rules, wall_l, cpu_l = timed(lambda: basket_rules(wh, spec))
            assert rules == rules0, "the stored baskets changed the rules"
        row: dict[str, Any] = {
            "order_lines": n,
            "rules": len(rules),
            "loupe_s": wall_l,
            "loupe_cpu_s": cpu_l,
            "loupe_from_lines_s": wall_0,
            "loupe_from_lines_cpu_s": cpu_0,
            "baskets_build_s": build_s,
        }
        row["mlxtend_s"] = None
        if n <= mlx_max:
            try:
                ref, t_encode, t_mlx = mlxtend_rules(make_lines(n), spec)
            except MemoryError:
                row["mlxtend_error"] = "out of memory"
            else:
                row.update(
                    mlxtend_s=t_mlx,
                    mlxtend_encode_s=t_encode,
                    speedup=round(t_mlx / wall_l, 1),
                    speedup_from_lines=round((t_encode + t_mlx) / wall_0, 1),
                    same_rules=_rule_keys(ref) == _rule_keys(rules),
                )
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1M events, 200k lines: a smoke run")
    ap.add_argument("--events", type=int, default=50_000_000)
    ap.add_argument("--pandas-events", type=int, default=5_000_000)
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--mlxtend-max", type=int, default=10_000_000,
                    help="largest order-line count mlxtend is run on")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", default="events,pandas,rules",
                    help="which parts to (re)measure; the others are kept from --out")  # fmt: skip
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "analytics.json")
    args = ap.parse_args()
    if args.quick:
        args.events, args.pandas_events, args.lines, args.mlxtend_max = (
            1_000_000, 1_000_000, 200_000, 200_000
        )  # fmt: skip
    parts = set(args.parts.split(","))
    result: dict[str, Any] = {}
    if parts != {"events", "pandas", "rules"} and args.out.exists():
        result = json.loads(args.out.read_text())
        result.pop("loadavg_start", None)  # each part now records its own load
    result.update(
        machine=platform.platform(),
        cpus=os.cpu_count(),
        threads=args.threads,
        command="bench/bench_analytics.py" + (" --quick" if args.quick else ""),
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if "events" in parts:
        result["events"] = {"measured_at": stamp, "loadavg": _load()}
        result["events"].update(bench_events(args.events, args.threads, args.work))
        print(json.dumps(result["events"]), flush=True)
    if "pandas" in parts:
        result["funnel_vs_pandas"] = {"measured_at": stamp, "loadavg": _load()}
        result["funnel_vs_pandas"].update(bench_pandas(args.pandas_events, args.threads, args.work))
        print(json.dumps(result["funnel_vs_pandas"]), flush=True)
    if "rules" in parts:
        sizes = {200_000, 1_000_000, args.mlxtend_max, args.lines}
        load = _load()
        rows = bench_rules(sorted(s for s in sizes if s <= args.lines), args.mlxtend_max,
                           args.threads, args.work)  # fmt: skip
        result["basket"] = {"measured_at": stamp, "loadavg": load, "sizes": rows}
    result["loadavg_end"] = _load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
