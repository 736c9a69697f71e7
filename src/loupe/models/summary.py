"""Frequency / recency / T summaries of a transactions table, built as Ibis expressions.

The functions here only *build* expressions: ``(ibis.Table, spec) -> ibis.Table``.  They run
unchanged on DuckDB (the default), Spark or any other Ibis backend; :func:`execute_summary` is a
small convenience that executes one on a connection and returns the per-customer result.

Definitions (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):

* all purchases of one customer on one calendar day are one transaction, whose amount is the
  sum of that day's amounts;
* ``frequency`` is the number of *repeat* purchase days (purchase days minus one);
* ``recency`` is the time from the first to the last purchase day;
* ``T`` is the time from the first purchase day to the calibration end (inclusive day);
* ``monetary_value`` is the mean amount of the repeat purchase days (the first day excluded),
  0 for a customer without repeat purchases (Fader & Hardie 2013, "The Gamma-Gamma model of
  monetary value").

Times are measured in days and divided by the length of :data:`TimeUnit` (``week`` = 7 days,
``month`` = 365.25 / 12 days).

Speed: the summary is two plain hash aggregations (customer and day, then customer), with the
first day's amount taken by ``argmin`` (DuckDB ``arg_min_null``, see
:mod:`loupe.warehouse.functions`; Spark ``min_by``) rather than a window function, which
doubled the cost.  The models need even less than one row per customer:
:func:`summary_counts` groups customers with the same ``(frequency, recency, T)`` (times are
whole days, so 1M customers over a year share ~150k tuples) and :func:`repeat_spend` groups
the repeat customers by the two columns Gamma-Gamma reads, so only those small results leave
the engine when fitting (:func:`loupe.models.fit_clv_models`).

Repeatable: amounts are summed as ``decimal(18, 4)`` (to a ten-thousandth of the currency),
and the grouped results come sorted.  Summed as doubles, in whatever order the engine's
threads meet them, the last bits of ``monetary_value`` changed from run to run: at 1M
customers the distinct ``(frequency, monetary_value)`` pairs numbered 188,4xx-188,5xx and
Gamma-Gamma's ``p`` moved in its 8th digit, so a model retrained on the same orders got
another content hash.  Exact sums also merge the pairs that differed only by those bits
(132,459 pairs), which makes the Gamma-Gamma fit a little faster.  The whole change costs
0.06 s at 1M (summary and both fits: medians of 1.20 s against 1.15 s over ten alternating
runs), below the benchmark's noise (``docs/clv.md``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis import _

# compiles ``argmin`` to DuckDB's one-pass ``arg_min_null`` (imported for that side effect)
import loupe.warehouse.functions  # noqa: F401

TimeUnit = Literal["day", "week", "month"]

DAYS_PER_UNIT: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 365.25 / 12.0}

#: Amounts are summed as this exact type (see the module docstring); an amount it cannot
#: hold (100 trillion or more) counts as missing.
MONEY = "decimal(18, 4)"


@dataclass(frozen=True)
class SummarySpec:
    """What the summary builder needs to know about a transactions table.

    Parameters
    ----------
    calibration_end
        Last day (inclusive) of the calibration period.
    customer_col, date_col, amount_col
        Column names in the transactions table. ``amount_col`` may be ``None`` when no
        monetary value is wanted.
    time_unit
        Unit of ``recency``, ``T`` and holdout durations.
    holdout_end
        Last day (inclusive) of the holdout period, for :func:`holdout_summary`.
    """

    calibration_end: dt.date
    customer_col: str = "customer_id"
    date_col: str = "ordered_at"
    amount_col: str | None = "amount"
    time_unit: TimeUnit = "week"
    holdout_end: dt.date | None = None

    def __post_init__(self) -> None:
        if self.time_unit not in DAYS_PER_UNIT:
            raise ValueError(f"time_unit must be one of {sorted(DAYS_PER_UNIT)}")
        if self.holdout_end is not None and self.holdout_end <= self.calibration_end:
            raise ValueError("holdout_end must be after calibration_end")

    @property
    def days_per_unit(self) -> float:
        return DAYS_PER_UNIT[self.time_unit]


def purchase_days(
    transactions: ir.Table, spec: SummarySpec, *, until: dt.date | None = None
) -> ir.Table:
    """One row per customer and purchase day: ``customer_id, day, amount`` (the day's total),
    for days on or before ``until`` when given (filtered before grouping)."""
    day = transactions[spec.date_col].cast("date")
    amount = (
        transactions[spec.amount_col].try_cast(MONEY)
        if spec.amount_col is not None
        else ibis.literal(0, type=MONEY)
    )
    rows = transactions.select(customer_id=transactions[spec.customer_col], day=day, amount=amount)
    keep = rows.customer_id.notnull() & rows.day.notnull()
    if until is not None:
        keep = keep & (rows.day <= ibis.date(until))
    return rows.filter(keep).group_by(["customer_id", "day"]).aggregate(amount=_.amount.sum())


def rfm_summary(transactions: ir.Table, spec: SummarySpec) -> ir.Table:
    """Calibration-period summary, one row per customer.

    Columns: ``customer_id, frequency, recency, T, monetary_value, first_purchase``.
    Customers whose first purchase is after ``spec.calibration_end`` are not included.
    """
    end = ibis.date(spec.calibration_end)
    days = purchase_days(transactions, spec, until=spec.calibration_end)
    per = days.group_by("customer_id").aggregate(
        n_days=_.day.count(),
        first_purchase=_.day.min(),
        last_purchase=_.day.max(),
        total_amount=_.amount.sum(),
        first_amount=_.amount.argmin(_.day),
    )
    unit = spec.days_per_unit
    frequency = (per.n_days - 1).cast("int64")
    repeat_amount = (per.total_amount.fill_null(0) - per.first_amount.fill_null(0)).cast("float64")
    return per.select(
        "customer_id",
        frequency=frequency,
        recency=per.last_purchase.delta(per.first_purchase, unit="day").cast("float64") / unit,
        T=end.delta(per.first_purchase, unit="day").cast("float64") / unit,
        monetary_value=ibis.ifelse(frequency > 0, repeat_amount / frequency.cast("float64"), 0.0),
        first_purchase=per.first_purchase,
    )


def summary_counts(summary: ir.Table) -> ir.Table:
    """Distinct ``(frequency, recency, T)`` of a summary with ``n_customers`` each: all that
    BG/NBD and Pareto/NBD need (``fit(counts, weights=counts["n_customers"])``)."""
    counts = summary.group_by(["frequency", "recency", "T"]).aggregate(n_customers=_.count())
    return counts.order_by(["frequency", "recency", "T"])


def repeat_spend(summary: ir.Table) -> ir.Table:
    """Distinct ``(frequency, monetary_value)`` of the repeat customers with ``n_customers``
    each: all that Gamma-Gamma needs (``fit(spend, weights=spend["n_customers"])``).  With
    amounts in whole cents, the 465k repeat customers of the 1M-customer benchmark share ~132k
    pairs."""
    rep = summary.filter(summary.frequency > 0)
    spend = rep.group_by(["frequency", "monetary_value"]).aggregate(n_customers=_.count())
    return spend.order_by(["frequency", "monetary_value"])


def holdout_summary(transactions: ir.Table, spec: SummarySpec) -> ir.Table:
    """Holdout-period counts for the customers of the calibration summary.

    Columns: ``customer_id, frequency_holdout`` (purchase days in
    ``(calibration_end, holdout_end]``), ``monetary_value_holdout`` (their mean amount, 0 when
    none) and ``duration_holdout`` (the holdout length in ``spec.time_unit``).
    """
    if spec.holdout_end is None:
        raise ValueError("spec.holdout_end is required for a holdout summary")
    start, end = ibis.date(spec.calibration_end), ibis.date(spec.holdout_end)
    days = purchase_days(transactions, spec, until=spec.holdout_end)
    cohort = days.filter(days.day <= start).select("customer_id").distinct()
    hold = days.filter((days.day > start) & (days.day <= end))
    hold = hold.group_by("customer_id").aggregate(n=_.day.count(), total=_.amount.sum())
    joined = cohort.left_join(hold, cohort.customer_id == hold.customer_id)
    n = joined.n.fill_null(0).cast("int64")
    duration = (spec.holdout_end - spec.calibration_end).days / spec.days_per_unit
    return joined.select(
        customer_id=joined.customer_id,
        frequency_holdout=n,
        monetary_value_holdout=ibis.ifelse(
            n > 0, joined.total.cast("float64") / n.cast("float64"), 0.0
        ),
        duration_holdout=ibis.literal(duration, type="float64"),
    )


def calibration_holdout_summary(transactions: ir.Table, spec: SummarySpec) -> ir.Table:
    """:func:`rfm_summary` joined with :func:`holdout_summary` on ``customer_id``."""
    cal = rfm_summary(transactions, spec)
    hold = holdout_summary(transactions, spec).rename(hold_customer_id="customer_id")
    joined = cal.inner_join(hold, cal.customer_id == hold.hold_customer_id)
    return joined.drop("hold_customer_id")


def execute_summary(con: Any, expr: ir.Table) -> pd.DataFrame:
    """Execute a summary expression on ``con`` and index the result by ``customer_id``."""
    frame = con.execute(expr.order_by("customer_id"))
    return frame.set_index("customer_id")
