"""Write model outputs into ``customer_features`` next to the behavioural features.

The profile stage rebuilds ``customer_features`` from scratch; model stages add their columns
(``clv_*``, ``score_<model>``, …) afterwards with :func:`merge_into_features`, which replaces
those columns if they are already there and keeps every customer (missing scores are null).
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from loupe.errors import LoupeError
from loupe.warehouse import Warehouse

FEATURES = "customer_features"


def merge_into_features(wh: Warehouse, values: ir.Table | Any, *, key: str = "customer_id") -> int:
    """Left-join ``values`` (one row per ``key``) onto ``customer_features``; return its rows.

    ``values`` is an Ibis table or a pandas DataFrame.  Columns of ``customer_features`` with
    the same names are replaced.
    """
    if not wh.exists(FEATURES):
        raise LoupeError(
            "customer_features does not exist yet",
            where=FEATURES,
            fix="run `loupe profile` (or `loupe run`) first",
        )
    table = values if isinstance(values, ir.Table) else ibis.memtable(values)
    if key not in table.columns:
        raise LoupeError(f"model output has no {key!r} column", where=FEATURES)
    new = [c for c in table.columns if c != key]
    base = wh.table(FEATURES)
    keep = [c for c in base.columns if c not in new]
    right = table.rename({"_mk": key})
    joined = base.select(keep).left_join(right, base[key] == right["_mk"]).drop("_mk")
    joined = joined.select(*keep, *new)
    # Materialise before replacing: the join reads the table being replaced.
    staged = wh.scratch("_features_merge", joined)
    wh.replace(FEATURES, staged)
    wh.drop("_features_merge")
    return wh.count(FEATURES)
