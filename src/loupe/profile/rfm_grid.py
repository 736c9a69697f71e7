"""RFM scores (1-5) and named groups over the customer features.

Scores are computed among *buyers* (customers with at least one purchase); other customers
get NULL scores and group.  With ``method = "quantile"`` a score is
``floor(5 * percent_rank) + 1`` (capped at 5), so customers with equal values share a score
and the lowest tied value scores 1; recency is ranked in reverse (the most recent buyers
score 5).  With ``method = "fixed"`` the scores come from the configured edges.  ``FM`` is
the rounded mean of the F and M scores, ``(F + M + 1) // 2``, and the group is the first rule
of ``[profile.rfm] groups`` whose R and FM ranges hold the customer's scores.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis import _

from loupe.profile.settings import RfmSettings

RFM_COLUMNS = ("r_score", "f_score", "m_score", "fm_score", "rfm_group")


def rfm_inputs(settings: RfmSettings) -> tuple[str, str]:
    """The feature columns used as F and M (all history, or the configured window)."""
    w = settings.window_days
    return ("frequency", "monetary") if w is None else (f"orders_{w}d", f"revenue_{w}d")


def _quantile_score(col: ir.NumericValue, buyer: ir.BooleanValue, descending: bool) -> Any:
    order = col.desc() if descending else col.asc()
    pr = ibis.percent_rank().over(group_by=buyer, order_by=order)
    score = ibis.least((pr * 5).floor().cast("int64") + 1, 5)
    return ibis.ifelse(buyer, score, ibis.null("int64"))


def _fixed_score(col: ir.NumericValue, edges: list[float], reverse: bool) -> Any:
    cases = [(col <= edge, (5 - i) if reverse else (i + 1)) for i, edge in enumerate(edges)]
    return ibis.cases(*cases, else_=1 if reverse else 5).cast("int64")


def rfm_scores(features: ir.Table, settings: RfmSettings) -> ir.Table:
    """``features`` plus ``r_score, f_score, m_score, fm_score, rfm_group``."""
    f_col, m_col = rfm_inputs(settings)
    t = features
    buyer = t.frequency.fill_null(0) > 0
    if settings.method == "quantile":
        # The three rank windows run on a narrow projection joined back by customer: a window
        # carries every column of its input through its sort, and the features have sixty.
        narrow = t.select("customer_id", "recency_days", f_col, m_col, buyer=buyer)
        ranks = narrow.select(
            "customer_id",
            r_score=_quantile_score(narrow.recency_days, narrow.buyer, descending=True),
            f_score=_quantile_score(narrow[f_col], narrow.buyer, descending=False),
            m_score=_quantile_score(narrow[m_col], narrow.buyer, descending=False),
        )
        joined = t.left_join(ranks, "customer_id")
        scored = joined.select(*t.columns, "r_score", "f_score", "m_score")
    else:
        r = ibis.ifelse(buyer, _fixed_score(t.recency_days, settings.recency_edges, True), None)
        f = ibis.ifelse(buyer, _fixed_score(t[f_col], settings.frequency_edges, False), None)
        m = ibis.ifelse(buyer, _fixed_score(t[m_col], settings.monetary_edges, False), None)
        scored = t.mutate(r_score=r, f_score=f, m_score=m)
    scored = scored.mutate(fm_score=((scored.f_score + scored.m_score + 1) // 2).cast("int64"))
    rs, fm = scored.r_score, scored.fm_score
    group = ibis.cases(
        *[
            ((rs >= g.r[0]) & (rs <= g.r[1]) & (fm >= g.fm[0]) & (fm <= g.fm[1]), g.group)
            for g in settings.groups
        ],
        else_=ibis.null("string"),
    )
    return scored.mutate(rfm_group=ibis.ifelse(buyer, group, ibis.null("string")))


def rfm_group_of(r: int, fm: int, settings: RfmSettings) -> str:
    """The group of one cell of the grid (pure Python, for reports and tests)."""
    for g in settings.groups:
        if g.r[0] <= r <= g.r[1] and g.fm[0] <= fm <= g.fm[1]:
            return g.group
    raise ValueError(f"no group covers R{r}/FM{fm}")  # the settings validator prevents this


def rfm_cells(features: ir.Table, settings: RfmSettings) -> ir.Table:
    """Customers and revenue per (r_score, fm_score, rfm_group) of scored features."""
    m_col = rfm_inputs(settings)[1]
    t = features.filter(features.r_score.notnull())
    return t.group_by(["r_score", "fm_score", "rfm_group"]).aggregate(
        customers=_.customer_id.count(), revenue=_[m_col].sum()
    )


def rfm_report(cells: pd.DataFrame, settings: RfmSettings) -> dict[str, Any]:
    """The grid and the groups with counts and revenue share, from :func:`rfm_cells`."""
    total_n = int(cells["customers"].sum()) if len(cells) else 0
    total_rev = float(cells["revenue"].sum()) if len(cells) else 0.0
    grid = []
    for r in range(5, 0, -1):
        row = []
        for fm in range(1, 6):
            hit = cells[(cells.r_score == r) & (cells.fm_score == fm)]
            n, rev = int(hit["customers"].sum()), float(hit["revenue"].sum())
            row.append(
                {
                    "r": r,
                    "fm": fm,
                    "group": rfm_group_of(r, fm, settings),
                    "customers": n,
                    "revenue_share": rev / total_rev if total_rev else 0.0,
                }
            )
        grid.append(row)
    groups = []
    seen = []
    for g in settings.groups:
        if g.group in seen:
            continue
        seen.append(g.group)
        hit = cells[cells.rfm_group == g.group]
        n, rev = int(hit["customers"].sum()), float(hit["revenue"].sum())
        groups.append(
            {
                "group": g.group,
                "customers": n,
                "share": n / total_n if total_n else 0.0,
                "revenue": rev,
                "revenue_share": rev / total_rev if total_rev else 0.0,
            }
        )
    return {
        "method": settings.method,
        "buyers": total_n,
        "revenue": total_rev,
        "grid": grid,
        "groups": groups,
    }
