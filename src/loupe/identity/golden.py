"""The golden record: one row per customer, built by survivorship rules.

For every attribute, the surviving value is the first non-empty value after ranking the
customer's records by

1. source priority (``[identity] source_priority``; unlisted sources after, alphabetically),
2. recency (``updated_at``, else ``signup_at``, newest first),
3. record name (for a deterministic tie-break).

``first_seen``/``last_seen`` span sign-ups, orders and events; ``sources`` is the sorted set
of sources; ``record_count`` the number of records.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from loupe.identity.graph import is_present, record_key
from loupe.warehouse.schemas import CUSTOMERS, schema

ATTRIBUTES: tuple[str, ...] = (
    "email",
    "phone",
    "user_id",
    "name",
    "gender",
    "birth_date",
    "city",
    "region",
    "country",
)


def source_rank(source: ir.StringValue, priority: Sequence[str]) -> ir.IntegerValue:
    """Position of a source in ``priority``; unlisted sources share the last rank."""
    if not priority:
        return ibis.literal(0)
    return ibis.cases(*[(source == s, i) for i, s in enumerate(priority)], else_=len(priority))


def _present(col: ir.Value) -> ir.BooleanValue:
    if col.type().is_string():
        return is_present(col)
    return col.notnull()


def survivors(records: ir.Table, attribute: str) -> ir.Table:
    """``(customer_id, attribute)``: the surviving value of one attribute per customer."""
    t = records.filter(_present(records[attribute]))
    w = ibis.window(
        group_by="customer_id",
        order_by=[
            t._rank,
            t.source,
            t._recency.isnull(),
            t._recency.desc(),
            t.record,
        ],
    )
    t = t.mutate(_rn=ibis.row_number().over(w))
    return t.filter(t._rn == 0).select("customer_id", attribute)


def _seen(t: ir.Table, ts: str) -> ir.Table:
    t = t.filter(t.customer_id.notnull() & t[ts].notnull())
    return t.group_by("customer_id").agg(lo=t[ts].min(), hi=t[ts].max())


def golden_records(
    contacts: ir.Table,
    record_customers: ir.Table,
    priority: Sequence[str],
    orders: ir.Table | None = None,
    events: ir.Table | None = None,
) -> ir.Table:
    """The ``customers`` table.

    ``record_customers`` is ``(record, customer_id)``; ``orders``/``events`` carry a
    ``customer_id`` column (see :mod:`loupe.identity.attach`) and feed first/last seen.
    """
    c = contacts.mutate(record=record_key(contacts))
    c = c.join(record_customers, "record")
    c = c.mutate(
        _rank=source_rank(c.source, priority),
        _recency=c.updated_at.coalesce(c.signup_at),
    )
    base = c.group_by("customer_id").agg(
        record_count=c.count(),
        sources=c.source.collect(distinct=True).sort(),
    )
    seen = [_seen(c, "signup_at")]
    if orders is not None:
        seen.append(_seen(orders, "ordered_at"))
    if events is not None:
        seen.append(_seen(events, "ts"))
    spans = ibis.union(*seen)
    spans = spans.group_by("customer_id").agg(first_seen=spans.lo.min(), last_seen=spans.hi.max())

    parts = {
        attr: survivors(c, attr).rename({f"_{attr}_cid": "customer_id"}) for attr in ATTRIBUTES
    }
    spans = spans.rename(_span_cid="customer_id")
    j = base
    for attr, part in parts.items():
        j = j.left_join(part, base.customer_id == part[f"_{attr}_cid"])
    j = j.left_join(spans, base.customer_id == spans._span_cid)
    values = {attr: parts[attr][attr] for attr in ATTRIBUTES}
    out = j.select(
        customer_id=base.customer_id,
        **values,
        first_seen=spans.first_seen,
        last_seen=spans.last_seen,
        sources=base.sources,
        record_count=base.record_count,
    )
    return out.select(*CUSTOMERS).cast(schema(CUSTOMERS))
