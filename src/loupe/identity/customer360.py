"""Customer 360: everything known about one customer, looked up by any identifier."""

from __future__ import annotations

import math
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from loupe.errors import LoupeError, NotFoundError
from loupe.identity.attach import orders_with_customers
from loupe.identity.graph import record_key
from loupe.warehouse import Warehouse
from loupe.words import counted

RECENT_EVENTS = 20
#: Retired customer ids followed at most, one into the next (``retired_id``).
MAX_ID_HOPS = 100
LOOKUP_TYPES = ("email", "phone", "user_id", "record", "anonymous_id")
CONSENT_TYPES = ("email", "phone", "user_id")


def normalise_email(value: str) -> str:
    """An e-mail as quality stores it: trimmed and lower-cased."""
    return value.strip().lower()


def normalise_phone(value: str, region: str = "CN") -> str | None:
    """A phone number in E.164, or ``None`` when it does not parse as a valid number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _candidates(key: str, region: str) -> list[str]:
    """The forms a user-typed key may take in ``identity_links``."""
    raw = key.strip()
    forms = [raw]
    if "@" in raw:
        forms.append(normalise_email(raw))
    elif any(ch.isdigit() for ch in raw):
        phone = normalise_phone(raw, region)
        if phone:
            forms.append(phone)
    return list(dict.fromkeys(forms))


def find_customer_id(wh: Warehouse, key: str) -> str:
    """The ``customer_id`` a customer id, e-mail, phone, user id or record name points to."""
    if not key.strip():
        raise LoupeError(
            "No customer key given",
            where="customers",
            fix="give a customer id, e-mail, phone, user id or source:key",
        )
    forms = _candidates(key, wh.settings.project.default_region)
    customers = wh.table("customers")
    hit = wh.to_pandas(customers.filter(customers.customer_id.isin(forms)).select("customer_id"))
    if len(hit):
        return str(hit.customer_id.iloc[0])
    links = wh.table("identity_links")
    found = wh.to_pandas(
        links.filter(links.id_value.isin(forms) & links.id_type.isin(LOOKUP_TYPES))
        .select("id_type", "customer_id")
        .distinct()
        .order_by(["id_type", "customer_id"])
    )
    ids = sorted(set(found.customer_id.astype(str)))
    if not ids:
        # A shared identifier (a family phone, a shop's e-mail) links no one, but golden records
        # may still show it: say whose, rather than that nobody has it.
        cond = ibis.literal(False)
        for col in ("email", "phone", "user_id"):
            if col in customers.columns:
                cond |= customers[col].isin(forms)
        holders = wh.to_pandas(customers.filter(cond).select("customer_id").order_by("customer_id"))
        ids = [str(c) for c in holders.customer_id]
    if not ids:
        from loupe.identity.search import find_customers  # it builds on this module

        found_by_part = find_customers(wh, key, limit=5)
        if found_by_part["total"]:  # a name, or part of an identifier
            shown = _listed(found_by_part["customers"])
            more = found_by_part["total"] - len(found_by_part["customers"])
            raise NotFoundError(
                f"No identifier is {key!r}; "
                + counted(found_by_part["total"], "customer matches", "customers match")
                + f" it: {shown}"
                + (f" and {more:,} more" if more > 0 else ""),
                where="identity_links",
                fix="look one up by its customer id, or list them with `loupe customers find "
                f"{key}`",
            )
        if found_by_part["near"]:  # a typing mistake in a whole e-mail, phone or name
            raise NotFoundError(
                f"No customer found for {key!r}; close to it: {_listed(found_by_part['near'])}",
                where="identity_links",
                fix=f"look one up by its customer id, or see them with `loupe customers find {key}`",
            )
        raise NotFoundError(
            f"No customer found for {key!r}",
            where="identity_links",
            fix="give a customer id, e-mail, phone or user id, or search with `loupe customers "
            "find TEXT`; run `loupe identity` after loading new data",
        )
    if len(ids) > 1:
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        raise LoupeError(
            f"{key!r} is shared by {len(ids)} customers: {shown}",
            where="customers",
            fix="look one of them up by its customer id",
        )
    return ids[0]


def _listed(customers: list[dict[str, Any]]) -> str:
    """Found customers for a message: ``C1a2b… (李芳), C3c4d… (x@y.com)``."""
    return ", ".join(
        f"{c['customer_id']} ({c['name'] or c['email'] or c['phone'] or '?'})" for c in customers
    )


def retired_id(wh: Warehouse, key: str) -> dict[str, Any] | None:
    """Where a customer id that an identity run retired has gone, or None when ``key`` is no
    retired id (or is again a customer's).

    An id retired into one that was later retired too is followed to the end.  Returns
    ``old_id``, ``customer_id`` (None when its records are gone), ``reason`` (``merged`` or
    ``removed``), ``changed_at`` (when ``old_id`` was retired) and ``via`` (the retired ids
    passed on the way).
    """
    if not wh.exists("customer_id_changes"):
        return None
    old = key.strip()
    customers, changes = wh.table("customers"), wh.table("customer_id_changes")

    def current(cid: str) -> bool:
        return wh.count(customers.filter(customers.customer_id == cid)) > 0

    if current(old):
        return None
    hops: list[dict[str, Any]] = []
    at: str | None = old
    while at is not None and len(hops) < MAX_ID_HOPS:
        last = changes.filter(changes.old_id == at).order_by(ibis.desc("changed_at")).limit(1)
        rows = _rows(wh.to_pandas(last))
        if not rows:
            break
        hops.append(rows[0])
        at = rows[0]["customer_id"]
        if at is None or current(at):
            break
    if not hops or (at is not None and not current(at)):
        return None  # not retired, or the trail ends nowhere (identity has not run since)
    return {
        "old_id": old,
        "customer_id": at,
        "reason": hops[0]["reason"] if at is not None else "removed",
        "changed_at": hops[0]["changed_at"],
        "via": [h["customer_id"] for h in hops[:-1]],
    }


def resolve_key(wh: Warehouse, key: str) -> tuple[str, dict[str, Any] | None]:
    """The customer id ``key`` points to, and, when ``key`` is a retired customer id, where
    it went (:func:`retired_id`).

    Raises
    ------
    NotFoundError
        When no customer carries ``key``, or ``key`` is a retired id whose records are gone.
    """
    moved = retired_id(wh, key)
    if moved is None:
        return find_customer_id(wh, key), None
    if moved["customer_id"] is None:
        raise NotFoundError(
            f"{moved['old_id']} is no longer a customer id, and none of its records is left",
            where="customer_id_changes",
            fix="its records were deleted or reloaded without it; look the person up by an "
            "e-mail, a phone or `loupe customers find`",
        )
    return moved["customer_id"], moved


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in df.to_dict(orient="records"):
        plain = {str(k): _plain(v) for k, v in row.items()}
        if hasattr(plain.get("birth_date"), "date"):  # a calendar date, not a timestamp
            plain["birth_date"] = plain["birth_date"].date()
        out.append(plain)
    return out


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NaT:
        return None
    if hasattr(v, "tolist") and not isinstance(v, str):
        return v.tolist()
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def _order_summary(orders: ir.Table, wh: Warehouse) -> dict[str, Any]:
    df = wh.to_pandas(
        orders.select("order_id", "source", "ordered_at", "amount_base", "channel", "status")
    )
    if not len(df):
        return {
            "count": 0,
            "revenue": 0.0,
            "first_order": None,
            "last_order": None,
            "by_channel": {},
        }
    by = df.assign(channel=df.channel.fillna("unknown")).groupby("channel")
    return {
        "count": len(df),
        "revenue": float(df.amount_base.fillna(0).sum()),
        "first_order": _plain(df.ordered_at.min()),
        "last_order": _plain(df.ordered_at.max()),
        "by_channel": {
            str(ch): {"count": len(g), "revenue": float(g.amount_base.fillna(0).sum())}
            for ch, g in by
        },
    }


def person_records(wh: Warehouse) -> ir.Table:
    """The records identity resolves, each named in ``record``: ``contacts``, and with
    ``[identity] customers_from_orders`` the records it makes of orders."""
    contacts = wh.table("contacts")
    if wh.settings.identity.customers_from_orders and wh.exists("orders"):
        from loupe.identity.stage import order_records  # the stage builds on this module

        made = order_records(wh.table("orders"), contacts.schema())
        contacts = ibis.union(contacts, made, distinct=False)
    return contacts.mutate(record=record_key(contacts))


def customer_360(wh: Warehouse, key: str) -> dict[str, Any]:
    """Everything known about one customer.

    ``key`` is a customer id, an e-mail (any case), a phone (any format), a user id or a
    record name ``source:source_key``; a customer id that a later identity run retired is
    followed to the customer now holding its records.  Returns ``customer`` (the golden
    record), ``moved`` (None, or where the retired id went: :func:`retired_id`),
    ``records`` (every source record with its ``file:line``), ``orders`` (count, revenue in
    base currency, first/last order, by channel), ``recent_events`` (the 20 most recent)
    and ``consents`` (the latest decision per purpose over the customer's identifiers).

    Raises
    ------
    NotFoundError
        When no customer carries ``key``.
    """
    cid, moved = resolve_key(wh, key)
    customers = wh.table("customers")
    customer = _rows(wh.to_pandas(customers.filter(customers.customer_id == cid)))[0]

    links = wh.table("identity_links")
    mine = wh.to_pandas(links.filter(links.customer_id == cid).select("id_type", "id_value"))
    ids = {t: sorted(g.id_value) for t, g in mine.groupby("id_type")}

    c = person_records(wh)
    c = c.filter(c.record.isin(ids.get("record", [])))
    where = c._file.concat(":", c._line.cast("string").coalesce(""))
    c = c.mutate(location=ibis.ifelse(c._file.isnull(), "", where))
    records = _rows(wh.to_pandas(c.drop("quality_flags").order_by(["source", "source_key"])))

    orders: dict[str, Any] = {
        "count": 0,
        "revenue": 0.0,
        "first_order": None,
        "last_order": None,
        "by_channel": {},
    }
    if wh.exists("orders"):
        o = orders_with_customers(wh.table("orders"), links)
        orders = _order_summary(o.filter(o.customer_id == cid), wh)

    recent: list[dict[str, Any]] = []
    if wh.exists("events"):
        e = wh.table("events")
        mask = e.user_id.isin(ids.get("user_id", [])) | e.anonymous_id.isin(
            ids.get("anonymous_id", [])
        )
        e = e.filter(mask).order_by([ibis.desc("ts"), "event_id"]).limit(RECENT_EVENTS)
        cols = ["ts", "type", "event", "source", "url", "screen", "product_id", "order_id"]
        recent = _rows(wh.to_pandas(e.select(*cols)))

    consents: list[dict[str, Any]] = []
    identifiers = sorted({v for t in CONSENT_TYPES for v in ids.get(t, [])})
    if wh.exists("consents") and identifiers:
        k = wh.table("consents")
        k = k.filter(k.identifier.isin(identifiers))
        w = ibis.window(group_by="purpose", order_by=[ibis.desc("ts"), "identifier", "source"])
        k = k.mutate(_rn=ibis.row_number().over(w))
        k = k.filter(k._rn == 0).order_by("purpose")
        cols = ["purpose", "granted", "ts", "identifier", "identifier_type", "source"]
        consents = _rows(wh.to_pandas(k.select(*cols)))

    return {
        "customer": customer,
        "moved": moved,
        "records": records,
        "orders": orders,
        "recent_events": recent,
        "consents": consents,
    }
