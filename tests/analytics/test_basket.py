"""Market basket: rules equal mlxtend's fpgrowth + association_rules on the same baskets."""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import pytest
from mlxtend.frequent_patterns import association_rules as mlx_rules
from mlxtend.frequent_patterns import fpgrowth

from loupe.analytics import (
    BasketSpec,
    association_rules,
    basket_rules,
    basket_tables,
    bought_together,
)
from loupe.analytics.spec import Condition
from loupe.errors import LoupeError
from loupe.quality.baskets import store_baskets
from tests.analytics.conftest import canonical, put


def generated_lines(n_orders: int = 400, seed: int = 7) -> list[dict]:
    """Orders with planted co-purchases (a→b, c+d→e), duplicate lines and a long tail of
    products in about 1% of the orders each (below most thresholds: Apriori must skip them)."""
    rng = np.random.default_rng(seed)
    products = [f"P{i:02d}" for i in range(12)]
    tail = [f"T{i:02d}" for i in range(30)]
    rows = []
    for o in range(n_orders):
        k = rng.integers(1, 5)
        items = list(rng.choice(products, size=k, replace=True))  # repeats = duplicate lines
        if "P00" in items and rng.random() < 0.7:
            items.append("P01")
        if {"P02", "P03"} <= set(items) or rng.random() < 0.08:
            items += ["P02", "P03", "P04"] if rng.random() < 0.8 else ["P02", "P03"]
        if rng.random() < 0.3:
            items.append(rng.choice(tail))
        for line, p in enumerate(items):
            rows.append(
                {
                    "order_id": f"o{o}",
                    "source": "shop",
                    "line_no": line,
                    "product_id": str(p),  # mlxtend 0.25 fails on numpy strings
                    "quantity": 1,
                }
            )
    return rows


def reference(lines: list[dict], min_support: float, min_conf: float, max_len: int) -> dict:
    df = pd.DataFrame(lines)
    onehot = pd.crosstab(df["order_id"], df["product_id"]).astype(bool)
    itemsets = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=max_len)
    rules = mlx_rules(
        itemsets, num_itemsets=len(onehot), metric="confidence", min_threshold=min_conf
    )
    return {
        (tuple(sorted(r.antecedents)), tuple(sorted(r.consequents))): r
        for r in rules.itertuples(index=False)
    }


#: with the baskets stored as the quality stage leaves them, or grouped from the lines
STORED = pytest.mark.parametrize("stored", [False, True], ids=["from lines", "stored baskets"])


@STORED
@pytest.mark.parametrize(
    ("min_support", "min_conf", "max_len"), [(0.02, 0.1, 2), (0.01, 0.3, 3), (0.05, 0.1, 3)]
)
def test_rules_equal_mlxtend(wh, min_support, min_conf, max_len, stored):
    lines = generated_lines()
    put(wh, order_items=canonical("order_items", lines))
    if stored:
        store_baskets(wh)
    assert wh.exists("order_baskets") == stored
    spec = BasketSpec(min_support=min_support, min_confidence=min_conf, max_len=max_len)
    ours = {(tuple(r["antecedents"]), tuple(r["consequents"])): r for r in basket_rules(wh, spec)}
    ref = reference(lines, min_support, min_conf, max_len)
    assert set(ours) == set(ref)
    assert any(len(a) + len(c) == max_len for a, c in ours)
    if min_support >= 0.02:  # the long tail is in the baskets but in no rule
        assert not any(i.startswith("T") for a, c in ours for i in a + c)
    for key, r in ref.items():
        mine = ours[key]
        for metric in ("support", "confidence", "lift", "leverage"):
            assert mine[metric] == pytest.approx(getattr(r, metric), abs=1e-9, rel=1e-9)
        if math.isinf(r.conviction):
            assert mine["conviction"] is None
        else:
            assert mine["conviction"] == pytest.approx(r.conviction, abs=1e-9, rel=1e-9)


@STORED
def test_category_level_filter_and_bought_together(wh, stored):
    lines = [
        ("o1", "lip"), ("o1", "eye"), ("o1", "tee"),
        ("o2", "lip"), ("o2", "cream"),
        ("o3", "tee"), ("o3", "jeans"),
        ("o4", "lip"), ("o4", "eye"),
    ]  # fmt: skip
    put(
        wh,
        order_items=canonical(
            "order_items",
            # the lines' source differs from the orders' (two files), as in real exports
            [
                {"order_id": o, "source": "s_lines", "product_id": p, "quantity": 1}
                for o, p in lines
            ],
        ),
        products=canonical(
            "products",
            [
                {"product_id": p, "category": c}
                for p, c in [
                    ("lip", "美妆"),
                    ("eye", "美妆"),
                    ("cream", "美妆"),
                    ("tee", "服装"),
                    ("jeans", "服装"),
                ]
            ],
        ),
        orders=canonical(
            "orders",
            [
                {"order_id": o, "source": "s", "channel": ch}
                for o, ch in [("o1", "app"), ("o2", "app"), ("o3", "store"), ("o4", "store")]
            ],
        ),
    )
    if stored:
        store_baskets(wh)
    cat = basket_rules(wh, BasketSpec(min_support=0.2, min_confidence=0.1, level="category"))
    assert {(tuple(r["antecedents"]), tuple(r["consequents"])) for r in cat} == {
        (("美妆",), ("服装",)),
        (("服装",), ("美妆",)),
    }
    app = basket_rules(
        wh,
        BasketSpec(
            min_support=0.5, min_confidence=0.5, order_filter=(Condition("channel", "=", "app"),)
        ),
    )
    app_rules = {(tuple(r["antecedents"]), tuple(r["consequents"])): r for r in app}
    assert not any("jeans" in a + c for a, c in app_rules)  # a store-only product
    assert app_rules[(("cream",), ("lip",))]["confidence"] == 1.0
    assert app_rules[(("cream",), ("lip",))]["conviction"] is None
    tables = basket_tables(wh)
    assert ("order_baskets" in tables) == stored
    bt = wh.to_pandas(bought_together(tables, BasketSpec(), top=2, min_count=1))
    lip = bt[bt["item"] == "lip"].sort_values("rank")
    assert list(lip["other"]) == ["eye", "cream"]
    assert lip["confidence"].iloc[0] == pytest.approx(2 / 3)
    assert lip["lift"].iloc[0] == pytest.approx((2 / 3) / (2 / 4))
    sql = str(association_rules(tables, BasketSpec(max_len=3)).compile())
    assert "JOIN" in sql.upper()


def test_product_baskets_are_read_from_the_stored_table(wh):
    """A planted ``order_baskets`` in which every order holds both products changes the
    product rules, not the category ones (grouped from the lines); so the table is read."""
    lines = [("o1", "a"), ("o2", "b"), ("o3", "a"), ("o3", "b"), ("o4", "a")]
    put(
        wh,
        order_items=canonical(
            "order_items",
            [{"order_id": o, "source": "s", "product_id": p, "quantity": 1} for o, p in lines],
        ),
        products=canonical(
            "products", [{"product_id": p, "category": p.upper()} for p in ("a", "b")]
        ),
    )
    store_baskets(wh)
    codes = wh.to_pandas(wh.table("basket_items")).set_index("item")["code"]
    # the codes are dense and in item order; each stored basket holds its distinct codes
    assert codes.to_dict() == {"a": 0, "b": 1}
    stored = wh.to_pandas(wh.table("order_baskets")).set_index("bo")["items"]
    assert {o: sorted(v) for o, v in stored.items()} == {
        "o1": [0], "o2": [1], "o3": [0, 1], "o4": [0],
    }  # fmt: skip
    spec = BasketSpec(min_support=0.1, min_confidence=0.1)
    rule = {(tuple(r["antecedents"]), tuple(r["consequents"])): r for r in basket_rules(wh, spec)}
    assert rule[(("a",), ("b",))]["confidence"] == pytest.approx(1 / 3)
    planted = {"bs": ["s"] * 4, "bo": ["o1", "o2", "o3", "o4"], "items": [[0, 1]] * 4}
    wh.replace(
        "order_baskets",
        ibis.memtable(planted, schema={"bs": "string", "bo": "string", "items": "array<int32>"}),
    )
    rule = {(tuple(r["antecedents"]), tuple(r["consequents"])): r for r in basket_rules(wh, spec)}
    assert rule[(("a",), ("b",))]["confidence"] == 1.0
    cat = basket_rules(wh, BasketSpec(min_support=0.1, min_confidence=0.1, level="category"))
    assert [r["confidence"] for r in cat if r["antecedents"] == ["A"]] == [pytest.approx(1 / 3)]


def test_bad_thresholds():
    with pytest.raises(LoupeError, match="min_support"):
        BasketSpec(min_support=0)
    with pytest.raises(LoupeError, match="max_len"):
        BasketSpec(max_len=7)


def test_a_filter_without_orders_is_a_clear_error(wh):
    put(wh, order_items=canonical("order_items", generated_lines(20)))
    wh.drop("orders")
    with pytest.raises(LoupeError, match="orders table"):
        basket_rules(wh, BasketSpec(order_filter=(Condition("channel", "=", "app"),)))
