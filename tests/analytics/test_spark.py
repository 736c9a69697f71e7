"""The funnel and basket expressions give the same answer on PySpark as on DuckDB."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loupe.analytics import (
    BasketSpec,
    FunnelSpec,
    basket_rules,
    basket_tables,
    bought_together,
    funnel,
    parse_steps,
)
from loupe.quality.baskets import store_baskets
from loupe.warehouse import Warehouse
from tests.analytics.conftest import canonical, put
from tests.conftest import make_settings


@pytest.mark.spark
def test_funnel_and_rules_on_spark(tmp_path, wh):
    t0 = datetime(2024, 1, 1)
    seq = [("a", "A", 0), ("a", "B", 0), ("a", "B", 2), ("a", "C", 3), ("b", "A", 0), ("b", "B", 9)]
    ev = canonical("events", [
        {"event_id": str(i), "anonymous_id": p, "event": e, "ts": t0 + timedelta(hours=h)}
        for i, (p, e, h) in enumerate(seq)
    ])  # fmt: skip
    # baskets {x,y,z} (x on two lines), {x,y,z}, {x,y}, {x,z}, {y}: pairs and a triple
    orders = [("1", "x"), ("1", "y"), ("1", "z"), ("1", "x"), ("2", "z"), ("2", "y"),
              ("2", "x"), ("3", "y"), ("3", "x"), ("4", "x"), ("4", "z"), ("5", "y")]  # fmt: skip
    lines = canonical("order_items", [
        {"order_id": o, "source": "s", "line_no": i, "product_id": p, "quantity": 1}
        for i, (o, p) in enumerate(orders)
    ])  # fmt: skip
    spark = Warehouse.open(make_settings(tmp_path / "spark", warehouse={"backend": "pyspark"}))
    spec = FunnelSpec(parse_steps("A,B,C"), window=timedelta(hours=5))
    bspec = BasketSpec(min_support=0.3, min_confidence=0.5, max_len=3)

    def baskets(w: Warehouse) -> tuple[list, list]:
        bt = w.to_pandas(bought_together(basket_tables(w), bspec, min_count=1, backend=w.backend))
        return basket_rules(w, bspec), bt.sort_values(["item", "rank"]).to_dict("records")

    results = []
    for w in (wh, spark):
        put(w, events=ev, order_items=lines)
        from_lines = baskets(w)
        store_baskets(w)  # as the quality stage does: the same answers from the stored arrays
        assert baskets(w) == from_lines
        results.append(([s["count"] for s in funnel(w, spec).steps], *from_lines))
    assert results[0] == results[1]
    assert results[0][0] == [2, 1, 1]  # b: B is 9 h after A, outside the 5 h window
    triple = [r for r in results[0][1] if len(r["antecedents"]) + len(r["consequents"]) == 3]
    assert {r["count"] for r in triple} == {2}  # {x,y,z} in baskets 1 and 2
    # x shares 3 baskets with y and with z; z wins the tie on lift (1.25 against 0.94)
    assert [(r["item"], r["other"], r["count"]) for r in results[0][2] if r["item"] == "x"] == [
        ("x", "z", 3),
        ("x", "y", 3),
    ]


@pytest.mark.spark
def test_retention_on_spark(tmp_path, wh):
    """The period masks (``bit_or`` of shifted bits, several words) and the first-event
    channel (``argmin`` on a struct key) agree across engines."""
    from loupe.analytics import RetentionSpec, retention
    from tests.analytics.conftest import links
    from tests.analytics.test_retention import generated

    events, orders, lk = generated()
    spark = Warehouse.open(make_settings(tmp_path / "spark", warehouse={"backend": "pyspark"}))
    specs = [
        RetentionSpec(period="day", max_periods=100),
        RetentionSpec(period="week", action="purchase", mode="unbounded"),
        RetentionSpec(period="week", split="channel"),  # argmin on a struct key
    ]
    got = []
    for w in (wh, spark):
        put(w, events=canonical("events", events), orders=canonical("orders", orders),
            identity_links=links(lk))  # fmt: skip
        got.append([retention(w, s).reset_index(drop=True) for s in specs])
    for duck, spk in zip(*got, strict=True):
        assert len(duck) > 60 or duck["period"].max() > 0
        cols = ["cohort", "channel", "period", "cohort_size", "retained"]
        assert duck[cols].astype(str).values.tolist() == spk[cols].astype(str).values.tolist()
        assert list(duck["revenue"]) == pytest.approx(list(spk["revenue"]))


@pytest.mark.spark
def test_paths_on_spark(tmp_path, wh):
    """Paths in sessions, outside them, and across sessions in a window, with a tie in time
    and a person seen under two identifiers: the same on both engines (the keys are each
    engine's own 64-bit hashes)."""
    from loupe.analytics import PathSpec, paths
    from tests.analytics.conftest import links

    t0 = datetime(2024, 1, 1)
    rows = [
        ("e1", "a", None, "s1", "View", 0), ("e2", "a", None, "s1", "Cart", 1),
        ("e3", "a", None, "s1", "Buy", 1), ("e4", None, "u1", None, "View", 2),
        ("e5", None, "u1", None, "Home", 3), ("e6", "b", None, "a", "View", 0),
        ("e7", "b", None, "a", "Home", 9), ("e8", "c", None, None, "View", 4),
    ]  # fmt: skip
    ev = canonical("events", [
        {"event_id": i, "anonymous_id": a, "user_id": u, "session_id": s, "event": e,
         "ts": t0 + timedelta(minutes=m)}
        for i, a, u, s, e, m in rows
    ])  # fmt: skip
    lk = links({("anonymous_id", "a"): "c1", ("user_id", "u1"): "c1"})
    spark = Warehouse.open(make_settings(tmp_path / "spark", warehouse={"backend": "pyspark"}))
    specs = [PathSpec("View", max_len=3), PathSpec("View", max_len=3, window=timedelta(minutes=5))]
    got = []
    for w in (wh, spark):
        put(w, events=ev, identity_links=lk)
        docs = [paths(w, s) for s in specs]
        got.append([(_sorted(d["paths"]), _sorted(d["sankey"])) for d in docs])
    assert got[0] == got[1]
    in_session, in_window = ({dict(p)["path"]: dict(p)["count"] for p in g[0]} for g in got[0])
    assert in_session == {"Cart > Buy > (end)": 1, "Home > (end)": 2, "(end)": 1}
    assert in_window == {"Cart > Buy > View": 1, "Home > (end)": 1, "(end)": 2}


def _sorted(rows: list[dict]) -> list[tuple]:
    """Rows as sorted tuples: rows tied on the sort key may come in any order."""
    return sorted(tuple(sorted(r.items())) for r in rows)
