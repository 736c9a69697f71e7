"""Recommendations: engine co-occurrence and ALS beat popularity on planted preferences."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from loupe.analytics import RecommendSpec, evaluate, item_similarity, recommend
from tests.analytics.conftest import canonical, links, put

T0 = datetime(2024, 1, 1)


def planted(n_users: int = 500, n_items: int = 60, groups: int = 6, seed: int = 1):
    """Each customer prefers one group of products; a few popular items sell to everyone."""
    rng = np.random.default_rng(seed)
    per = n_items // groups
    taste = rng.integers(0, groups, n_users)
    n_orders = rng.integers(2, 8, n_users)
    u = np.repeat(np.arange(n_users), n_orders)
    day = rng.integers(0, 120, len(u))
    in_group = rng.random(len(u)) < 0.8
    item = np.where(
        in_group,
        taste[u] * per + rng.integers(0, per, len(u)),
        rng.zipf(1.6, len(u)).clip(1, n_items) - 1,
    )
    orders = [
        {"order_id": f"o{j}", "source": "shop", "user_id": f"u{uu}",
         "ordered_at": T0 + timedelta(days=int(d)), "amount": 10.0}
        for j, (uu, d) in enumerate(zip(u, day, strict=True))
    ]  # fmt: skip
    lines = [
        {
            "order_id": f"o{j}",
            "source": "shop_lines",  # a line file is a source of its own, as in real exports
            "line_no": 0,
            "product_id": f"p{it:02d}",
            "quantity": 1,
        }
        for j, it in enumerate(item)
    ]
    lk = {("user_id", f"u{i}"): f"c{i}" for i in range(n_users)}
    return orders, lines, lk


@pytest.fixture
def shop(wh):
    orders, lines, lk = planted()
    put(wh, orders=canonical("orders", orders), order_items=canonical("order_items", lines),
        identity_links=links(lk))  # fmt: skip
    return wh


@pytest.mark.slow
def test_both_models_beat_popularity(shop):
    scores = evaluate(shop, T0 + timedelta(days=80), k=5, factors=16, iterations=10)
    pop = scores["popularity"]
    for model in ("cooccurrence", "als"):
        assert scores[model]["precision"] > pop["precision"], scores
        assert scores[model]["recall"] > pop["recall"], scores
        assert scores[model]["coverage"] > pop["coverage"], scores


def test_similarity_and_table(shop):
    tables = {t: shop.table(t) for t in ("orders", "order_items", "identity_links")}
    from loupe.analytics import purchases

    sim = shop.to_pandas(item_similarity(purchases(tables), neighbours=3))
    assert sim.groupby("product_id").size().max() <= 3
    assert ((sim["score"] > 0) & (sim["score"] <= 1 + 1e-12)).all()
    n = recommend(shop, RecommendSpec(model="cooccurrence", k=3))
    n_pop = recommend(shop, RecommendSpec(model="popularity", k=3))
    recs = shop.to_pandas(shop.table("recommendations"))
    assert len(recs) == n + n_pop
    assert set(recs.columns) == {
        "customer_id",
        "product_id",
        "rank",
        "score",
        "model",
        "computed_at",
    }
    assert recs.groupby(["model", "customer_id"]).size().max() == 3
    bought = shop.to_pandas(purchases(tables))
    clash = recs.merge(
        bought, left_on=["customer_id", "product_id"], right_on=["person_id", "product_id"]
    )
    assert clash.empty  # never recommends what was already bought
    recommend(shop, RecommendSpec(model="cooccurrence", k=2))  # replaces only its own rows
    recs = shop.to_pandas(shop.table("recommendations"))
    assert len(recs[recs["model"] == "popularity"]) == n_pop
