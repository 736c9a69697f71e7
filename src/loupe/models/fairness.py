"""Does a propensity score treat groups of customers alike?  Score distributions and the
selection rate of the targeted top decile per group, with the disparity ratio.

The selection rate of a group is the share of its scored customers in decile 1 (the tenth a
campaign targets).  The disparity ratio is the lowest rate over the highest, among groups with
at least ``min_group_size`` customers and a known value; below 0.8 it fails the "four-fifths
rule" of the US EEOC's Uniform Guidelines (29 CFR 1607.4 D), the usual first screen for
adverse impact.  A flag is a prompt to look at why, not a verdict: a churn score *should*
differ between groups whose churn differs.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from loupe.errors import LoupeError
from loupe.models.registry import get_model
from loupe.models.settings import FAIRNESS_ATTRIBUTES
from loupe.warehouse import Warehouse

FOUR_FIFTHS = 0.8
UNKNOWN = "unknown"
#: Age bands (lower bound inclusive, upper exclusive).
AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 18, "<18"),
    (18, 25, "18-24"),
    (25, 35, "25-34"),
    (35, 45, "35-44"),
    (45, 55, "45-54"),
    (55, 65, "55-64"),
    (65, 200, "65+"),
)
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def attribute_column(customers: ir.Table, attribute: str, on: date) -> ir.StringValue:
    """The group of each customer for ``attribute`` (``age_band``: age on day ``on``)."""
    if attribute == "age_band":
        born = customers.birth_date.cast("date")
        # Whole years lived (a calendar-year difference would age everyone on 1 January).
        not_yet = ibis.literal(on.month * 100 + on.day) < born.month() * 100 + born.day()
        years = on.year - born.year() - not_yet.cast("int64")
        band = ibis.cases(
            *[((years >= lo) & (years < hi), name) for lo, hi, name in AGE_BANDS],
            else_=UNKNOWN,
        )
        return ibis.ifelse(born.isnull(), UNKNOWN, band)
    value = customers[attribute].cast("string").strip()
    return ibis.ifelse(value.isnull() | (value == ""), UNKNOWN, value)


def selection_report(
    frame: pd.DataFrame,
    *,
    attribute: str,
    min_group_size: int = 30,
    threshold: float = FOUR_FIFTHS,
) -> dict[str, Any]:
    """Per-group score quantiles and top-decile selection rates, and the disparity ratio.

    ``frame`` has ``group``, ``score`` and ``decile`` (1 = targeted), one row per customer.
    """
    rows: list[dict[str, Any]] = []
    for group, part in frame.groupby("group", sort=True):
        scores = part["score"].to_numpy(dtype=np.float64)
        selected = int((part["decile"] == 1).sum())
        rows.append(
            {
                "group": str(group),
                "customers": len(part),
                "share": round(len(part) / len(frame), 6),
                "mean_score": round(float(scores.mean()), 6),
                "quantiles": {
                    f"p{round(q * 100)}": round(float(np.quantile(scores, q)), 6) for q in QUANTILES
                },
                "selected": selected,
                "selection_rate": round(selected / len(part), 6),
                "in_ratio": len(part) >= min_group_size and group != UNKNOWN,
            }
        )
    eligible = [r for r in rows if r["in_ratio"]]
    ratio: float | None = None
    low: dict[str, Any] | None = None
    high: dict[str, Any] | None = None
    if len(eligible) >= 2:
        low = min(eligible, key=lambda r: float(r["selection_rate"]))
        high = max(eligible, key=lambda r: float(r["selection_rate"]))
        top = float(high["selection_rate"])
        ratio = round(float(low["selection_rate"]) / top, 6) if top else None
    return {
        "attribute": attribute,
        "customers": len(frame),
        "selected": int((frame["decile"] == 1).sum()),
        "groups": rows,
        "disparity_ratio": ratio,
        "lowest_group": low["group"] if low else None,
        "highest_group": high["group"] if high else None,
        "threshold": threshold,
        "four_fifths_violated": ratio is not None and ratio < threshold,
        "min_group_size": min_group_size,
    }


def fairness_report(
    wh: Warehouse, model: str, *, by: str | None = None, min_group_size: int | None = None
) -> dict[str, Any]:
    """The fairness report of the latest scoring run of ``model`` by attribute ``by``."""
    settings = wh.settings.models.propensity
    attribute = by or settings.fairness_attribute
    if attribute not in FAIRNESS_ATTRIBUTES:
        raise LoupeError(
            f"cannot group customers by {attribute!r}",
            where="--by",
            fix=f"choose one of: {', '.join(FAIRNESS_ATTRIBUTES)}",
        )
    record = get_model(wh, model)
    if not wh.exists("model_scores"):
        raise LoupeError(
            f"model {record.name!r} has not been scored",
            where="model_scores",
            fix=f"run `loupe models score {record.name}`",
        )
    t = wh.table("model_scores")
    t = t.filter(t.version == record.version)
    t = t.filter(t.scored_at == t.scored_at.max().as_scalar())
    scored_at = wh.scalar(t.scored_at.max())
    if scored_at is None or scored_at != scored_at:
        raise LoupeError(
            f"model {record.version} has not been scored",
            where="model_scores",
            fix=f"run `loupe models score {record.name}`",
        )
    on = pd.Timestamp(scored_at).date()
    c = wh.table("customers")
    groups = c.select(_cid=c.customer_id, group=attribute_column(c, attribute, on))
    j = t.left_join(groups, t.customer_id == groups._cid)
    frame = wh.to_pandas(
        j.select("customer_id", "score", "decile", group=j.group.fill_null(UNKNOWN))
    )
    doc = selection_report(
        frame,
        attribute=attribute,
        min_group_size=min_group_size or settings.min_group_size,
    )
    return {"model": record.name, "version": record.version, "scored_at": scored_at, **doc}
