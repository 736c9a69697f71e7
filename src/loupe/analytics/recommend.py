"""Product recommendations from the purchase history, with an offline evaluation.

Three models over the purchase matrix ``(person_id, product_id, n)``:

* ``cooccurrence`` (in the engine): item-item cosine similarity
  ``cos(i, j) = |buyers(i) ∩ buyers(j)| / sqrt(|buyers(i)| |buyers(j)|)``, keeping each
  item's ``neighbours`` most similar items; a customer's score for ``j`` is the sum of
  ``cos(i, j)`` over the items ``i`` they bought (Sarwar et al. 2001; Linden et al. 2003).
* ``als``: implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) with the
  ``implicit`` package; confidence ``1 + alpha * log1p(n)``.  The matrix is one row per
  (customer, product) pair, an aggregate small enough for NumPy.
* ``popularity`` (in the engine): the most-bought products, the baseline.

Items a customer already bought are never recommended.  :func:`evaluate` trains on purchases
before a cutoff and scores the next period: precision@k, recall@k (over the products each
customer bought after the cutoff and not before) and catalogue coverage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from loupe.analytics.people import Tables, order_people
from loupe.errors import LoupeError

Model = Literal["cooccurrence", "als", "popularity"]
MODELS: tuple[str, ...] = ("cooccurrence", "als", "popularity")

RECOMMENDATIONS: dict[str, str] = {
    "customer_id": "string",
    "product_id": "string",
    "rank": "int64",
    "score": "float64",
    "model": "string",
    "computed_at": "timestamp",
}


@dataclass(frozen=True)
class RecommendSpec:
    """Which model and how many products per customer.

    ``factors``, ``iterations``, ``regularization`` and ``alpha`` are ALS settings;
    ``neighbours`` bounds the item-item similarity list; ``pool`` is how many popular items
    the popularity model considers before removing what a customer already bought.
    """

    model: Model = "cooccurrence"
    k: int = 10
    neighbours: int = 50
    factors: int = 32
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 20.0
    pool: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise LoupeError(
                f"model must be one of {', '.join(MODELS)}, not {self.model!r}", where="--model"
            )
        if self.k < 1:
            raise LoupeError("k must be at least 1", where="--k")


def purchases(
    tables: Tables, since: datetime | None = None, until: datetime | None = None
) -> ir.Table:
    """``(person_id, product_id, n, first_at)``: lines bought per customer and product."""
    o = order_people(tables["orders"], tables["identity_links"])
    o = o.filter(o.person_id.notnull())
    if since is not None:
        o = o.filter(o.ordered_at >= since)
    if until is not None:
        o = o.filter(o.ordered_at < until)
    items = tables["order_items"]
    o = o.select(_oid=o.order_id, person_id=o.person_id, at=o.ordered_at)
    # on ``order_id`` alone: line files are usually a source of their own (see basket_lines)
    j = items.join(o, items.order_id == o._oid)
    j = j.filter(j.product_id.notnull())
    return j.group_by("person_id", "product_id").agg(n=j.count(), first_at=j.at.min())


def item_similarity(bought: ir.Table, neighbours: int = 50) -> ir.Table:
    """``(product_id, other, score)``: cosine similarity over buyers, top ``neighbours``."""
    b = bought.select("person_id", "product_id").distinct()
    buyers = b.group_by("product_id").agg(buyers=b.count())
    bv = b.view()
    x = bv.select(_p=bv.person_id, other=bv.product_id)
    pairs = b.join(x, (b.person_id == x._p) & (b.product_id != x.other))
    co = pairs.group_by("product_id", "other").agg(both=pairs.count())
    bi = buyers.select(_i=buyers.product_id, _ni=buyers.buyers)
    bv2 = buyers.view()
    bj = bv2.select(_j=bv2.product_id, _nj=bv2.buyers)
    co = co.join(bi, co.product_id == bi._i).join(bj, co.other == bj._j)
    co = co.mutate(score=co.both.cast("float64") / (co._ni.cast("float64") * co._nj).sqrt())
    w = ibis.window(group_by=co.product_id, order_by=[ibis.desc(co.score), co.other])
    co = co.mutate(_r=ibis.row_number().over(w))
    return co.filter(co._r < neighbours).select("product_id", "other", "score")


def _top_k(scored: ir.Table, bought: ir.Table, k: int) -> ir.Table:
    bv = bought.view()
    seen = bv.select(_p=bv.person_id, _i=bv.product_id)
    fresh = scored.anti_join(seen, [scored.person_id == seen._p, scored.product_id == seen._i])
    w = ibis.window(group_by=fresh.person_id, order_by=[ibis.desc(fresh.score), fresh.product_id])
    fresh = fresh.mutate(rank=ibis.row_number().over(w) + 1)
    return fresh.filter(fresh["rank"] <= k).select(
        customer_id=fresh.person_id,
        product_id=fresh.product_id,
        rank=fresh["rank"],
        score=fresh.score,
    )


def cooccurrence_recommendations(bought: ir.Table, spec: RecommendSpec) -> ir.Table:
    """``(customer_id, product_id, rank, score)`` from item-item cosine similarity."""
    sim = item_similarity(bought, spec.neighbours)
    hv = bought.view()
    h = hv.select("person_id", _i=hv.product_id)
    j = h.join(sim, h._i == sim.product_id)
    scored = j.group_by(person_id=j.person_id, product_id=j.other).agg(score=j.score.sum())
    return _top_k(scored, bought, spec.k)


def popularity_recommendations(bought: ir.Table, spec: RecommendSpec) -> ir.Table:
    """``(customer_id, product_id, rank, score)``: the most-bought products not yet bought."""
    pop = bought.group_by("product_id").agg(score=bought.person_id.nunique().cast("float64"))
    pop = pop.order_by([ibis.desc("score"), "product_id"]).limit(spec.pool)
    users = bought.select("person_id").distinct()
    return _top_k(users.cross_join(pop), bought, spec.k)


def als_recommendations(pairs: pd.DataFrame, spec: RecommendSpec) -> pd.DataFrame:
    """ALS (``implicit``) on a ``(person_id, product_id, n)`` frame; same columns as above."""
    try:
        from implicit.als import AlternatingLeastSquares
    except ImportError:  # pragma: no cover - depends on the install
        raise LoupeError(
            "the als model needs the implicit package",
            where="--model als",
            fix='pip install "loupe[recs]" (implicit), or use --model cooccurrence',
        ) from None
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    users = pd.Index(pairs["person_id"].unique())
    items = pd.Index(pairs["product_id"].unique())
    u, i = users.get_indexer(pairs["person_id"]), items.get_indexer(pairs["product_id"])
    conf = 1.0 + spec.alpha * np.log1p(pairs["n"].to_numpy(dtype=float))
    matrix = sp.csr_matrix((conf, (u, i)), shape=(len(users), len(items)), dtype=np.float32)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=spec.factors,
            iterations=spec.iterations,
            regularization=spec.regularization,
            random_state=spec.seed,
        )
        model.fit(matrix, show_progress=False)
        k = min(spec.k, len(items))
        ids, scores = model.recommend(
            np.arange(len(users)), matrix, N=k, filter_already_liked_items=True
        )
    rank = np.tile(np.arange(1, ids.shape[1] + 1), len(users))
    flat = ids.ravel()
    keep = flat >= 0
    return pd.DataFrame(
        {
            "customer_id": np.repeat(users.to_numpy(), ids.shape[1])[keep],
            "product_id": items.to_numpy()[flat[keep]],
            "rank": rank[keep].astype("int64"),
            "score": scores.ravel()[keep].astype(float),
        }
    )


def _run(wh: Any, bought: ir.Table, spec: RecommendSpec) -> pd.DataFrame:
    if spec.model == "als":
        return als_recommendations(
            wh.to_pandas(bought.select("person_id", "product_id", "n")), spec
        )
    fn = (
        cooccurrence_recommendations if spec.model == "cooccurrence" else popularity_recommendations
    )
    return wh.to_pandas(fn(bought, spec))


def _tables(wh: Any) -> dict[str, ir.Table]:
    return {t: wh.table(t) for t in ("orders", "order_items", "identity_links")}


def recommend(wh: Any, spec: RecommendSpec, table: str = "recommendations") -> int:
    """Compute top-k per customer and replace the rows of ``spec.model`` in ``table``.

    ``table`` has columns ``customer_id, product_id, rank, score, model, computed_at``.
    Returns the number of rows written.
    """
    from loupe.warehouse import utcnow
    from loupe.warehouse.schemas import schema

    recs = _run(wh, purchases(_tables(wh)), spec)
    recs = recs.assign(model=spec.model, computed_at=utcnow())
    new = ibis.memtable(recs[list(RECOMMENDATIONS)], schema=schema(RECOMMENDATIONS))
    if wh.exists(table):
        old = wh.table(table)
        new = ibis.union(
            old.filter(old.model != spec.model), new.cast(old.schema()), distinct=False
        )
    wh.replace(table, new)
    return len(recs)


def evaluate(
    wh: Any, cutoff: datetime, k: int = 10, models: tuple[str, ...] = MODELS, **settings: Any
) -> dict[str, dict[str, float]]:
    """Offline evaluation on a time split at ``cutoff``.

    Returns ``{model: {precision, recall, coverage, users}}``: the mean over evaluated
    customers (those who bought before and bought something new after the cutoff) of
    hits/k and hits/|new products|, and the share of the training catalogue recommended.
    """
    tables = _tables(wh)
    train = purchases(tables, until=cutoff)
    # one pass over all purchases: a pair is "new" when bought after the cutoff, not before,
    # by a customer who bought something before
    every = purchases(tables)
    late = purchases(tables, since=cutoff).select(_p="person_id", _i="product_id", _late="n")
    split = every.left_join(late, [every.person_id == late._p, every.product_id == late._i])
    split = split.mutate(_early=split.n - split._late.fill_null(0))
    active = (split._early > 0).cast("int64").max().over(group_by=split.person_id)
    split = split.mutate(_active=active)  # computed before filtering, not as QUALIFY
    new = split.filter((split._early == 0) & (split._active == 1))
    truth = wh.to_pandas(new.select("person_id", "product_id"))
    catalogue = wh.scalar(train.product_id.nunique())
    if truth.empty:
        raise LoupeError(
            "no customer bought anything new after the cutoff",
            where=str(cutoff),
            fix="choose an earlier cutoff",
        )
    relevant = truth.groupby("person_id")["product_id"].agg(set)
    out = {}
    for model in models:
        recs = _run(wh, train, RecommendSpec(model=model, k=k, **settings))  # type: ignore[arg-type]
        recs = recs[recs["customer_id"].isin(relevant.index)]
        got = recs.groupby("customer_id")["product_id"].agg(set).reindex(relevant.index)
        hits = np.array(
            [len(g & r) if isinstance(g, set) else 0 for g, r in zip(got, relevant, strict=True)]
        )
        sizes = relevant.map(len).to_numpy()
        out[model] = {
            "precision": float(np.mean(hits / k)),
            "recall": float(np.mean(hits / sizes)),
            "coverage": float(recs["product_id"].nunique() / max(int(catalogue), 1)),
            "users": len(relevant),
        }
    return out
