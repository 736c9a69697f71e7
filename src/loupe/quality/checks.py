"""Flags that need more than one row: robust outliers and cross-table consistency.

They run on the published (standardised, deduplicated) tables and add to ``quality_flags``;
no row is ever removed.

* Outliers, per numeric column ``x``: robust z = |x − median| / (1.4826 · MAD), flagged above
  ``quality.outlier_threshold``.  When MAD is 0 (more than half the values are equal) the
  scale falls back to 1.2533 · mean absolute deviation from the median; when that is 0 too,
  nothing is flagged.  Median and MAD are aggregates computed in the engine.
* ``amount_mismatch`` (orders): the amount differs from the sum of its lines
  Σ(quantity · unit_price − discount), and from that sum less the order-level discount, by more
  than ``quality.order_total_tolerance`` relative to the larger of the two.
* ``orphan_line`` (order_items): no order with the line's ``order_id``.
* ``before_first_seen`` (events): ``ts`` earlier than the earliest ``signup_at`` of the contacts
  with the same ``user_id``.
* ``clicks_exceed_impressions`` (marketing_spend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from loupe.quality.canonical import flag_array
from loupe.warehouse import schemas

if TYPE_CHECKING:
    from loupe.config import QualitySettings
    from loupe.warehouse import Warehouse

#: Numeric columns checked for outliers (amounts in base currency where there is one).
OUTLIER_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("amount_base", "discount"),
    "order_items": ("quantity", "unit_price", "discount"),
    "products": ("price_base",),
    "events": ("revenue",),
    "marketing_spend": ("spend_base", "impressions", "clicks"),
}

#: Tables with a cross-table check (:func:`_cross_checks`).
CROSS_CHECKED = ("orders", "order_items", "events", "marketing_spend")
#: Tables that get flags from :func:`apply_checks` (outliers or a cross-table check).
CHECKED: frozenset[str] = frozenset({*OUTLIER_COLUMNS, *CROSS_CHECKED})

MAD_SCALE = 1.4826
MEAN_AD_SCALE = 1.2533


@dataclass(frozen=True)
class RobustScale:
    """Median and robust scale of one column (``scale`` is None when it is degenerate)."""

    column: str
    median: float | None
    scale: float | None


@dataclass(frozen=True)
class CheckResult:
    """A cross-check on one column: rows it applied to and rows that failed it."""

    table: str
    column: str
    flag: str
    checked: int
    failed: int

    @property
    def passing_share(self) -> float | None:
        return None if self.checked == 0 else 1 - self.failed / self.checked


def _num(v: object) -> float | None:
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]
    return None if math.isnan(f) else f


def robust_scales(wh: Warehouse, t: ir.Table, columns: tuple[str, ...]) -> list[RobustScale]:
    """Median and robust scale of each column (three aggregate queries, whatever the size)."""
    cols = [c for c in columns if c in t.columns]
    if not cols:
        return []
    x = {c: t[c].cast("float64") for c in cols}
    medians = wh.to_pandas(t.aggregate(**{c: x[c].median() for c in cols})).iloc[0]
    med = {c: _num(medians[c]) for c in cols}
    live = [c for c in cols if med[c] is not None]
    if not live:
        return [RobustScale(c, None, None) for c in cols]
    dev = {c: (x[c] - med[c]).abs() for c in live}
    aggs = {f"mad_{c}": dev[c].median() for c in live}
    aggs.update({f"mean_{c}": dev[c].mean() for c in live})
    spread = wh.to_pandas(t.aggregate(**aggs)).iloc[0]
    out = []
    for c in cols:
        if c not in live:
            out.append(RobustScale(c, None, None))
            continue
        scale = MAD_SCALE * (_num(spread[f"mad_{c}"]) or 0.0)
        if scale == 0:
            scale = MEAN_AD_SCALE * (_num(spread[f"mean_{c}"]) or 0.0)
        out.append(RobustScale(c, med[c], scale or None))
    return out


def outlier_flags(
    t: ir.Table, scales: list[RobustScale], threshold: float
) -> dict[str, ir.BooleanValue]:
    flags: dict[str, ir.BooleanValue] = {}
    for s in scales:
        if s.median is None or s.scale is None:
            continue
        flags[f"outlier_{s.column}"] = (
            t[s.column].cast("float64") - s.median
        ).abs() > threshold * s.scale
    return flags


def _within(a: ir.NumericValue, b: ir.NumericValue, tol: float) -> ir.BooleanValue:
    return (a - b).abs() <= tol * ibis.greatest(a.abs(), b.abs())


def _cross_checks(
    tables: Mapping[str, ir.Table], table: str, t: ir.Table, settings: QualitySettings
) -> tuple[ir.Table, dict[str, tuple[str, ir.BooleanValue, ir.BooleanValue]]]:
    """``t`` joined with what its cross-checks need, and ``{flag: (column, applies, fails)}``."""
    checks: dict[str, tuple[str, ir.BooleanValue, ir.BooleanValue]] = {}
    if table == "orders" and "order_items" in tables:
        items = tables["order_items"]
        line = items.quantity * items.unit_price - items.discount.fill_null(0)
        lines = items.group_by(_lines_order_id=items.order_id).aggregate(_lines_total=line.sum())
        t = t.left_join(lines, t.order_id == lines._lines_order_id)
        applies = t._lines_order_id.notnull() & t.amount.notnull() & t._lines_total.notnull()
        tol = settings.order_total_tolerance
        ok = _within(t.amount, t._lines_total, tol) | _within(
            t.amount, t._lines_total - t.discount.fill_null(0), tol
        )
        checks["amount_mismatch"] = ("amount", applies, applies & ~ok)
    elif table == "order_items" and "orders" in tables:
        orders = tables["orders"]
        ids = orders.select(_order_found=orders.order_id).distinct()
        t = t.left_join(ids, t.order_id == ids._order_found)
        applies = t.order_id.notnull()
        checks["orphan_line"] = ("order_id", applies, applies & t._order_found.isnull())
    elif table == "events" and "contacts" in tables:
        c = tables["contacts"]
        c = c.filter(c.user_id.notnull() & c.signup_at.notnull())
        first = c.group_by(_seen_user=c.user_id).aggregate(_first_seen=c.signup_at.min())
        t = t.left_join(first, t.user_id == first._seen_user)
        applies = t._first_seen.notnull() & t.ts.notnull()
        checks["before_first_seen"] = ("ts", applies, applies & (t.ts < t._first_seen))
    elif table == "marketing_spend":
        applies = t.clicks.notnull() & t.impressions.notnull()
        checks["clicks_exceed_impressions"] = (
            "clicks",
            applies,
            applies & (t.clicks > t.impressions),
        )
    return t, checks


def apply_checks(
    wh: Warehouse, table: str, tables: Mapping[str, ir.Table], settings: QualitySettings
) -> tuple[ir.Table | None, list[RobustScale], list[CheckResult]]:
    """The published ``table`` with outlier and cross-check flags added (None: nothing to add).

    ``tables`` maps the names of the published tables to their expressions.
    """
    t = tables[table]
    scales = robust_scales(wh, t, OUTLIER_COLUMNS.get(table, ()))
    joined, checks = _cross_checks(tables, table, t, settings)
    flags = outlier_flags(joined, scales, settings.outlier_threshold)
    results: list[CheckResult] = []
    if checks:
        aggs = {}
        for i, (_column, applies, fails) in enumerate(checks.values()):
            aggs[f"a{i}"] = applies.fill_null(False).cast("int64").sum()
            aggs[f"f{i}"] = fails.fill_null(False).cast("int64").sum()
        row = wh.to_pandas(joined.aggregate(**aggs)).iloc[0]
        for i, (flag, (column, _a, fails)) in enumerate(checks.items()):
            results.append(
                CheckResult(
                    table, column, flag, int(_num(row[f"a{i}"]) or 0), int(_num(row[f"f{i}"]) or 0)
                )
            )
            flags[flag] = fails
    if not flags:
        return None, scales, results
    target = schemas.canonical_schema(table)
    new = joined.mutate(quality_flags=joined.quality_flags.concat(flag_array(flags)))
    return new.select(*target.names), scales, results
