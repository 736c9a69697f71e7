"""A small random shop (customers, orders, lines, products, events) and a brute-force pandas
reference of the customer features, written independently of the Ibis builders."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

CATEGORIES = ["baby", "home", "snacks"]
BRANDS = ["A", "B", "C", "D"]
CHANNELS = ["web", "app", "store", "wechat"]
STATUSES = ["delivered", "delivered", "completed", "cancelled", "refunded", None]
EVENTS = [
    "Product Viewed",
    "Email Delivered",
    "Email Opened",
    "Email Link Clicked",
    "Push Notification Received",
    "Push Notification Opened",
]
START = datetime(2024, 1, 1)


def make_shop(seed: int = 0, customers: int = 40, orders: int = 300, events: int = 600):
    """A dict of pandas DataFrames with ``customer_id`` on orders and events."""
    rng = np.random.default_rng(seed)
    ids = [f"C{i:03d}" for i in range(customers)]
    first_seen = [START + timedelta(days=int(d)) for d in rng.integers(-300, 700, customers)]
    cust = pd.DataFrame({"customer_id": ids, "first_seen": first_seen})
    products = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(12)],
            "category": [CATEGORIES[i % 3] for i in range(12)],
            "brand": [BRANDS[i % 4] for i in range(12)],
        }
    )
    # customer 0..4 never buy; timestamps to the second over two years
    buyers = ids[5:]
    o = pd.DataFrame(
        {
            "order_id": [f"O{i:05d}" for i in range(orders)],
            "customer_id": rng.choice(buyers, orders),
            "ordered_at": [
                START + timedelta(seconds=int(s)) for s in rng.integers(0, 730 * 86400, orders)
            ],
            "amount": rng.gamma(2.0, 100.0, orders).round(2),
            "discount": np.where(rng.random(orders) < 0.3, 10.0, 0.0),
            "coupon_code": np.where(rng.random(orders) < 0.2, "C10", None),
            "channel": rng.choice(CHANNELS, orders),
            "status": rng.choice(np.array(STATUSES, dtype=object), orders),
        }
    )
    o["amount_base"] = o["amount"]
    n_lines = orders * 2
    items = pd.DataFrame(
        {
            "order_id": rng.choice(o["order_id"], n_lines),
            "product_id": rng.choice(products["product_id"], n_lines),
            "quantity": rng.integers(1, 4, n_lines),
            "unit_price": rng.gamma(2.0, 30.0, n_lines).round(2),
            "discount": np.where(rng.random(n_lines) < 0.2, 5.0, 0.0),
        }
    )
    end = START + timedelta(days=730)
    e = pd.DataFrame(
        {
            "customer_id": rng.choice(ids, events),
            "ts": [end - timedelta(seconds=int(s)) for s in rng.integers(0, 200 * 86400, events)],
            "event": rng.choice(EVENTS, events),
            "session_id": None,
        }
    )
    return {"customers": cust, "orders": o, "order_items": items, "products": products, "events": e}


def _part(h: int) -> str:
    if h >= 22 or h < 5:
        return "night"
    if h < 12:
        return "morning"
    if h < 17:
        return "afternoon"
    return "evening"


def reference_features(shop: dict[str, pd.DataFrame], as_of: date, categories=CATEGORIES):
    """Features computed row by row in plain pandas/Python (no shared code with the builders)."""
    cutoff = datetime.combine(as_of, datetime.min.time())
    o = shop["orders"][shop["orders"]["ordered_at"] < cutoff].copy()
    status = o["status"].fillna("").str.lower()
    o["buy"] = ~status.isin(["cancelled", "canceled", "refunded", "returned"])
    o["ret"] = status.isin(["refunded", "returned"])
    items = shop["order_items"].merge(shop["products"], on="product_id", how="left")
    items["spend"] = (items["quantity"] * items["unit_price"] - items["discount"]).clip(lower=0)
    e = shop["events"][shop["events"]["ts"] < cutoff]
    rows = []
    for cust in shop["customers"].itertuples():
        mine = o[o.customer_id == cust.customer_id]
        seen = cust.first_seen if cust.first_seen < cutoff else None
        if seen is None and mine.empty:
            continue
        buys = mine[mine.buy]
        r: dict = {"customer_id": cust.customer_id, "frequency": len(buys)}
        r["monetary"] = float(buys.amount_base.sum())
        for w in (30, 90, 365):
            recent = buys[buys.ordered_at >= cutoff - timedelta(days=w)]
            r[f"orders_{w}d"] = len(recent)
            r[f"revenue_{w}d"] = float(recent.amount_base.sum())
        if len(buys):
            last = buys.ordered_at.max()
            r["recency_days"] = (as_of - last.date()).days
            r["aov"] = r["monetary"] / len(buys)
            disc = (buys.coupon_code.fillna("") != "") | (buys.discount > 0)
            r["discount_share"] = disc.mean()
            r["online_share"] = (buys.channel == "web").mean()
            r["app_share"] = (buys.channel == "app").mean()
            r["store_share"] = (buys.channel == "store").mean()
            parts = [_part((t + timedelta(hours=8)).hour) for t in buys.ordered_at]
            for p in ("night", "morning", "afternoon", "evening"):
                r[f"{p}_share"] = sum(x == p for x in parts) / len(parts)
            days = sorted({t.date() for t in buys.ordered_at})
            gaps = [(b - a).days for a, b in itertools.pairwise(days)]
            r["interval_mean"] = float(np.mean(gaps)) if gaps else np.nan
            r["interval_std"] = float(np.std(gaps, ddof=1)) if len(gaps) > 1 else np.nan
            lines = items[items.order_id.isin(buys.order_id)]
            total = lines.spend.sum()
            for c in categories:
                share = lines[lines.category == c].spend.sum() / total if total > 0 else np.nan
                r[f"cat_share_{c}"] = 0.0 if np.isnan(share) and len(lines) else share
            first = min(buys.ordered_at.min().date(), seen.date() if seen is not None else date.max)
        else:
            first = seen.date() if seen is not None else None  # only cancelled orders
        rets = mine.ret.sum()
        r["return_rate"] = rets / (len(buys) + rets) if len(buys) + rets else np.nan
        r["tenure_days"] = (as_of - first).days if first is not None else np.nan
        ev = e[e.customer_id == cust.customer_id]
        for w in (7, 30, 90):
            r[f"events_{w}d"] = int((ev.ts >= cutoff - timedelta(days=w)).sum())
        eng = ev[ev.ts >= cutoff - timedelta(days=90)].sort_values("ts")
        gap = eng.ts.diff()
        starts = gap.isna() | (gap > timedelta(minutes=30))
        for w in (7, 30, 90):
            r[f"sessions_{w}d"] = int((starts & (eng.ts >= cutoff - timedelta(days=w))).sum())
        r["email_opens"] = int((eng.event == "Email Opened").sum())
        r["email_clicks"] = int((eng.event == "Email Link Clicked").sum())
        r["push_opens"] = int((eng.event == "Push Notification Opened").sum())
        r["email_delivered"] = int((eng.event == "Email Delivered").sum())
        r["push_received"] = int((eng.event == "Push Notification Received").sum())
        for name, num, den in (
            ("email_click_rate", "email_clicks", "email_opens"),
            ("email_open_rate", "email_opens", "email_delivered"),
            ("push_open_rate", "push_opens", "push_received"),
        ):
            r[name] = r[num] / r[den] if r[den] else np.nan
        rows.append(r)
    return pd.DataFrame(rows).set_index("customer_id").sort_index()


CITIES = ["上海", "北京", "广州"]


def load_into(wh, shop: dict[str, pd.DataFrame], seed: int = 0) -> None:
    """Write the shop into a warehouse as canonical tables plus identity links and consents.

    Orders point to their customer through the record ``crm:<customer_id>``; events through
    the user id ``U<customer_id>``; e-mail consents through ``<customer_id>@x.cn``.
    """
    import ibis

    from loupe.warehouse.schemas import CUSTOMERS, IDENTITY_LINKS, canonical_schema, schema

    rng = np.random.default_rng(seed)

    def put(name: str, df: pd.DataFrame, sch) -> None:
        full = pd.DataFrame({c: df.get(c, None) for c in sch.names})
        for c, t in sch.items():
            if t.is_array():
                full[c] = [[] for _ in range(len(full))]
        wh.replace(name, ibis.memtable(full, schema=sch))

    cust = shop["customers"]
    n = len(cust)
    customers = cust.assign(
        email=cust.customer_id + "@x.cn",
        city=rng.choice(CITIES, n),
        gender=rng.choice(["F", "M"], n),
        birth_date=[datetime(1980 + int(y), 6, 15) for y in rng.integers(0, 25, n)],
        last_seen=datetime(2025, 12, 31),
        record_count=1,
    )
    put("customers", customers, schema(CUSTOMERS))
    o = shop["orders"].assign(contact_source="crm", source_key=shop["orders"].customer_id)
    o["source"] = "shop"
    put("orders", o, canonical_schema("orders"))
    put("order_items", shop["order_items"].assign(source="lines"), canonical_schema("order_items"))
    put("products", shop["products"], canonical_schema("products"))
    e = shop["events"].assign(user_id="U" + shop["events"].customer_id, source="web", type="track")
    e["event_id"] = [f"E{i}" for i in range(len(e))]
    put("events", e, canonical_schema("events"))
    ids = cust.customer_id
    links = pd.concat(
        [
            pd.DataFrame({"id_type": "record", "id_value": "crm:" + ids, "customer_id": ids}),
            pd.DataFrame({"id_type": "user_id", "id_value": "U" + ids, "customer_id": ids}),
            pd.DataFrame({"id_type": "email", "id_value": ids + "@x.cn", "customer_id": ids}),
        ]
    )
    put("identity_links", links, schema(IDENTITY_LINKS))
    # consents: even customers granted e-mail in 2024; every fourth revoked it later
    rows = []
    for i, cid in enumerate(ids):
        if i % 2 == 0:
            rows.append((cid + "@x.cn", "email", "email", True, datetime(2024, 3, 1)))
        if i % 4 == 0:
            rows.append((cid + "@x.cn", "email", "email", False, datetime(2025, 3, 1)))
    consents = pd.DataFrame(
        rows, columns=["identifier", "identifier_type", "purpose", "granted", "ts"]
    )
    put("consents", consents, canonical_schema("consents"))
