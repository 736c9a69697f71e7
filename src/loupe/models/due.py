"""Next purchase per customer and category: who is due to buy again, and when.

Model
-----
Each customer's purchase days in a category (all purchases of one day are one purchase) give
the gaps between consecutive purchases, the *intervals*.  Intervals are positive and
right-skewed (a customer who usually buys monthly sometimes waits a quarter), so they are
modelled on the log scale: customer *i*'s log intervals are ``N(mu_i, sigma_w^2)``, i.e. a
log-normal renewal process.  On the log scale the customer's **mean** is the log of the
geometric mean interval, which, unlike the arithmetic mean, one long gap cannot drag far, and
``exp(mu)`` is the *median* interval.  The mean and the sum of squares are sufficient statistics
every engine computes exactly (a median is only approximate on Spark), and they give the
conjugate normal-normal shrinkage below in closed form.

The population's cadences in a category are ``mu_i ~ N(mu_0, tau^2)``.  With ``n_i`` intervals
and mean log interval ``m_i``, the posterior mean of a customer's cadence is the empirical-Bayes
(James-Stein / Buhlmann credibility) blend::

    w_i      = n_i / (n_i + k),         k = sigma_w^2 / tau^2
    mu_hat_i = w_i * m_i + (1 - w_i) * mu_0
    v_i      = tau^2 * (1 - w_i)                        (posterior variance of mu_i)

``mu_0``, ``sigma_w^2`` and ``tau^2`` are estimated per category by the method of moments
(Morris 1983, "Parametric empirical Bayes inference"): ``mu_0`` is the mean of the customers'
``m_i``, ``sigma_w^2`` the pooled within-customer variance ``sum SS_i / sum (n_i - 1)``, and
``tau^2 = var(m_i) - sigma_w^2 * mean(1 / n_i)`` (floored just above 0).  ``prior_intervals``
in the settings fixes ``k`` instead.  A customer with fewer than ``min_purchases`` purchases
gets ``w_i = 0``: the population's cadence.  Categories with fewer than
:data:`MIN_POPULATION` customers with an interval borrow the estimates of all categories pooled.

The next interval is predicted as ``log I ~ N(mu_hat_i, s_i^2 + v_i)``, where ``s_i^2`` is the
customer's own log variance pooled with the category's, the latter counting as
:data:`SPREAD_PRIOR_INTERVALS` intervals::

    s_i^2 = (SS_i + nu_0 * sigma_w^2) / (n_i - 1 + nu_0)

so a metronomic buyer gets a narrow interval and an erratic one a wide interval.  The expected
date is the last purchase plus the median ``exp(mu_hat_i)``; ``low_date``/``high_date`` add
``exp(mu_hat_i -/+ z * sd)`` with ``z`` the normal quantile of the configured coverage.

``basis`` says whose cadence the date rests on: ``population`` (``w_i = 0``), ``customer``
(``w_i >= 0.5``: the customer's own intervals weigh more) or ``blended``.

Everything per customer is built as Ibis expressions (window functions and aggregates) and runs
in the warehouse: nothing loops over customers in Python.  Only rows dated before the as-of day
are read, so data after it cannot change the result.

Caveat: the population is estimated from customers with at least one interval, who buy more
often than one-time buyers; a one-time buyer's expected date is therefore optimistic, which is
why campaigns should weigh ``basis``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from statistics import NormalDist
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
from ibis import _

from loupe.errors import LoupeError
from loupe.identity.attach import orders_with_customers
from loupe.models.settings import DueSettings
from loupe.warehouse import Warehouse, stage_run, utcnow

Progress = Callable[[str, int, int], None]
Level = Literal["category", "all"]
Basis = Literal["customer", "blended", "population"]

DUE = "purchase_due"
ALL = "all"
"""The ``category`` of every row when ``level = "all"``."""
MIN_POPULATION = 5
"""Customers with an interval a category needs for its own population estimates."""
SPREAD_PRIOR_INTERVALS = 4.0
"""How many intervals the category's spread counts for in a customer's own spread."""
TAU2_FLOOR = 1e-4
NOT_PURCHASE = ("cancelled", "canceled", "refunded", "returned")


@dataclass(frozen=True)
class DueSpec:
    """What a due-date computation needs.

    Parameters
    ----------
    as_of
        "Today": only purchases on days before it are read.
    level
        ``category`` (one row per customer and category) or ``all`` (per customer).
    min_purchases
        Purchases before a customer's own cadence counts.
    interval
        Coverage of ``low_date``..``high_date``.
    prior_intervals
        Fixed ``k`` of the blend; ``None`` estimates it per category.
    not_purchase_statuses
        Order statuses (lower case) that are not purchases.
    """

    as_of: date
    level: Level = "category"
    min_purchases: int = 2
    interval: float = 0.8
    prior_intervals: float | None = None
    not_purchase_statuses: tuple[str, ...] = NOT_PURCHASE

    def __post_init__(self) -> None:
        if not 0 < self.interval < 1:
            raise ValueError("interval must be between 0 and 1")
        if self.min_purchases < 2:
            raise ValueError("min_purchases must be at least 2")

    @classmethod
    def from_settings(
        cls,
        settings: DueSettings,
        as_of: date,
        not_purchase_statuses: tuple[str, ...] = NOT_PURCHASE,
    ) -> DueSpec:
        return cls(
            as_of=as_of,
            level=settings.level,
            min_purchases=settings.min_purchases,
            interval=settings.interval,
            prior_intervals=settings.prior_intervals,
            not_purchase_statuses=tuple(s.lower() for s in not_purchase_statuses),
        )

    @property
    def z(self) -> float:
        """Normal quantile of the two-sided interval."""
        return NormalDist().inv_cdf((1 + self.interval) / 2)

    @property
    def cutoff(self) -> datetime:
        return datetime.combine(self.as_of, dtime())


# -- expressions (pure: nothing is executed) ---------------------------------------------------
def purchase_days(
    orders: ir.Table, order_items: ir.Table, products: ir.Table, spec: DueSpec
) -> ir.Table:
    """``customer_id, category, day``: one row per customer, category and purchase day.

    ``orders`` carries ``customer_id`` (:func:`loupe.identity.attach.orders_with_customers`).
    Orders on or after the as-of day and orders whose status is not a purchase are left out.
    """
    status = orders.status.lower().strip().fill_null("")
    o = orders.filter(
        orders.customer_id.notnull(),
        orders.ordered_at < ibis.literal(spec.cutoff, type="timestamp"),
        ~status.isin(list(spec.not_purchase_statuses)),
    )
    if spec.level == ALL:
        rows = o.select("customer_id", category=ibis.literal(ALL), day=o.ordered_at.date())
        return rows.distinct()
    lines = order_items.select("order_id", "product_id")
    prods = products.select("product_id", category=products.category)
    j = o.select("order_id", "customer_id", "ordered_at").join(lines, "order_id")
    j = j.left_join(prods, "product_id")
    rows = j.select(
        "customer_id", category=j.category.fill_null("unknown"), day=j.ordered_at.date()
    )
    return rows.distinct()


def cadences(days: ir.Table) -> ir.Table:
    """Per customer and category: ``purchases, last_purchase, n_intervals, log_sum, log_ss``.

    ``log_sum`` is the sum of the log intervals (days) and ``log_ss`` their sum of squared
    deviations from the customer's mean.
    """
    w = ibis.window(group_by=[days.customer_id, days.category], order_by=days.day)
    gap = days.day.delta(days.day.lag().over(w), unit="day").cast("float64")
    logs = days.mutate(lg=gap.ln())
    per = logs.group_by(["customer_id", "category"]).aggregate(
        purchases=_.day.count(),
        last_purchase=_.day.max(),
        n_intervals=_.lg.count(),
        log_sum=_.lg.sum(),
        log_sq=(_.lg * _.lg).sum(),
    )
    n = per.n_intervals.cast("float64")
    ss = ibis.ifelse(per.n_intervals > 0, per.log_sq - per.log_sum * per.log_sum / n, 0.0)
    return per.select(
        "customer_id",
        "category",
        purchases=per.purchases.cast("int64"),
        last_purchase=per.last_purchase,
        n_intervals=per.n_intervals.cast("int64"),
        log_sum=per.log_sum.fill_null(0.0),
        log_ss=ibis.greatest(ss, 0.0),
    )


def population_cadence(cad: ir.Table, spec: DueSpec, *, pooled: bool = False) -> ir.Table:
    """The population's interval distribution per category (one row each, or one ``pooled``).

    Columns: ``category, customers`` (with an interval), ``mu`` (mean log cadence),
    ``within_var`` (``sigma_w^2``), ``between_var`` (``tau^2``), ``k`` (``sigma_w^2 /
    tau^2``).  See the module docstring for the estimators.
    """
    c = cad.filter(cad.n_intervals > 0)
    c = c.mutate(m=c.log_sum / c.n_intervals.cast("float64"))
    if pooled:
        c = c.mutate(category=ibis.literal(None, type="string"))
    agg = c.group_by("category").aggregate(
        customers=_.customer_id.count(),
        mu=_.m.mean(),
        var_m=_.m.var(how="sample"),
        inv_n=(1.0 / _.n_intervals.cast("float64")).mean(),
        ss=_.log_ss.sum(),
        dof=(_.n_intervals - 1).sum(),
    )
    within = ibis.ifelse(agg.dof > 0, agg.ss / agg.dof.cast("float64"), ibis.null("float64"))
    if spec.prior_intervals is not None:
        between = within / spec.prior_intervals
    else:
        between = ibis.greatest(agg.var_m.fill_null(0.0) - within * agg.inv_n, TAU2_FLOOR)
    out = agg.select(
        "category",
        customers=agg.customers.cast("int64"),
        mu=agg.mu,
        within_var=within,
        between_var=between,
    )
    return out.mutate(k=out.within_var / out.between_var)


def _prior(cad: ir.Table, spec: DueSpec) -> ir.Table:
    """Per category the estimates it uses: its own, or the pooled ones when it has too few
    customers with an interval (or none with two)."""
    own = population_cadence(cad, spec)
    pooled = population_cadence(cad, spec, pooled=True).drop("category")
    pooled = pooled.rename({f"p_{c}": c for c in pooled.columns})
    cats = cad.select("category").distinct()
    j = cats.left_join(own, cats.category == own.category).cross_join(pooled)
    usable = (j.customers >= MIN_POPULATION) & j.within_var.notnull()
    pick = {c: ibis.ifelse(usable, j[c], j[f"p_{c}"]) for c in ("mu", "within_var", "between_var")}
    return j.select(category=cats.category, **pick)


def _add_days(day: ir.DateValue, days: ir.NumericValue) -> ir.DateValue:
    n = ibis.greatest(days, 1.0).cast("int64")
    return (day + n.as_interval("D")).cast("date")


def due_dates(cad: ir.Table, spec: DueSpec, computed_at: datetime) -> ir.Table:
    """The ``purchase_due`` rows (plus ``as_of``) from :func:`cadences`."""
    prior = _prior(cad, spec)
    j = cad.left_join(prior, cad.category == prior.category)
    n = j.n_intervals.cast("float64")
    s2w, tau2, mu0 = j.within_var, j.between_var, j.mu
    own = (j.purchases >= spec.min_purchases) & (j.n_intervals > 0)
    w = ibis.ifelse(own, n / (n + s2w / tau2), 0.0)
    m = j.log_sum / ibis.greatest(n, 1.0)
    mu = w * m + (1.0 - w) * mu0
    nu0 = SPREAD_PRIOR_INTERVALS
    spread = ibis.ifelse(own, (j.log_ss + nu0 * s2w) / (n - 1.0 + nu0), s2w)
    sd = (spread + tau2 * (1.0 - w)).sqrt()
    z = spec.z
    basis = ibis.cases(
        (~own, "population"),
        (w >= 0.5, "customer"),
        else_="blended",
    )
    # Whole days inside the continuous interval: intervals are whole days, and a day is
    # inside when the rounded interval is, so rounding the bounds outwards over-covers.
    middle = mu.exp().round()
    return j.select(
        customer_id=j.customer_id,
        category=cad.category,
        last_purchase=j.last_purchase,
        expected_date=_add_days(j.last_purchase, middle),
        low_date=_add_days(j.last_purchase, ibis.least((mu - z * sd).exp().ceil(), middle)),
        high_date=_add_days(j.last_purchase, ibis.greatest((mu + z * sd).exp().floor(), middle)),
        purchases=j.purchases,
        basis=basis,
        computed_at=ibis.literal(computed_at, type="timestamp"),
        as_of=ibis.literal(spec.as_of, type="date"),
    )


def due_within(
    due: ir.Table, as_of: date, within_days: int, overdue_days: int | None = None
) -> ir.Table:
    """Who is due in the ``within_days`` days from ``as_of`` (that day included).

    A customer is listed when their expected date falls in that window, or passed less than
    ``overdue_days`` days ago (default: the window's length) while their interval is still
    open; those are flagged ``overdue``.  Customers further past their expected date are left
    out (a reminder list that kept everyone until the end of a wide interval grew to most of
    the customers), as are those whose whole interval passed: they have lapsed, for win-back
    and the churn model.  ``days_until`` is ``expected_date - as_of`` (negative when overdue).
    """
    overdue_days = within_days if overdue_days is None else overdue_days
    start = ibis.literal(as_of, type="date")
    end = ibis.literal(as_of + timedelta(days=within_days), type="date")
    since = ibis.literal(as_of - timedelta(days=overdue_days), type="date")
    d = due.filter(due.expected_date < end, due.expected_date >= since, due.high_date >= start)
    return d.select(
        "customer_id",
        "category",
        "last_purchase",
        "expected_date",
        "low_date",
        "high_date",
        "basis",
        "purchases",
        days_until=d.expected_date.delta(start, unit="day").cast("int64"),
        overdue=d.expected_date < start,
    ).order_by(["expected_date", "customer_id", "category"])


# -- on a warehouse ----------------------------------------------------------------------------
def due_spec(wh: Warehouse, as_of: date | None = None) -> DueSpec:
    """The :class:`DueSpec` of this project (default as-of: the day after the latest order)."""
    from loupe.profile.settings import profile_settings
    from loupe.profile.tables import default_as_of

    statuses = tuple(profile_settings(wh.settings).not_purchase_statuses)
    spec = DueSpec.from_settings(wh.settings.models.due, as_of or default_as_of(wh), statuses)
    if spec.level != ALL and (not wh.exists("order_items") or wh.count("order_items") == 0):
        # categories come from order lines: without any, one cadence per customer is what
        # there is (the category level listed nobody for a project of orders alone)
        spec = replace(spec, level="all")
    return spec


def due_inputs(wh: Warehouse) -> dict[str, ir.Table]:
    """``orders`` (with ``customer_id``), ``order_items`` and ``products``."""
    return {
        "orders": orders_with_customers(wh.table("orders"), wh.table("identity_links")),
        "order_items": wh.table("order_items"),
        "products": wh.table("products"),
    }


def build_due(wh: Warehouse, spec: DueSpec, *, store: bool = True) -> tuple[ir.Table, ir.Table]:
    """Compute the due dates as of ``spec.as_of``; ``(due rows, population per category)``.

    With ``store`` the rows replace ``purchase_due``; otherwise they live in a work table of
    this connection (a what-if at another date leaves the stored list alone).
    """
    t = due_inputs(wh)
    days = purchase_days(t["orders"], t["order_items"], t["products"], spec)
    cad = wh.scratch("due_work_cadences", cadences(days))
    rows = due_dates(cad, spec, utcnow())
    due = wh.replace(DUE, rows) if store else wh.scratch("due_work_rows", rows)
    return due, population_cadence(cad, spec)


def _population_doc(wh: Warehouse, pop: ir.Table) -> list[dict[str, Any]]:
    df = wh.to_pandas(pop.order_by("category"))
    out = []
    for r in df.itertuples(index=False):
        ok = r.mu == r.mu and r.within_var == r.within_var
        out.append(
            {
                "category": r.category,
                "customers": int(r.customers),
                "median_interval_days": round(math.exp(r.mu), 1) if r.mu == r.mu else None,
                "within_log_sd": round(math.sqrt(r.within_var), 3) if ok else None,
                "between_log_sd": round(math.sqrt(r.between_var), 3) if ok else None,
                "prior_intervals": round(float(r.k), 2) if ok else None,
            }
        )
    return out


def run_due(
    wh: Warehouse, progress: Progress | None = None, *, as_of: date | None = None
) -> dict[str, Any]:
    """Recompute ``purchase_due`` (the ``loupe run`` step); return a summary.

    Keys: ``as_of``, ``level``, ``rows``, ``customers``, ``basis`` (rows per basis),
    ``population`` (per category: customers with an interval, median interval in days, log
    spreads within and between customers, the blend's ``k``) and ``seconds``.
    """
    start = time.perf_counter()
    spec = due_spec(wh, as_of)
    if progress:
        progress("due dates", 0, 2)
    inputs = ["orders", "order_items", "products", "identity_links"]
    with stage_run(wh, "due", inputs, [DUE]) as run:
        due, pop = build_due(wh, spec)
        if progress:
            progress("due dates", 1, 2)
        counts = wh.to_pandas(due.group_by("basis").aggregate(n=_.customer_id.count()))
        customers = wh.count(due.select("customer_id").distinct())
        run.rows_out = int(counts["n"].sum()) if len(counts) else 0
        run.rows_in = customers
        population = _population_doc(wh, pop)
    if progress:
        progress("due dates", 2, 2)
    return {
        "as_of": spec.as_of,
        "level": spec.level,
        "interval": spec.interval,
        "rows": run.rows_out,
        "customers": customers,
        "basis": {str(b): int(n) for b, n in zip(counts["basis"], counts["n"], strict=True)},
        "population": population,
        "seconds": round(time.perf_counter() - start, 3),
    }


def stored_as_of(wh: Warehouse) -> date | None:
    """The as-of day of the stored ``purchase_due`` (``None`` when empty or never computed)."""
    if not wh.exists(DUE):
        return None
    t = wh.table(DUE)
    if "as_of" not in t.columns or wh.count(t) == 0:
        return None
    return _as_date(wh.scalar(t.as_of.max()))


def due_list(
    wh: Warehouse,
    within_days: int,
    *,
    overdue_days: int | None = None,
    category: str | None = None,
    as_of: date | None = None,
    refresh: bool = False,
    limit: int | None = None,
) -> dict[str, Any]:
    """Who is due within ``within_days`` days: the list campaigns trigger on.

    Reads the stored ``purchase_due``.  It is (re)computed and stored first when ``refresh``
    is set or when nothing is stored yet; an ``as_of`` other than the stored one is computed
    for this call only (a look back in time) unless ``refresh`` stores it.

    Returns ``{"as_of", "within_days", "overdue_days", "count", "overdue", "customers":
    [...]}``; ``count`` is every customer due, ``customers`` the first ``limit`` of them by
    expected date.  ``overdue_days`` defaults to ``within_days`` (see :func:`due_within`).
    """
    if within_days < 1:
        raise LoupeError(
            f"the window must be at least one day, not {within_days}",
            where="--within",
            fix="write e.g. 14d or 2w",
        )
    overdue_days = within_days if overdue_days is None else overdue_days
    if overdue_days < 0:
        raise LoupeError(
            f"the overdue window cannot be negative, not {overdue_days}",
            where="--overdue",
            fix="write e.g. 7d, or 0 for upcoming purchases only",
        )
    stored = stored_as_of(wh)
    if refresh or stored is None:
        spec = due_spec(wh, as_of)
        due, _pop = build_due(wh, spec, store=True)
    elif as_of is not None and as_of != stored:
        spec = due_spec(wh, as_of)
        due, _pop = build_due(wh, spec, store=False)
    else:
        spec = due_spec(wh, stored)
        due = wh.table(DUE)
    if category is not None:
        known = wh.to_pandas(due.select("category").distinct())["category"].tolist()
        if category not in known:
            raise LoupeError(
                f"no due dates for the category {category!r}",
                where="--category",
                fix="categories are: " + ", ".join(sorted(str(c) for c in known)),
            )
        due = due.filter(due.category == category)
    listed = due_within(due, spec.as_of, within_days, overdue_days)
    totals = wh.to_pandas(
        listed.aggregate(n=_.customer_id.count(), late=_.overdue.sum().fill_null(0))
    )
    rows = wh.to_pandas(listed.limit(limit) if limit is not None else listed)
    customers = []
    for r in rows.to_dict("records"):
        for key in ("last_purchase", "expected_date", "low_date", "high_date"):
            r[key] = _as_date(r[key])
        r["days_until"] = int(r["days_until"])
        r["purchases"] = int(r["purchases"])
        r["overdue"] = bool(r["overdue"])
        customers.append(r)
    return {
        "as_of": spec.as_of,
        "within_days": within_days,
        "overdue_days": overdue_days,
        "category": category,
        "count": int(totals["n"].iloc[0]),
        "overdue": int(totals["late"].iloc[0]),
        "customers": customers,
    }


def _as_date(value: Any) -> date | None:
    if value is None or value != value:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
