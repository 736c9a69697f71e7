"""Training snapshots: features **as of** a cutoff, joined with a label from the days after it.

A snapshot at cutoff ``c`` is what a model would have seen on the morning of day ``c``: the
profile features (:func:`loupe.profile.customer_features`, which reads only rows dated before
midnight at the start of ``c``) plus a few *driver* features the profile does not carry, built
here under the same rule.  The label looks only at ``[c, c + horizon)``.  Nothing dated on or
after ``c`` can reach a feature, so a model validated on a later cutoff is validated on data it
could not have seen (``tests/models/test_snapshots.py`` proves it by adding orders, events and
reviews after ``c`` and comparing).

Driver features (why they are here and not in ``profile/``: they serve churn models, and the
profile stage is built for speed on every run):

* reviews (``feedback`` attached to customers through their identifiers): ``review_count``,
  ``low_review_count`` (rating 1–2), ``low_review_share``, ``min_rating``,
  ``days_since_low_review``;
* delivery: ``late_deliveries`` (orders whose status is ``late_statuses``), ``late_share`` of
  online purchases, ``last_online_late`` (1 when the latest online order arrived late);
* app engagement: ``app_visit_days`` (days with app events but no order, in the last
  ``trend_days``), ``app_visit_days_90d``, and ``app_trend``, where in the customer's window
  the visits lie (see :func:`app_features`).  App events are those of the sources named in
  ``app_sources`` or carrying a ``screen``; order days are left out because purchases have
  their own features and would dilute the trend of browsing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis import _

from loupe.errors import LoupeError
from loupe.identity.attach import orders_with_customers
from loupe.models.settings import LabelSettings
from loupe.profile import FeatureSpec, customer_features, feature_spec, profile_tables
from loupe.profile.features import CHANNEL_GROUPS
from loupe.profile.tables import default_as_of
from loupe.warehouse import Warehouse

Tables = Mapping[str, ir.Table]

#: Columns of a snapshot that are not model inputs.
ID_COLUMNS = ("customer_id", "as_of", "label")
ORDER_COMPLETED = "Order Completed"


@dataclass(frozen=True)
class DriverSpec:
    """Settings of the driver features.

    Parameters
    ----------
    app_sources
        Event sources that are the mobile app (events with a ``screen`` count as app too).
    trend_days
        Longest history ``app_trend`` looks at.
    recent_days
        The window of ``low_reviews_<N>d`` and ``app_visit_days_<N>d``.
    late_statuses
        Order statuses that mean "delivered late".
    low_rating
        Ratings at or below this are complaints.
    """

    app_sources: tuple[str, ...] = ("app",)
    trend_days: int = 730
    recent_days: int = 90
    late_statuses: tuple[str, ...] = ("delivered_late", "late")
    low_rating: float = 2.0


def snapshot_tables(wh: Warehouse) -> dict[str, ir.Table]:
    """The profile inputs plus ``feedback`` with ``customer_id`` (when the table exists)."""
    tables = profile_tables(wh)
    if wh.exists("feedback"):
        tables["feedback"] = orders_with_customers(wh.table("feedback"), wh.table("identity_links"))
    return tables


def _at(day: date) -> ir.TimestampScalar:
    return ibis.literal(datetime.combine(day, time()), type="timestamp")


def review_features(feedback: ir.Table, spec: FeatureSpec, drivers: DriverSpec) -> ir.Table:
    """Review counts, complaints and the days since the last complaint, before the cutoff."""
    f = feedback.filter(
        feedback.customer_id.notnull(), feedback.ts < _at(spec.as_of), feedback.rating.notnull()
    )
    low = _.rating <= drivers.low_rating
    recent = _.ts >= spec.since(drivers.recent_days)
    per = f.group_by("customer_id").aggregate(
        review_count=_.rating.count(),
        low_review_count=_.rating.count(where=low),
        low_reviews_recent=_.rating.count(where=low & recent),
        min_rating=_.rating.min(),
        _last_low=_.ts.max(where=low),
    )
    days = ibis.date(spec.as_of).delta(per._last_low.date(), unit="day").cast("float64")
    return per.select(
        "customer_id",
        review_count=per.review_count.cast("int64"),
        low_review_count=per.low_review_count.cast("int64"),
        **{f"low_reviews_{drivers.recent_days}d": per.low_reviews_recent.cast("int64")},
        low_review_share=per.low_review_count.cast("float64") / per.review_count.cast("float64"),
        min_rating=per.min_rating.cast("float64"),
        days_since_low_review=days,
    )


def delivery_features(orders: ir.Table, spec: FeatureSpec, drivers: DriverSpec) -> ir.Table:
    """Late deliveries of online orders before the cutoff (store purchases are not shipped)."""
    o = orders.filter(orders.customer_id.notnull(), orders.ordered_at < _at(spec.as_of))
    status = o.status.lower().strip().fill_null("")
    channel = o.channel.lower().strip().fill_null("")
    online = channel.isin([*CHANNEL_GROUPS["online"], *CHANNEL_GROUPS["app"]])
    o = o.select(
        "customer_id",
        "ordered_at",
        late=status.isin(list(drivers.late_statuses)),
        online=online,
        buy=~status.isin(list(spec.not_purchase_statuses)),
    ).filter(_.online)
    latest = o.ordered_at.max().over(ibis.window(group_by=o.customer_id))
    o = o.mutate(is_last=o.ordered_at == latest)
    per = o.group_by("customer_id").aggregate(
        late_deliveries=_.late.sum(),
        _online_buys=_.buy.sum(),
        last_online_late=(_.late & _.is_last).max(),
    )
    n = per._online_buys.cast("float64")
    return per.select(
        "customer_id",
        late_deliveries=per.late_deliveries.cast("int64"),
        late_share=ibis.ifelse(
            n > 0, per.late_deliveries.cast("float64") / n, ibis.null("float64")
        ),
        last_online_late=per.last_online_late.cast("int64"),
    )


def app_features(
    events: ir.Table, customers: ir.Table, spec: FeatureSpec, drivers: DriverSpec
) -> ir.Table:
    """App visits (days with app events but no order) and their trend before the cutoff.

    ``app_trend`` is the mean position of the visit days in the customer's observed window
    ``[start, cutoff)``, scaled to [-1, 1]: 0 for visits spread evenly, positive when they
    crowd towards the cutoff.  For visits from a Poisson process whose rate grows as
    ``exp(beta * t)`` the mean event time is the sufficient statistic of ``beta``, so this is
    the trend estimate that uses all visits rather than two arbitrary windows.  ``start`` is
    the latest of ``cutoff - trend_days``, the customer's first sighting and the first event
    in the data.
    """
    cut = _at(spec.as_of)
    n = drivers.trend_days
    is_app = events.source.isin(list(drivers.app_sources)) | events.screen.notnull()
    e = events.filter(events.customer_id.notnull(), events.ts < cut)
    first_event = e.ts.min().as_scalar().date()
    e = e.filter(is_app, e.ts >= spec.since(n))
    e = e.select("customer_id", day=e.ts.date(), order=e.event == ORDER_COMPLETED)
    days = e.group_by(["customer_id", "day"]).aggregate(order=_.order.max())
    visits = days.filter(~days.order)
    seen = customers.select(_cid="customer_id", _first=customers.first_seen.date())
    v = visits.left_join(seen, visits.customer_id == seen._cid).select(
        "customer_id", "day", "_first"
    )
    start = ibis.greatest(
        ibis.date(spec.as_of - timedelta(days=n)), first_event, v._first.fill_null(first_event)
    )
    length = ibis.date(spec.as_of).delta(start, unit="day").cast("float64")
    offset = v.day.delta(start, unit="day").cast("float64")
    position = ibis.ifelse(length > 0, (offset + 0.5) / length * 2.0 - 1.0, ibis.null("float64"))
    v = v.select(
        "customer_id",
        "day",
        position=position,
        recent=v.day >= ibis.date(spec.as_of - timedelta(days=drivers.recent_days)),
    )
    per = v.group_by("customer_id").aggregate(
        app_visit_days=_.day.count(),
        _recent=_.day.count(where=_.recent),
        app_trend=_.position.mean(),
    )
    return per.mutate(
        app_visit_days=per.app_visit_days.cast("int64"),
        **{f"app_visit_days_{drivers.recent_days}d": per._recent.cast("int64")},
    ).drop("_recent")


def driver_features(tables: Tables, spec: FeatureSpec, drivers: DriverSpec) -> list[ir.Table]:
    """The driver feature tables (one row per customer each) that ``tables`` allows."""
    parts = [
        delivery_features(tables["orders"], spec, drivers),
        app_features(tables["events"], tables["customers"], spec, drivers),
    ]
    if "feedback" in tables:
        parts.append(review_features(tables["feedback"], spec, drivers))
    return parts


def _zero_fill(drivers: DriverSpec) -> dict[str, Any]:
    return {
        "review_count": 0,
        "low_review_count": 0,
        "late_deliveries": 0,
        "last_online_late": 0,
        "app_visit_days": 0,
        f"app_visit_days_{drivers.recent_days}d": 0,
        f"low_reviews_{drivers.recent_days}d": 0,
    }


def snapshot_features(tables: Tables, spec: FeatureSpec, drivers: DriverSpec) -> ir.Table:
    """Profile features plus driver features as of ``spec.as_of`` (pure: nothing runs)."""
    joined = customer_features(tables, spec)
    for i, part in enumerate(driver_features(tables, spec, drivers)):
        key = f"_d{i}"
        part = part.rename({key: "customer_id"})
        joined = joined.left_join(part, joined.customer_id == part[key]).drop(key)
    fills = {c: v for c, v in _zero_fill(drivers).items() if c in joined.columns}
    return joined.mutate(**{c: joined[c].fill_null(v) for c, v in fills.items()})


def label_table(
    tables: Tables, spec: FeatureSpec, label: LabelSettings, *, check: bool = True
) -> ir.Table:
    """``customer_id``: every customer with a purchase (in ``label.category``, if set) in
    ``[as_of, as_of + horizon_days)``."""
    start = datetime.combine(spec.as_of, time())
    end = start + timedelta(days=label.horizon_days)
    o = tables["orders"]
    status = o.status.lower().strip().fill_null("")
    o = o.filter(
        o.customer_id.notnull(),
        o.ordered_at >= ibis.literal(start, type="timestamp"),
        o.ordered_at < ibis.literal(end, type="timestamp"),
        ~status.isin(list(spec.not_purchase_statuses)),
    )
    if label.category is not None:
        items, products = tables["order_items"], tables["products"]
        wanted = products.filter(products.category == label.category).select("product_id")
        lines = items.filter(items.product_id.isin(wanted.product_id)).select("order_id")
        o = o.filter(o.order_id.isin(lines.order_id))
    return o.select("customer_id").distinct()


def data_end(wh: Warehouse) -> date:
    """The first day without data: the day after the latest order."""
    return default_as_of(wh)


def check_label_window(wh: Warehouse, cutoff: date, label: LabelSettings) -> None:
    """Raise when the data stop before the label's horizon after ``cutoff`` ends."""
    end = data_end(wh)
    if cutoff + timedelta(days=label.horizon_days) > end:
        latest = end - timedelta(days=label.horizon_days)
        raise LoupeError(
            f"label {label.name!r} at cutoff {cutoff} needs data up to "
            f"{cutoff + timedelta(days=label.horizon_days - 1)}, but the orders end on "
            f"{end - timedelta(days=1)}",
            where=f"label {label.name} (horizon {label.horizon_days} days)",
            fix=f"choose a cutoff on or before {latest}",
        )


class SnapshotBuilder:
    """Builds and caches feature snapshots of one warehouse, one per as-of date.

    The features of a date are computed once (in the engine) and reused by every label that
    needs them; only the per-customer result (one row per customer) is held in pandas.
    """

    def __init__(self, wh: Warehouse, drivers: DriverSpec | None = None) -> None:
        self.wh = wh
        self.drivers = drivers or DriverSpec()
        self.tables = snapshot_tables(wh)
        self._features: dict[date, pd.DataFrame] = {}

    def spec(self, as_of: date) -> FeatureSpec:
        return feature_spec(self.wh, as_of)

    def features(self, as_of: date) -> pd.DataFrame:
        """Every customer known before ``as_of`` with their features (cached)."""
        if as_of not in self._features:
            expr = snapshot_features(self.tables, self.spec(as_of), self.drivers)
            df = self.wh.to_pandas(expr.order_by("customer_id"))
            self._features[as_of] = df.reset_index(drop=True)
        return self._features[as_of]

    def training(self, cutoff: date, label: LabelSettings) -> pd.DataFrame:
        """Features as of ``cutoff`` with the label's value, for the label's population."""
        check_label_window(self.wh, cutoff, label)
        spec = self.spec(cutoff)
        buyers = self.wh.to_pandas(label_table(self.tables, spec, label))
        features = self.features(cutoff)
        bought = features["customer_id"].isin(set(buyers["customer_id"]))
        frame = features.assign(label=(~bought if label.kind == "churn" else bought).astype(int))
        if label.kind == "churn":
            frame = frame[frame["frequency"] > 0]
        return frame.reset_index(drop=True)


def numeric_features(frame: pd.DataFrame, exclude: Sequence[str] = ID_COLUMNS) -> list[str]:
    """The numeric (or boolean) model inputs of a snapshot, in column order."""
    out = []
    for col in frame.columns:
        if col in exclude:
            continue
        kind = frame[col].dtype.kind
        if kind in "biuf":
            out.append(col)
    return out
