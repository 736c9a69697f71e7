"""The customer table expressions are evaluated against: golden attributes plus features."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

#: Columns of ``customers`` carried into the audience table (arrays are left out).
ATTRIBUTES = (
    "email",
    "phone",
    "user_id",
    "name",
    "gender",
    "birth_date",
    "city",
    "region",
    "country",
    "first_seen",
    "last_seen",
    "record_count",
)


def audience_table(customers: ir.Table, features: ir.Table) -> ir.Table:
    """One row per customer of ``features`` with the golden attributes and ``age``.

    ``age`` is whole years at the features' ``as_of`` date; ``has_email``/``has_phone`` say
    whether the golden record holds one.
    """
    keep = [c for c in ATTRIBUTES if c in customers.columns and c not in features.columns]
    attrs = customers.select(_cid=customers.customer_id, **{c: customers[c] for c in keep})
    j = features.left_join(attrs, features.customer_id == attrs._cid).drop("_cid")
    extra = {}
    if "birth_date" in keep:
        born = j.birth_date.cast("date")
        years = j.as_of.cast("date").year() - born.year()
        before_birthday = (j.as_of.cast("date").month() < born.month()) | (
            (j.as_of.cast("date").month() == born.month())
            & (j.as_of.cast("date").day() < born.day())
        )
        extra["age"] = (years - ibis.ifelse(before_birthday, 1, 0)).cast("int64")
    if "email" in keep:
        extra["has_email"] = j.email.notnull() & (j.email != "")
    if "phone" in keep:
        extra["has_phone"] = j.phone.notnull() & (j.phone != "")
    return j.mutate(**extra)
