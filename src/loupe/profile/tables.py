"""The inputs of the profile builders, read from a warehouse with customers attached."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import ibis.expr.types as ir

from loupe.identity.attach import events_with_customers, orders_with_customers
from loupe.warehouse import Warehouse

PROFILE_INPUTS = ["customers", "orders", "order_items", "products", "events", "identity_links"]


def profile_tables(wh: Warehouse) -> dict[str, ir.Table]:
    """``customers``, ``orders`` and ``events`` with ``customer_id``, ``order_items``, ``products``.

    Orders find their customer through the record, user id, e-mail or phone; events through
    their user id, then their anonymous id (``identity_links``).
    """
    links = wh.table("identity_links")
    return {
        "customers": wh.table("customers"),
        "orders": orders_with_customers(wh.table("orders"), links),
        "events": events_with_customers(wh.table("events"), links),
        "order_items": wh.table("order_items"),
        "products": wh.table("products"),
    }


def categories(wh: Warehouse) -> list[str]:
    """Every product category, sorted (small: one row per category)."""
    p = wh.table("products")
    df = wh.to_pandas(p.filter(p.category.notnull()).select("category").distinct())
    return sorted(str(c) for c in df["category"])


def default_as_of(wh: Warehouse) -> date:
    """The day after the latest order (so the newest data counts), or today without orders."""
    latest = wh.scalar(wh.table("orders").ordered_at.max())
    if latest is None or latest != latest:  # None or NaT
        return date.today()
    if not isinstance(latest, datetime):
        latest = datetime.fromisoformat(str(latest))
    return latest.date() + timedelta(days=1)


def utc_offset_minutes(timezone: str, on: date) -> int:
    """Minutes ahead of UTC of ``timezone`` on day ``on`` (one offset for the whole snapshot)."""
    moment = datetime.combine(on, datetime.min.time(), tzinfo=ZoneInfo(timezone))
    offset = moment.utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0
