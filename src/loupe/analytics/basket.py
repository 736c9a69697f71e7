"""Market basket: frequent itemsets and association rules over order lines, in the engine.

A basket is the set of distinct items (products, or their categories) of one order in
``order_items``, held as one array per order.  Itemsets are counted level by level (Apriori):
level-*k* candidates are a frequent (k-1)-itemset of a basket extended by each later item of
the basket's array (``unnest`` of a filtered array; items compared in sorted order, so each
itemset is found once), kept only if every (k-1)-subset is frequent.  Grouping the lines into
arrays once replaced a self-join of the basket items on the two basket key columns and the
two distinct passes it needed (items per basket, baskets): 8.8 s → 5 s at 10M order lines.
Product baskets are read from ``order_baskets``, which the quality stage stores
(:mod:`loupe.quality.baskets`), when it exists: reading it takes the 10M-line rules query
from about 5 s to 1.4-1.7 s.  Category baskets, and product baskets while the table is
missing, are grouped from the lines.

For a rule ``A → C`` over ``N`` baskets, with ``s(X)`` the share of baskets containing X:

* support ``s(A ∪ C)``; confidence ``s(A ∪ C) / s(A)``; lift ``confidence / s(C)``;
* leverage ``s(A ∪ C) - s(A) s(C)``; conviction ``(1 - s(C)) / (1 - confidence)``, NULL
  (infinite) when confidence is 1.

These are the definitions of Agrawal, Imieliński & Swami (1993) and Brin et al. (1997), as
mlxtend's ``association_rules`` computes them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from loupe.analytics.people import Tables
from loupe.analytics.spec import Condition
from loupe.errors import LoupeError
from loupe.quality.baskets import coded_baskets, collect_items, product_lines

#: The tables a basket analysis reads; ``order_baskets`` and ``basket_items`` only when stored.
BASKET_TABLES = ("order_items", "orders", "products", "order_baskets", "basket_items")


def basket_tables(wh: Any) -> dict[str, ir.Table]:
    """The :data:`BASKET_TABLES` that ``wh`` holds, by name."""
    return {t: wh.table(t) for t in BASKET_TABLES if wh.exists(t)}


Level = Literal["product", "category"]
SEP = "\x1f"  # joins the items of an itemset into one key
MAX_LEN = 4


@dataclass(frozen=True)
class BasketSpec:
    """Thresholds and what an item is.

    Parameters
    ----------
    min_support
        Minimum share of baskets an itemset must appear in (0 < s ≤ 1).
    min_confidence
        Minimum confidence of a rule.
    max_len
        Largest itemset (2 = pairs, 3 = triples; at most 4).
    level
        ``"product"`` (``product_id``) or ``"category"`` (``products.category``).
    order_filter
        Conditions on ``orders`` columns (``channel=online``, ``status!=cancelled``) that
        choose which orders are baskets; empty means every order in ``order_items``.
    """

    min_support: float = 0.01
    min_confidence: float = 0.5
    max_len: int = 2
    level: Level = "product"
    order_filter: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.min_support <= 1:
            raise LoupeError(
                f"min_support must be in (0, 1], not {self.min_support}", where="--min-support"
            )
        if not 0 <= self.min_confidence <= 1:
            raise LoupeError(
                f"min_confidence must be in [0, 1], not {self.min_confidence}",
                where="--min-confidence",
            )
        if not 2 <= self.max_len <= MAX_LEN:
            raise LoupeError(
                f"max_len must be between 2 and {MAX_LEN}, not {self.max_len}", where="--max-len"
            )
        if self.level not in ("product", "category"):
            raise LoupeError(
                f"level must be product or category, not {self.level!r}", where="--level"
            )


def basket_lines(tables: Tables, spec: BasketSpec) -> ir.Table:
    """``(bs, bo, item)``: one row per chosen order line (an item may repeat in an order).

    A basket is keyed by two columns, ``bs`` (the order's source, ``''`` when NULL) and ``bo``
    (its ``order_id``), rather than by one concatenated string.
    """
    lines = product_lines(tables["order_items"])
    if spec.order_filter:
        lines = _chosen(lines, tables, spec)
    if spec.level == "category":
        products = tables["products"]
        cat = products.filter(products.category.notnull()).select(
            _pid=products.product_id, _cat=products.category
        )
        j = lines.join(cat, lines.item == cat._pid)
        return j.select("bs", "bo", item=j._cat)
    return lines


def _chosen(rows: ir.Table, tables: Tables, spec: BasketSpec) -> ir.Table:
    """The ``rows`` (lines or baskets, with ``bo``) of the orders ``spec.order_filter`` keeps."""
    if "orders" not in tables:
        raise LoupeError(
            "a basket filter reads the orders table, and the warehouse has none",
            where="--where",
            fix="load orders and run `loupe quality`, or drop --where",
        )
    orders = tables["orders"]
    cond = ibis.literal(True)
    for c in spec.order_filter:
        if c.key not in orders.columns:
            raise LoupeError(f"orders has no column {c.key!r}", where="basket filter")
        col = orders[c.key].cast("string")
        cond &= (col == c.value) if c.op == "=" else (col.isnull() | (col != c.value))
    # Lines meet their order on ``order_id`` alone: a line file is usually a source of its own
    # (``eshop_order_lines`` beside ``eshop_orders``), as the orphan-line check assumes.
    chosen = orders.filter(cond).select(_o=orders.order_id)
    return rows.semi_join(chosen, rows.bo == chosen._o).select(*rows.columns)


def baskets(tables: Tables, spec: BasketSpec, backend: str = "duckdb") -> ir.Table:
    """``(bs, bo, items)``: every chosen order with the array of its distinct items.

    Itemsets are counted from these arrays (unnested), not by joining order lines to the other
    lines of their order: one group-by over the lines replaces a self-join on the two basket
    key columns plus the two distinct passes (items per basket, baskets) it needed.
    """
    return collect_items(basket_lines(tables, spec), backend)


def _coded_baskets(tables: Tables, spec: BasketSpec, backend: str) -> tuple[ir.Table, ir.Table]:
    """:func:`baskets` with arrays of item codes, and the codes ``(_item, _code)``.

    Product baskets come from the stored ``order_baskets`` and ``basket_items`` when both are
    in ``tables``; otherwise the lines are grouped here.  A stored code may name a product that
    no chosen basket holds: it is never unnested, so it never counts.
    """
    if spec.level == "product" and "order_baskets" in tables and "basket_items" in tables:
        b = tables["order_baskets"]
        if spec.order_filter:
            b = _chosen(b, tables, spec)
        codes = tables["basket_items"]
        return b, codes.select(_item=codes.item, _code=codes.code)
    return coded_baskets(basket_lines(tables, spec), backend)


def _decode(level: ir.Table, cols: list[str], codes: ir.Table) -> ir.Table:
    """``level`` with its item-code columns ``cols`` replaced by the items."""
    for c in cols:
        d = codes.view()
        d = d.select(**{f"_c_{c}": d._code, f"_v_{c}": d._item})
        level = level.join(d, level[c] == d[f"_c_{c}"])
        level = level.drop(c, f"_c_{c}").rename(**{c: f"_v_{c}"})
    return level


def frequent_itemsets(tables: Tables, spec: BasketSpec, backend: str = "duckdb") -> ir.Table:
    """``(key, size, i1 … i<max_len>, count, support)`` for every frequent itemset.

    ``key`` joins the sorted items with ``\\x1f``; ``i<j>`` past ``size`` are NULL.
    """
    b, codes = _coded_baskets(tables, spec, backend)

    def frequent(counts: ir.Table) -> ir.Table:
        sup = counts["count"].cast("float64") / counts._n.cast("float64")
        return counts.mutate(support=sup).filter(sup >= spec.min_support)

    cols = [f"i{j}" for j in range(1, spec.max_len + 1)]
    one = b.select(i1=b.items.unnest())
    level = frequent(one.group_by("i1").agg(count=one.count()).cross_join(b.agg(_n=b.count())))
    levels = [level]
    # An instance is a frequent itemset in one basket, carried with the basket's items: the
    # next level appends each frequent item of the array that sorts after the instance's last
    # item (the array itself is unordered), so every itemset is found once, in sorted order.
    # Only baskets with two items or more can hold a pair.
    multi = b.filter(b.items.length() >= 2).cross_join(_frequent_flags(codes, level))
    # (a join is closed with a select: a lambda cannot capture a column of an open join)
    multi = multi.select("items", "_fl")
    inst = multi.select("items", "_fl", i1=multi.items.unnest())
    inst = inst.filter(inst._fl[inst.i1])
    for k in range(2, spec.max_len + 1):
        last, fl = inst[cols[k - 2]], inst._fl
        later = inst.items.filter(lambda z, last=last, fl=fl: (z > last) & fl[z])
        cand = inst.select("items", "_fl", *cols[: k - 1], **{cols[k - 1]: later.unnest()})
        # Apriori pruning: every (k-1)-subset must be frequent.  The one without i_k is, and
        # every item is a frequent one, so only triples and up need the check.
        for drop in range(1, k if k > 2 else 1):
            keep = [c for j, c in enumerate(cols[:k], start=1) if j != drop]
            pv = levels[-1].view()
            prev = pv.select(**{f"_p{j}": pv[cols[j]] for j in range(k - 1)})
            cand = cand.semi_join(prev, [cand[c] == prev[f"_p{j}"] for j, c in enumerate(keep)])
        counts = cand.group_by(*cols[:k]).agg(count=cand.count())
        n1 = levels[0].view()
        n1 = n1.select(_n1=n1.i1, _n=n1._n)
        level = frequent(counts.join(n1, counts.i1 == n1._n1).drop("_n1"))
        levels.append(level)
        lvv = level.view()
        lv = lvv.select(**{f"_l{j}": lvv[c] for j, c in enumerate(cols[:k])})
        on = [cand[c] == lv[f"_l{j}"] for j, c in enumerate(cols[:k])]
        inst = cand.semi_join(lv, on).select("items", "_fl", *cols[:k])
    parts = []
    for k, lv in enumerate(levels, start=1):
        lv = _decode(lv, cols[:k], codes)
        items = [lv[c] for c in cols[:k]]
        pad = {c: ibis.null("string") for c in cols[k:]}
        parts.append(
            lv.select(
                key=ibis.literal(SEP).join(items) if k > 1 else lv.i1,
                size=ibis.literal(k),
                **{c: lv[c] for c in cols[:k]},
                **pad,
                count=lv["count"],
                support=lv.support,
            )
        )
    return ibis.union(*parts, distinct=False)


def _frequent_flags(codes: ir.Table, level: ir.Table) -> ir.Table:
    """One row, ``_fl``: an array of booleans indexed by item code, true where the item is in
    ``level`` (the frequent items).

    The instances keep only frequent items by looking their codes up in it (the codes are
    dense, from 0).  A semi-join with the frequent items did the same, but DuckDB built its
    hash table on the 8.4M instances instead of the 200 items when the baskets were read
    from ``order_baskets``: 1.2 of the 2.1 s of the 10M-line rules query.
    """
    # Put in code order by sorting (code, flag) pairs: Spark cannot compile an ordered
    # collect.  (Testing each code against the list of frequent codes instead took 0.5 s for
    # 100k products with 1,500 frequent, and 11 s for 1M products with 5,000.)
    lv = level.view()
    freq = lv.select(_f=lv.i1)
    f = codes.left_join(freq, codes._code == freq._f)
    pairs = ibis.struct({"code": f._code, "frequent": f._f.notnull()}).collect()
    return f.agg(_fl=pairs.sort().map(lambda p: p.frequent))


def association_rules(tables: Tables, spec: BasketSpec, backend: str = "duckdb") -> ir.Table:
    """Rules ``A → C`` from the frequent itemsets with confidence ≥ ``min_confidence``.

    Columns: ``antecedents``, ``consequents`` (arrays of items), ``antecedent_support``,
    ``consequent_support``, ``support``, ``confidence``, ``lift``, ``leverage``,
    ``conviction`` (NULL where confidence is 1: infinite) and ``count``.
    """
    fi = frequent_itemsets(tables, spec, backend)
    sup = fi.select(_key=fi.key, _s=fi.support)
    parts = []
    for size in range(2, spec.max_len + 1):
        f = fi.filter(fi.size == size)
        pos = [f[f"i{j}"] for j in range(1, size + 1)]
        for r in range(1, size):
            for ante in itertools.combinations(range(size), r):
                cons = [j for j in range(size) if j not in ante]
                a_items, c_items = [pos[j] for j in ante], [pos[j] for j in cons]
                parts.append(
                    f.select(
                        antecedents=ibis.array(a_items),
                        consequents=ibis.array(c_items),
                        a_key=ibis.literal(SEP).join(a_items) if r > 1 else a_items[0],
                        c_key=ibis.literal(SEP).join(c_items) if len(cons) > 1 else c_items[0],
                        support=f.support,
                        count=f["count"],
                    )
                )
    if not parts:
        raise LoupeError("max_len must be at least 2", where="--max-len")
    rules = ibis.union(*parts, distinct=False)
    sa = sup.select(a_key=sup._key, antecedent_support=sup._s)
    sc = sup.select(c_key=sup._key, consequent_support=sup._s)
    j = rules.join(sa, "a_key").join(sc, "c_key")
    conf = j.support / j.antecedent_support
    out = j.select(
        "antecedents",
        "consequents",
        "antecedent_support",
        "consequent_support",
        "support",
        confidence=conf,
        lift=conf / j.consequent_support,
        leverage=j.support - j.antecedent_support * j.consequent_support,
        conviction=ibis.ifelse(
            conf >= 1.0, ibis.null("float64"), (1.0 - j.consequent_support) / (1.0 - conf)
        ),
        count="count",
    )
    return out.filter(out.confidence >= spec.min_confidence)


def bought_together(
    tables: Tables,
    spec: BasketSpec,
    top: int = 10,
    min_count: int = 2,
    backend: str = "duckdb",
) -> ir.Table:
    """``(item, other, rank, count, confidence, lift)``: the items most often in the same basket.

    For every item, the ``top`` other items by co-occurrence count (ties by lift), with the
    confidence ``P(other | item)`` and lift.  ``min_support``/``min_confidence`` are ignored:
    only ``min_count`` shared baskets are required.
    """
    b, codes = _coded_baskets(tables, spec, backend)
    n = b.agg(_n=b.count())
    one = b.select(_item=b.items.unnest())
    per_item = one.group_by("_item").agg(_c=one.count())
    multi = b.filter(b.items.length() >= 2)
    inst = multi.select("items", item=multi.items.unnest())
    others = inst.items.filter(lambda z: z != inst.item)
    pairs = inst.select("item", _o=others.unnest())
    pc = pairs.group_by(item=pairs.item, other=pairs._o).agg(count=pairs.count())
    pc = pc.filter(pc["count"] >= min_count)
    j = pc.join(per_item, pc.item == per_item._item).drop("_item").rename(item_count="_c")
    po = per_item.select(_other=per_item._item, other_count=per_item._c)
    j = j.join(po, j.other == po._other).drop("_other").cross_join(n)
    conf = j["count"].cast("float64") / j.item_count
    lift = conf / (j.other_count.cast("float64") / j._n)
    j = j.mutate(confidence=conf, lift=lift)
    w = ibis.window(group_by=j.item, order_by=[ibis.desc(j["count"]), ibis.desc(j.lift), j.other])
    j = j.mutate(rank=ibis.row_number().over(w) + 1)
    # codes sort as their items do, so ranking on them breaks ties as the items would
    return _decode(j.filter(j["rank"] <= top), ["item", "other"], codes).select(
        "item", "other", "rank", "count", "confidence", "lift"
    )


# -- running ------------------------------------------------------------------------------------


def basket_rules(wh: Any, spec: BasketSpec) -> list[dict[str, Any]]:
    """Run :func:`association_rules` on ``wh``; rules sorted by lift, then confidence.

    Items inside ``antecedents``/``consequents`` are sorted; ``conviction`` is ``None`` where
    it is infinite.
    """
    df = wh.to_pandas(association_rules(basket_tables(wh), spec, wh.backend))
    rules: list[dict[str, Any]] = []
    for r in df.itertuples(index=False):
        conv = r.conviction
        rules.append(
            {
                "antecedents": sorted(r.antecedents),
                "consequents": sorted(r.consequents),
                "antecedent_support": float(r.antecedent_support),
                "consequent_support": float(r.consequent_support),
                "support": float(r.support),
                "confidence": float(r.confidence),
                "lift": float(r.lift),
                "leverage": float(r.leverage),
                "conviction": None if conv is None or conv != conv else float(conv),
                "count": int(r.count),
            }
        )
    rules.sort(key=lambda d: (-d["lift"], -d["confidence"], d["antecedents"], d["consequents"]))
    return rules
