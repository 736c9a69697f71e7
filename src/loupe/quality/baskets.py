"""The baskets of ``order_items``, stored for market-basket analysis.

After each run the quality stage stores every order's distinct products as one array of
integer codes (``order_baskets``) with the codes' dictionary (``basket_items``), so that
frequent itemsets and rules (:mod:`loupe.analytics.basket`) count from the baskets instead of
grouping every order line again.  On 10M order lines (3.2M orders) the grouping, the array
building and the deduplication took about 4 of the 5 s of a rules query; from the stored
arrays the whole query takes 1.4-1.7 s, and building them about 5 s once per quality run
(``bench/bench_analytics.py --parts rules``).  mlxtend is likewise given its baskets built
beforehand, as a one-hot order × product frame.

Both tables are derived from ``order_items`` (:data:`loupe.warehouse.schemas.DERIVED_FROM`):
any write to it drops them, and the analyses group the lines themselves while they are missing.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from loupe.warehouse import Warehouse
from loupe.warehouse.schemas import BASKET_ITEMS, ORDER_BASKETS


def item_codes(lines: ir.Table) -> ir.Table:
    """``(_item, _code)``: each distinct ``item`` of ``lines`` with a dense ``int32`` code, in
    item order (so codes sort as their items do).

    Itemsets are counted on these codes, not on the item strings: at 10M order lines,
    deduplicating, unnesting and grouping integers instead of strings took the rules from
    5.2-6.2 s to 4.2-5.6 s (old and new alternating; ``bench/bench_analytics.py``).  The
    dictionary has one row per product (or category), so numbering it with a global window
    is cheap on Spark too.
    """
    d = lines.select(_item=lines.item).distinct()
    return d.mutate(_code=ibis.row_number().over(order_by=d._item).cast("int32"))


def collect_items(lines: ir.Table, backend: str) -> ir.Table:
    """``(bs, bo, items)``: the lines ``(bs, bo, item)`` grouped into one array of distinct
    items per basket, in ascending order.

    Items are never NULL here, so on DuckDB ``include_null`` drops a per-row filter (Spark's
    collect_list has none and Ibis refuses the flag there).  The array is made distinct
    afterwards: DuckDB's ``array_agg(DISTINCT …)`` took 6.7 of 7.9 s at 10M lines.  It is
    sorted so that a basket reads the same on every run and backend (DuckDB's
    ``list_distinct`` gives its items in no set order): 12.6-13.2 s against 10.6-11.0 s for
    the 8.97M baskets of the 1M-customer company, the same baskets as sets.
    """
    items = lines.item.collect(include_null=backend == "duckdb").unique().sort()
    return lines.group_by("bs", "bo").agg(items=items)


def product_lines(order_items: ir.Table) -> ir.Table:
    """``(bs, bo, item)``: the order lines with an order and a product; ``bs`` is the source
    (``''`` when NULL), ``bo`` the order id, ``item`` the product id."""
    t = order_items.filter(order_items.order_id.notnull() & order_items.product_id.notnull())
    return t.select(bs=t.source.fill_null(""), bo=t.order_id, item=t.product_id)


def coded_baskets(
    lines: ir.Table, backend: str, codes: ir.Table | None = None
) -> tuple[ir.Table, ir.Table]:
    """The baskets of ``lines`` as arrays of item codes, and the codes ``(_item, _code)``
    (:func:`item_codes` of ``lines`` unless given)."""
    codes = item_codes(lines) if codes is None else codes
    j = lines.join(codes, lines.item == codes._item)
    return collect_items(j.select("bs", "bo", item=j._code), backend), codes


def store_baskets(wh: Warehouse) -> None:
    """Write ``order_baskets`` and ``basket_items`` from the warehouse's ``order_items``.

    The codes are stored first and the baskets coded against the stored codes, so the two
    tables always agree (a window numbering is computed once, not once per table).
    """
    lines = product_lines(wh.table("order_items"))
    codes = item_codes(lines).select(item="_item", code="_code")
    stored = wh.replace("basket_items", codes.cast(BASKET_ITEMS))
    stored = stored.select(_item=stored.item, _code=stored.code)
    baskets, _ = coded_baskets(lines, wh.backend, stored)
    wh.replace("order_baskets", baskets.cast(ORDER_BASKETS))
