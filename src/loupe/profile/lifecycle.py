"""Lifecycle stages judged against each customer's own purchase cadence.

For a buyer, ``usual`` is their mean interval between purchase days when they have at least
``min_intervals`` intervals, else the median of that mean over such customers (the population
fallback), floored at ``min_usual_days``; ``ratio = recency_days / usual``.  First matching:

=============  ==================================================================  =====================
stage          condition                                                           since
=============  ==================================================================  =====================
prospect       no purchase yet                                                     first seen
churned        ratio > churned_ratio or recency > churned_after_days               the day it crossed
dormant        ratio > dormant_ratio                                               the day it crossed
at-risk        ratio > at_risk_ratio                                               the day it crossed
new            one purchase day, or first purchase within ``new_days``             first purchase
reactivated    the gap before the last purchase > dormant_ratio × the usual        last purchase
               interval before it (they came back after lapsing)
active         otherwise                                                           last purchase
=============  ==================================================================  =====================

Transitions are kept in ``lifecycle_history`` (customer_id, stage, since, computed_at): a row
is appended whenever a customer's stage differs from their latest row, so "became at-risk this
week" is ``stage == 'at-risk' and since >= today - 7d``.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import ibis
import ibis.expr.types as ir

from loupe.profile.settings import LifecycleSettings

Stage: TypeAlias = Literal[
    "prospect", "new", "active", "at-risk", "dormant", "churned", "reactivated"
]
STAGES: tuple[Stage, ...] = (
    "prospect",
    "new",
    "active",
    "reactivated",
    "at-risk",
    "dormant",
    "churned",
)
LIFECYCLE_COLUMNS = ("usual_interval", "lifecycle_stage", "lifecycle_since")
HISTORY_SCHEMA = ibis.schema(
    {"customer_id": "string", "stage": "string", "since": "date", "computed_at": "timestamp"}
)


def lifecycle_stages(features: ir.Table, settings: LifecycleSettings) -> ir.Table:
    """``features`` plus ``usual_interval``, ``lifecycle_stage`` and ``lifecycle_since``.

    ``features`` needs ``as_of, frequency, purchase_days, recency_days, first_purchase_at,
    last_purchase_at, interval_mean, n_intervals, last_interval, tenure_days``.
    """
    t = features
    s = settings
    enough = t.n_intervals >= s.min_intervals
    population = t.filter(enough).interval_mean.median().as_scalar()
    fallback = population.fill_null(30.0).cast("float64")
    usual = ibis.greatest(ibis.ifelse(enough, t.interval_mean, fallback), s.min_usual_days)
    n = t.n_intervals.cast("float64")
    prior = ibis.ifelse(
        t.n_intervals >= s.min_intervals + 1,
        (t.interval_mean * n - t.last_interval) / (n - 1),
        fallback,
    )
    prior = ibis.greatest(prior, s.min_usual_days)
    r = t.recency_days.cast("float64")
    ratio = r / usual
    last = t.last_purchase_at.date()
    first = t.first_purchase_at.date()

    def crossed(factor: float, cap: int | None = None) -> ir.DateValue:
        days = (usual * factor).floor().cast("int64") + 1
        if cap is not None:
            days = ibis.least(days, cap + 1)
        return last + days.as_interval("D")

    buyer = t.frequency.fill_null(0) > 0
    churned = (ratio > s.churned_ratio) | (r > s.churned_after_days)
    is_new = (t.purchase_days <= 1) | (t.as_of.cast("date").delta(first, unit="day") <= s.new_days)
    reactivated = t.last_interval.notnull() & (t.last_interval > s.dormant_ratio * prior)
    stage = ibis.cases(
        (~buyer, "prospect"),
        (churned, "churned"),
        (ratio > s.dormant_ratio, "dormant"),
        (ratio > s.at_risk_ratio, "at-risk"),
        (is_new, "new"),
        (reactivated, "reactivated"),
        else_="active",
    )
    since = ibis.cases(
        (~buyer, t.as_of.cast("date") - t.tenure_days.as_interval("D")),
        (churned, crossed(s.churned_ratio, s.churned_after_days)),
        (ratio > s.dormant_ratio, crossed(s.dormant_ratio)),
        (ratio > s.at_risk_ratio, crossed(s.at_risk_ratio)),
        (is_new, first),
        else_=last,
    )
    return t.mutate(
        usual_interval=ibis.ifelse(buyer, usual, ibis.null("float64")),
        lifecycle_stage=stage,
        lifecycle_since=since.cast("date"),
    )


def latest_stages(history: ir.Table) -> ir.Table:
    """``customer_id, stage, since``: each customer's latest row of ``lifecycle_history``."""
    w = ibis.window(
        group_by=history.customer_id,
        order_by=[history.computed_at.desc(), history.since.desc(), history.stage.desc()],
    )
    ranked = history.mutate(_rn=ibis.row_number().over(w))
    return ranked.filter(ranked._rn == 0).select("customer_id", "stage", "since")


def transitions(
    features: ir.Table, history: ir.Table, computed_at: ir.TimestampScalar | object
) -> ir.Table:
    """Rows to append to ``lifecycle_history``: customers whose stage changed (or is new)."""
    latest = latest_stages(history).rename(prev_id="customer_id", prev_stage="stage")
    cur = features.select("customer_id", stage="lifecycle_stage", since="lifecycle_since")
    j = cur.left_join(latest.drop("since"), cur.customer_id == latest.prev_id)
    changed = j.filter(j.prev_stage.isnull() | (j.prev_stage != j.stage))
    return changed.select(
        "customer_id",
        "stage",
        since=changed.since.cast("date"),
        computed_at=ibis.literal(computed_at, type="timestamp"),
    )
