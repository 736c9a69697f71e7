"""Build each canonical table from its deduplicated raw rows: standardised columns + row flags.

Everything here is an Ibis expression; the only Python-computed inputs are the small email,
phone, country and place-name lookup tables (distinct values → standardised value) joined in
by key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir

from loupe.quality import standardise as st
from loupe.warehouse import functions as fn
from loupe.warehouse import schemas

Flags = dict[str, ir.BooleanValue]

#: ``{table: {column: (flag, invalid_set_null)}}``: the validator behind each column's validity.
#: When ``invalid_set_null`` the invalid value was replaced by NULL, so the values that were
#: present are ``non-null + flagged``; otherwise they are the non-null values.
VALIDATORS: dict[str, dict[str, tuple[str, bool]]] = {
    "contacts": {
        "email": ("invalid_email", True),
        "phone": ("invalid_phone", True),
        "gender": ("invalid_gender", True),
        "birth_date": ("invalid_birth_date", True),
        "country": ("unknown_country", False),
    },
    "orders": {
        "email": ("invalid_email", True),
        "phone": ("invalid_phone", True),
        "currency": ("unknown_currency", False),
        "amount": ("negative_amount", False),
    },
    "order_items": {
        "quantity": ("negative_quantity", False),
        "unit_price": ("negative_price", False),
    },
    "products": {"currency": ("unknown_currency", False), "price": ("negative_price", False)},
    "events": {"revenue": ("negative_revenue", False)},
    "marketing_spend": {
        "currency": ("unknown_currency", False),
        "spend": ("negative_spend", False),
    },
    "consents": {"identifier": ("invalid_identifier", False)},
    "feedback": {"email": ("invalid_email", True), "phone": ("invalid_phone", True)},
}

#: Amount column → the base-currency column quality adds for it.
BASE_AMOUNT: dict[str, tuple[str, str]] = {
    "orders": ("amount", "amount_base"),
    "products": ("price", "price_base"),
    "marketing_spend": ("spend", "spend_base"),
}


@dataclass(frozen=True)
class Context:
    """Inputs of the canonical builders besides the table itself."""

    emails: ir.Table
    phones: ir.Table
    countries: ir.Table
    places: ir.Table
    """Only the place names written otherwise than most records write their place."""
    rates: Mapping[str, float]
    base_currency: str
    today: date


def flag_array(flags: Flags) -> ir.ArrayValue:
    """An ``array<string>`` holding the names of the flags whose condition is true."""
    if not flags:
        return ibis.literal([], type="array<string>")
    items = [
        ibis.ifelse(cond.fill_null(False), name, ibis.null("string"))
        for name, cond in flags.items()
    ]
    return ibis.array(items).filter(lambda x: x.notnull())


def _join_lookup(t: ir.Table, key: ir.StringValue, lookup: ir.Table, name: str) -> ir.Table:
    """``t`` with ``<name>_key`` and ``<name>_std`` from a (key, value) lookup table."""
    kcol, vcol, rcol = f"_{name}_key", f"_{name}_std", f"_{name}_rkey"
    t = t.mutate(**{kcol: key})
    right = lookup.select(**{rcol: lookup.key, vcol: lookup.value.nullif("")})
    joined = t.left_join(right, t[kcol] == right[rcol])
    return joined.drop(rcol)


def _clean_strings(t: ir.Table, table: str) -> dict[str, ir.Value]:
    """Trimmed strings, blanks as NULL, for every string data column."""
    return {
        c: fn.strip(t[c]).nullif("")
        for c, kind in schemas.RAW_COLUMNS[table].items()
        if kind == "string"
    }


def _email_phone(t: ir.Table, ctx: Context) -> tuple[ir.Table, Flags]:
    t = _join_lookup(t, st.email_key_expr(t.email), ctx.emails, "email")
    t = _join_lookup(t, st.phone_key_expr(t.phone), ctx.phones, "phone")
    flags: Flags = {
        "invalid_email": t._email_key.notnull() & t._email_std.isnull(),
        "invalid_phone": t._phone_key.notnull() & t._phone_std.isnull(),
    }
    return t, flags


def _money(
    t: ir.Table, amount: str, ctx: Context, cols: dict[str, ir.Value], flags: Flags
) -> ir.Value:
    """Standardise ``currency`` into ``cols``; return the base-currency amount."""
    code = st.currency_expr(t.currency)
    effective = code.fill_null(ctx.base_currency.upper())
    rate = st.rate_expr(effective, ctx.rates)
    cols["currency"] = effective
    flags["missing_currency"] = code.isnull()
    flags["unknown_currency"] = rate.isnull()
    flags[f"negative_{amount}"] = t[amount] < 0
    flags[f"missing_{amount}"] = t[amount].isnull()
    return t[amount] * rate


def _contacts(t: ir.Table, ctx: Context) -> tuple[ir.Table, dict[str, ir.Value], Flags]:
    t, flags = _email_phone(t, ctx)
    t = _join_lookup(t, st.place_key_expr(t.city), ctx.places, "city")
    t = _join_lookup(t, st.place_key_expr(t.region), ctx.places, "region")
    t = _join_lookup(t, st.place_key_expr(t.country), ctx.countries, "country")
    cols = _clean_strings(t, "contacts")
    cols.update(
        city=t._city_std.fill_null(t._city_key),
        region=t._region_std.fill_null(t._region_key),
        country=t._country_std.fill_null(t._country_key),
    )
    flags["unknown_country"] = t._country_key.notnull() & t._country_std.isnull()
    parsed = st.date_expr(t.birth_date)
    plausible = parsed.between(date(1900, 1, 1), ctx.today)
    birth_date = ibis.ifelse(plausible, parsed, ibis.null("date"))
    cols.update(
        email=t._email_std,
        phone=t._phone_std,
        email_raw=t.email,
        phone_raw=t.phone,
        gender=st.gender_expr(t.gender),
        birth_date=birth_date,
    )
    flags["invalid_gender"] = st.gender_unreadable_expr(t.gender)
    flags["invalid_birth_date"] = (t.birth_date.strip().nullif("").notnull()) & birth_date.isnull()
    flags["missing_email_and_phone"] = t._email_std.isnull() & t._phone_std.isnull()
    return t, cols, flags


def _orders(t: ir.Table, ctx: Context) -> tuple[ir.Table, dict[str, ir.Value], Flags]:
    t, flags = _email_phone(t, ctx)
    cols = _clean_strings(t, "orders")
    cols.update(email=t._email_std, phone=t._phone_std)
    cols["amount_base"] = _money(t, "amount", ctx, cols, flags)
    ids = [cols["source_key"], t._email_std, t._phone_std, cols["user_id"]]
    flags["missing_customer"] = ibis.and_(*[c.isnull() for c in ids])
    return t, cols, flags


def _order_items(t: ir.Table, ctx: Context) -> tuple[ir.Table, dict[str, ir.Value], Flags]:
    cols = _clean_strings(t, "order_items")
    flags: Flags = {
        "negative_quantity": t.quantity < 0,
        "negative_price": t.unit_price < 0,
        "missing_unit_price": t.unit_price.isnull(),
    }
    return t, cols, flags


def _products(t: ir.Table, ctx: Context) -> tuple[ir.Table, dict[str, ir.Value], Flags]:
    cols = _clean_strings(t, "products")
    flags: Flags = {}
    cols["price_base"] = _money(t, "price", ctx, cols, flags)
    flags["missing_name"] = cols["name"].isnull()
    return t, cols, flags


def _events(t: ir.Table, ctx: Context) -> tuple[ir.Table, dict[str, ir.Value], Flags]:
    cols = _clean_strings(t, "events")
    flags: Flags = {
        "missing_identifier": cols["anonymous_id"].isnull() & cols["user_id"].isnull(),
        "missing_event": cols["event"].isnull() & cols["type"].isnull(),
        "negative_revenue": t.revenue < 0,
    }
    return t, cols, flags


def _marketing_spend(t: ir.Table, ctx: Context) -> tuple[ir.Table, dict[str, ir.Value], Flags]:
    cols = _clean_strings(t, "marketing_spend")
    flags: Flags = {}
    cols["spend_base"] = _money(t, "spend", ctx, cols, flags)
    flags["negative_count"] = (t.impressions < 0) | (t.clicks < 0)
    return t, cols, flags


def _consents(t: ir.Table, ctx: Context) -> tuple[ir.Table, dict[str, ir.Value], Flags]:
    cols = _clean_strings(t, "consents")
    t = _join_lookup(t, st.email_key_expr(t.identifier), ctx.emails, "email")
    t = _join_lookup(t, st.phone_key_expr(t.identifier), ctx.phones, "phone")
    kind = t.identifier_type.strip().lower()
    std = ibis.cases(
        (kind == "email", t._email_std), (kind == "phone", t._phone_std), else_=cols["identifier"]
    )
    cols["identifier"] = std.fill_null(t.identifier.strip())
    cols["identifier_type"] = kind.nullif("")
    cols["purpose"] = t.purpose.strip().lower().nullif("")
    flags: Flags = {"invalid_identifier": kind.isin(["email", "phone"]) & std.isnull()}
    return t, cols, flags


def _feedback(t: ir.Table, ctx: Context) -> tuple[ir.Table, dict[str, ir.Value], Flags]:
    t, flags = _email_phone(t, ctx)
    cols = _clean_strings(t, "feedback")
    cols.update(email=t._email_std, phone=t._phone_std)
    ids = [cols["source_key"], t._email_std, t._phone_std, cols["user_id"]]
    flags["missing_identifier"] = ibis.and_(*[c.isnull() for c in ids])
    flags["missing_text"] = cols["text"].isnull()
    return t, cols, flags


Builder = Callable[[ir.Table, Context], tuple[ir.Table, dict[str, ir.Value], Flags]]
BUILDERS: dict[str, Builder] = {
    "contacts": _contacts,
    "orders": _orders,
    "order_items": _order_items,
    "products": _products,
    "events": _events,
    "marketing_spend": _marketing_spend,
    "consents": _consents,
    "feedback": _feedback,
}


def build(table: str, rows: ir.Table, ctx: Context) -> ir.Table:
    """The canonical table ``table`` (schema ``schemas.canonical_schema``) from kept raw rows."""
    t, cols, flags = BUILDERS[table](rows, ctx)
    target = schemas.canonical_schema(table)
    values: dict[str, ir.Value] = {}
    for name, kind in target.items():
        if name == "quality_flags":
            values[name] = flag_array(flags)
        else:
            values[name] = cols.get(name, t[name] if name in t.columns else ibis.null(kind))
    return t.select(**{n: v.cast(target[n]) for n, v in values.items()})
