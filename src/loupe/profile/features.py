"""Customer features as of a date: pure Ibis builders ``(tables, spec) -> ibis.Table``.

Every builder reads only rows dated before ``spec.cutoff`` (midnight UTC at the start of
``spec.as_of``), so a snapshot for a past date is exactly what was knowable then.  The inputs
are the canonical tables with a ``customer_id`` already attached to orders and events
(:func:`loupe.profile.tables.profile_tables` does that through ``identity_links``).

Columns of :func:`customer_features` (one row per customer known before the cutoff):

* purchases (orders whose status is not in ``not_purchase_statuses``): ``frequency``,
  ``purchase_days``, ``monetary``, ``aov``, ``first_purchase_at``, ``last_purchase_at``,
  ``recency_days``, ``orders_<N>d`` / ``revenue_<N>d`` per window;
* cadence: ``interval_mean``, ``interval_std`` (days between purchase days, sample std),
  ``cadence_ratio`` = recency_days / interval_mean;
* ``tenure_days`` since first seen (golden record) or first purchase, whichever is earlier;
  ``purchase_rate`` = purchases per 365 days since the first purchase (at least 30 days);
* shares of purchases: ``discount_share`` (coupon or discount), ``online_share`` /
  ``app_share`` / ``store_share`` (``orders.channel`` web/online, app, store/pos),
  ``night_share`` (22-05 local), ``morning_share`` (05-12), ``afternoon_share`` (12-17),
  ``evening_share`` (17-22); ``return_rate`` = returned or refunded / (purchases + those);
* affinity: ``cat_share_<category>`` of line spend, ``top_category``/``top_category_share``,
  ``top_brand``/``top_brand_share``;
* activity: ``events_<N>d``, ``sessions_<N>d``; engagement over ``engagement_days``:
  ``email_opens``, ``email_clicks``, ``push_opens``, ``email_click_rate`` (clicks / opens).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis import _

from loupe.profile.settings import ProfileSettings

Tables = Mapping[str, ir.Table]

CHANNEL_GROUPS: dict[str, tuple[str, ...]] = {
    "online": ("web", "online", "pc", "mobile_web", "h5", "wap", "eshop", "miniprogram"),
    "app": ("app", "ios", "android"),
    "store": ("store", "pos", "offline", "retail"),
}
DAY_PARTS = ("night", "morning", "afternoon", "evening")
EMAIL_OPENED, EMAIL_CLICKED, PUSH_OPENED = (
    "Email Opened",
    "Email Link Clicked",
    "Push Notification Opened",
)
EMAIL_DELIVERED, PUSH_RECEIVED = ("Email Delivered", "Push Notification Received")
"""The denominators of the open rates (Segment's e-mail and push event names)."""


@dataclass(frozen=True)
class FeatureSpec:
    """What the feature builders need to know.

    Parameters
    ----------
    as_of
        Features use rows dated strictly before midnight (UTC) at the start of this day.
    windows, activity_windows
        Day windows of the order counts/revenue and of the event/session counts.
    categories
        Categories that get a ``cat_share_<category>`` column (usually every category in
        ``products``).
    utc_offset_minutes
        Offset of the project's time zone, for the local hour of day.
    """

    as_of: date
    windows: tuple[int, ...] = (30, 90, 365)
    activity_windows: tuple[int, ...] = (7, 30, 90)
    engagement_days: int = 90
    categories: tuple[str, ...] = ()
    not_purchase_statuses: tuple[str, ...] = ("cancelled", "canceled", "refunded", "returned")
    return_statuses: tuple[str, ...] = ("refunded", "returned")
    utc_offset_minutes: int = 480
    session_gap_minutes: int = 30
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_settings(
        cls,
        settings: ProfileSettings,
        as_of: date,
        *,
        categories: Sequence[str] = (),
        utc_offset_minutes: int = 480,
    ) -> FeatureSpec:
        windows = set(settings.windows)
        if settings.rfm.window_days:
            windows.add(settings.rfm.window_days)
        return cls(
            as_of=as_of,
            windows=tuple(sorted(windows)),
            activity_windows=tuple(settings.activity_windows),
            engagement_days=settings.engagement_days,
            categories=tuple(categories),
            not_purchase_statuses=tuple(s.lower() for s in settings.not_purchase_statuses),
            return_statuses=tuple(s.lower() for s in settings.return_statuses),
            utc_offset_minutes=utc_offset_minutes,
            session_gap_minutes=settings.session_gap_minutes,
        )

    @property
    def cutoff(self) -> datetime:
        return datetime.combine(self.as_of, time())

    def since(self, days: int) -> ir.TimestampScalar:
        return ibis.literal(self.cutoff - timedelta(days=days), type="timestamp")


def category_column(category: str) -> str:
    """``cat_share_<slug>``: the feature column of a category's share of spend."""
    slug = re.sub(r"\W+", "_", category.strip().lower()).strip("_") or "unknown"
    return f"cat_share_{slug}"


def _cutoff(spec: FeatureSpec) -> ir.TimestampScalar:
    return ibis.literal(spec.cutoff, type="timestamp")


def _days_before(spec: FeatureSpec, day: ir.DateValue) -> ir.IntegerValue:
    return ibis.date(spec.as_of).delta(day, unit="day").cast("int64")


# -- orders -----------------------------------------------------------------------------------
def order_facts(orders: ir.Table, spec: FeatureSpec) -> ir.Table:
    """One row per order of a known customer before the cutoff, with derived flags.

    Columns: ``customer_id, order_id, ordered_at, day, amount, is_purchase, is_return,
    has_discount, channel_group, day_part``.
    """
    o = orders.filter(orders.customer_id.notnull(), orders.ordered_at < _cutoff(spec))
    amount = o.amount_base.coalesce(o.amount) if "amount_base" in o.columns else o.amount
    status = o.status.lower().strip().fill_null("")
    coupon = o.coupon_code.strip().fill_null("") if "coupon_code" in o.columns else ibis.literal("")
    discount = o.discount.fill_null(0.0) if "discount" in o.columns else ibis.literal(0.0)
    channel = o.channel.lower().strip().fill_null("")
    group = ibis.cases(
        *[(channel.isin(list(names)), name) for name, names in CHANNEL_GROUPS.items()],
        else_="other",
    )
    hour = (o.ordered_at + ibis.interval(minutes=spec.utc_offset_minutes)).hour()
    part = ibis.cases(
        ((hour >= 22) | (hour < 5), "night"),
        (hour < 12, "morning"),
        (hour < 17, "afternoon"),
        else_="evening",
    )
    return o.select(
        customer_id=o.customer_id,
        order_id=o.order_id,
        ordered_at=o.ordered_at,
        day=o.ordered_at.date(),
        amount=amount.fill_null(0.0).cast("float64"),
        is_purchase=~status.isin(list(spec.not_purchase_statuses)),
        is_return=status.isin(list(spec.return_statuses)),
        has_discount=(coupon != "") | (discount > 0),
        channel_group=group,
        day_part=part,
    )


def purchase_features(facts: ir.Table, spec: FeatureSpec) -> ir.Table:
    """RFM, windows, shares, return rate and purchase cadence per customer, in one pass.

    One window (each order's previous purchase day) and one aggregate over
    :func:`order_facts`: the gaps between consecutive purchases that are not zero are exactly
    the intervals between consecutive purchase days, so ``purchase_days`` (1 + their count),
    ``interval_mean``, ``interval_std`` (sample), ``n_intervals`` and ``last_interval`` (the
    gap that ended at the last purchase day: the non-zero gap of the latest order) need no
    DISTINCT and no second pass over the orders.
    """
    buy = _.is_purchase
    w = ibis.window(group_by=[facts.customer_id, facts.is_purchase], order_by=facts.ordered_at)
    with_gaps = facts.mutate(_gap=facts.day.delta(facts.day.lag().over(w), unit="day"))
    step = buy & (_._gap > 0)
    aggs: dict[str, Any] = {
        "frequency": _.order_id.count(where=buy),
        "monetary": _.amount.sum(where=buy),
        "first_purchase_at": _.ordered_at.min(where=buy),
        "last_purchase_at": _.ordered_at.max(where=buy),
        "_returns": _.order_id.count(where=_.is_return & ~buy),
        "_discounted": _.order_id.count(where=buy & _.has_discount),
        "n_intervals": _._gap.count(where=step),
        "interval_mean": _._gap.cast("float64").mean(where=step),
        "interval_std": _._gap.cast("float64").std(how="sample", where=step),
        "last_interval": _._gap.cast("float64").argmax(_.ordered_at, where=step),
    }
    for w_days in spec.windows:
        recent = buy & (_.ordered_at >= spec.since(w_days))
        aggs[f"orders_{w_days}d"] = _.order_id.count(where=recent)
        aggs[f"revenue_{w_days}d"] = _.amount.sum(where=recent)
    for name in CHANNEL_GROUPS:
        aggs[f"_ch_{name}"] = _.order_id.count(where=buy & (_.channel_group == name))
    for part in DAY_PARTS:
        aggs[f"_dp_{part}"] = _.order_id.count(where=buy & (_.day_part == part))
    per = with_gaps.group_by("customer_id").aggregate(**aggs)
    n = per.frequency.cast("float64")
    has = per.frequency > 0

    def share(col: ir.IntegerValue) -> ir.FloatingValue:
        return ibis.ifelse(has, col.cast("float64") / n, ibis.null("float64"))

    out: dict[str, Any] = {
        "customer_id": per.customer_id,
        "frequency": per.frequency.cast("int64"),
        "purchase_days": ibis.ifelse(has, per.n_intervals + 1, 0).cast("int64"),
        "monetary": per.monetary.fill_null(0.0),
        "aov": ibis.ifelse(has, per.monetary / n, ibis.null("float64")),
        "first_purchase_at": per.first_purchase_at,
        "last_purchase_at": per.last_purchase_at,
        "recency_days": _days_before(spec, per.last_purchase_at.date()),
    }
    for w_days in spec.windows:
        out[f"orders_{w_days}d"] = per[f"orders_{w_days}d"].cast("int64")
        out[f"revenue_{w_days}d"] = per[f"revenue_{w_days}d"].fill_null(0.0)
    out["discount_share"] = share(per._discounted)
    for name in CHANNEL_GROUPS:
        out[f"{name}_share"] = share(per[f"_ch_{name}"])
    for part in DAY_PARTS:
        out[f"{part}_share"] = share(per[f"_dp_{part}"])
    tried = (per.frequency + per._returns).cast("float64")
    out["return_rate"] = ibis.ifelse(
        tried > 0, per._returns.cast("float64") / tried, ibis.null("float64")
    )
    out["interval_mean"] = per.interval_mean
    out["interval_std"] = per.interval_std
    out["n_intervals"] = per.n_intervals.cast("int64")
    out["last_interval"] = per.last_interval
    return per.select(**out)


INTERVAL_COLUMNS = ("interval_mean", "interval_std", "n_intervals", "last_interval")


def interval_features(facts: ir.Table, spec: FeatureSpec) -> ir.Table:
    """``interval_mean``, ``interval_std``, ``n_intervals``, ``last_interval`` (the gap that
    ended at the last purchase day): days between consecutive purchase days (buyers only)."""
    per = purchase_features(facts, spec)
    return per.filter(per.frequency > 0).select("customer_id", *INTERVAL_COLUMNS)


def line_spend(facts: ir.Table, order_items: ir.Table, products: ir.Table) -> ir.Table:
    """``customer_id, category, brand, spend``: purchase line spend (quantity × unit price −
    line discount, at least 0) per customer, category and brand.  Lines join orders on
    ``order_id``."""
    buys = facts.filter(facts.is_purchase).select("customer_id", "order_id")
    disc = order_items.discount.fill_null(0.0) if "discount" in order_items.columns else 0.0
    spend = order_items.quantity.cast("float64") * order_items.unit_price.fill_null(0.0) - disc
    items = order_items.select("order_id", "product_id", spend=ibis.greatest(spend, 0.0))
    prods = products.select(
        "product_id",
        category=products.category.fill_null("unknown"),
        brand=products.brand.fill_null("unknown"),
    )
    j = items.join(buys, "order_id").left_join(prods, "product_id")
    j = j.select(
        "customer_id",
        category=j.category.fill_null("unknown"),
        brand=j.brand.fill_null("unknown"),
        spend=j.spend,
    )
    return j.group_by(["customer_id", "category", "brand"]).aggregate(spend=_.spend.sum())


def spend_by(
    facts: ir.Table,
    order_items: ir.Table,
    products: ir.Table,
    column: str,
    *,
    lines: ir.Table | None = None,
) -> ir.Table:
    """Long table ``customer_id, <column>, spend, share, rank`` of purchase line spend.

    ``column`` is ``category`` or ``brand``; ``rank`` 1 is the largest share (ties broken by
    name).  ``lines`` is :func:`line_spend` when already built.
    """
    if lines is None:
        lines = line_spend(facts, order_items, products)
    per = lines.group_by(["customer_id", column]).aggregate(spend=_.spend.sum())
    total = per.spend.sum().over(group_by=per.customer_id)
    rank = ibis.row_number().over(
        group_by=per.customer_id, order_by=[per.spend.desc(), per[column].asc()]
    )
    return per.select(
        "customer_id",
        column,
        spend=per.spend,
        share=ibis.ifelse(total > 0, per.spend / total, ibis.null("float64")),
        rank=(rank + 1).cast("int64"),
    )


def affinity_features(
    facts: ir.Table,
    order_items: ir.Table,
    products: ir.Table,
    spec: FeatureSpec,
    *,
    lines: ir.Table | None = None,
    category_spend: ir.Table | None = None,
) -> ir.Table:
    """``cat_share_<c>`` per category in ``spec.categories``, top category and top brand.

    ``category_spend`` is :func:`spend_by` ``"category"`` when already built.  The top brand
    is the brand with the largest spend (ties: the first name) found by a join on each
    customer's largest spend rather than by ranking every (customer, brand) pair, which
    would sort the largest table of the stage.
    """
    if lines is None:
        lines = line_spend(facts, order_items, products)
    cats = category_spend
    if cats is None:
        cats = spend_by(facts, order_items, products, "category", lines=lines)
    aggs: dict[str, Any] = {
        category_column(c): _.share.sum(where=_.category == c) for c in spec.categories
    }
    aggs["top_category"] = _.category.max(where=_["rank"] == 1)
    aggs["top_category_share"] = _.share.max(where=_["rank"] == 1)
    per_cat = cats.group_by("customer_id").aggregate(**aggs)
    per_cat = per_cat.mutate(
        **{category_column(c): per_cat[category_column(c)].fill_null(0.0) for c in spec.categories}
    )
    brands = lines.group_by(["customer_id", "brand"]).aggregate(spend=_.spend.sum())
    best = (
        brands.group_by("customer_id")
        .aggregate(_best=_.spend.max(), _total=_.spend.sum())
        .rename(_bid="customer_id")
    )
    j = brands.join(best, brands.customer_id == best._bid)
    top = (
        j.filter(j.spend == j._best)
        .group_by("customer_id")
        .aggregate(
            top_brand=_.brand.min(),
            top_brand_share=ibis.ifelse(
                _._total.max() > 0, _._best.max() / _._total.max(), ibis.null("float64")
            ),
        )
        .rename(brand_customer_id="customer_id")
    )
    j = per_cat.left_join(top, per_cat.customer_id == top.brand_customer_id)
    return j.drop("brand_customer_id")


# -- events -----------------------------------------------------------------------------------
def activity_features(events: ir.Table, spec: FeatureSpec) -> ir.Table:
    """Events and sessions per window, e-mail and push engagement, per customer.

    A session is the ``session_id`` when events carry one; otherwise a customer's events
    further apart than ``spec.session_gap_minutes`` start a new session.
    """
    longest = max([*spec.activity_windows, spec.engagement_days])
    e = events.filter(
        events.customer_id.notnull(), events.ts < _cutoff(spec), events.ts >= spec.since(longest)
    )
    e = e.select("customer_id", "ts", "event", sid=e.session_id.fill_null(""))
    w = ibis.window(group_by=e.customer_id, order_by=[e.ts, e.sid])
    prev_ts, prev_sid = e.ts.lag().over(w), e.sid.lag().over(w)
    gap = e.ts.epoch_seconds() - prev_ts.epoch_seconds()
    starts = prev_ts.isnull() | (gap > spec.session_gap_minutes * 60) | (e.sid != prev_sid)
    e = e.mutate(new_session=starts)
    aggs: dict[str, Any] = {}
    for w_days in spec.activity_windows:
        inside = _.ts >= spec.since(w_days)
        aggs[f"events_{w_days}d"] = _.ts.count(where=inside)
        aggs[f"sessions_{w_days}d"] = _.ts.count(where=inside & _.new_session)
    engaged = _.ts >= spec.since(spec.engagement_days)
    aggs["email_opens"] = _.ts.count(where=engaged & (_.event == EMAIL_OPENED))
    aggs["email_clicks"] = _.ts.count(where=engaged & (_.event == EMAIL_CLICKED))
    aggs["push_opens"] = _.ts.count(where=engaged & (_.event == PUSH_OPENED))
    aggs["email_delivered"] = _.ts.count(where=engaged & (_.event == EMAIL_DELIVERED))
    aggs["push_received"] = _.ts.count(where=engaged & (_.event == PUSH_RECEIVED))
    per = e.group_by("customer_id").aggregate(**aggs)

    def rate(num: str, den: str) -> ir.FloatingValue:
        # NULL without a denominator: no deliveries recorded is not a rate of 0
        return ibis.ifelse(
            per[den] > 0, per[num].cast("float64") / per[den].cast("float64"), ibis.null("float64")
        )

    return per.mutate(
        **{k: per[k].cast("int64") for k in aggs},
        email_click_rate=rate("email_clicks", "email_opens"),
        email_open_rate=rate("email_opens", "email_delivered"),
        push_open_rate=rate("push_opens", "push_received"),
    )


# -- everything -------------------------------------------------------------------------------
def known_customers(
    customers: ir.Table, facts: ir.Table, spec: FeatureSpec, *, buyers: ir.Table | None = None
) -> ir.Table:
    """``customer_id, first_seen``: customers first seen before the cutoff, or with an order
    before it (``first_seen`` is NULL when it is after the cutoff).  ``buyers`` is any table
    with one row per customer with an order (e.g. :func:`purchase_features`), which saves a
    DISTINCT over the orders."""
    seen = customers.first_seen < _cutoff(spec)
    c = customers.select(
        "customer_id", first_seen=ibis.ifelse(seen, customers.first_seen, ibis.null("timestamp"))
    )
    if buyers is None:
        buyers = facts.select("customer_id").distinct()
    keep = c.first_seen.notnull() | c.customer_id.isin(buyers.customer_id)
    return c.filter(keep)


def customer_features(
    tables: Tables,
    spec: FeatureSpec,
    *,
    facts: ir.Table | None = None,
    lines: ir.Table | None = None,
    category_spend: ir.Table | None = None,
) -> ir.Table:
    """All features, one row per customer known before ``spec.cutoff``.

    ``tables`` holds ``customers``, ``orders`` and ``events`` (each with ``customer_id``),
    ``order_items`` and ``products``.  ``facts`` is :func:`order_facts` of the orders when the
    caller has already stored it (it is read several times), ``lines`` likewise
    :func:`line_spend` and ``category_spend`` :func:`spend_by` ``"category"``.
    """
    if facts is None:
        facts = order_facts(tables["orders"], spec)
    if lines is None:
        lines = line_spend(facts, tables["order_items"], tables["products"])
    purchases = purchase_features(facts, spec)
    base = known_customers(tables["customers"], facts, spec, buyers=purchases)
    parts = [
        purchases,
        affinity_features(
            facts,
            tables["order_items"],
            tables["products"],
            spec,
            lines=lines,
            category_spend=category_spend,
        ),
        activity_features(tables["events"], spec),
    ]
    joined = base
    for i, part in enumerate(parts):
        key = f"_k{i}"
        part = part.rename({key: "customer_id"})
        joined = joined.left_join(part, joined.customer_id == part[key]).drop(key)
    return _finish(joined, spec)


def _finish(t: ir.Table, spec: FeatureSpec) -> ir.Table:
    zero_int = ["frequency", "purchase_days", "n_intervals"]
    zero_int += [f"orders_{w}d" for w in spec.windows]
    zero_int += [f"{k}_{w}d" for w in spec.activity_windows for k in ("events", "sessions")]
    zero_int += ["email_opens", "email_clicks", "push_opens", "email_delivered", "push_received"]
    zero_float = ["monetary", *[f"revenue_{w}d" for w in spec.windows]]
    first = ibis.least(
        t.first_seen.date().coalesce(t.first_purchase_at.date()),
        t.first_purchase_at.date().coalesce(t.first_seen.date()),
    )
    filled = t.mutate(
        **{c: t[c].fill_null(0).cast("int64") for c in zero_int},
        **{c: t[c].fill_null(0.0) for c in zero_float},
        tenure_days=_days_before(spec, first),
        purchase_rate=ibis.ifelse(
            t.frequency.fill_null(0) > 0,
            t.frequency.cast("float64")
            * 365.0
            / ibis.greatest(_days_before(spec, t.first_purchase_at.date()), 30).cast("float64"),
            0.0,
        ),
        cadence_ratio=ibis.ifelse(
            t.interval_mean > 0,
            t.recency_days.cast("float64") / t.interval_mean,
            ibis.null("float64"),
        ),
        as_of=ibis.date(spec.as_of),
    )
    return filled.drop("first_seen").relocate("customer_id", "as_of")
