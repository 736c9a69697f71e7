"""Attach orders and events to resolved customers through ``identity_links``."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from loupe.warehouse import Warehouse


def _links(links: ir.Table, id_type: str, prefix: str) -> ir.Table:
    t = links.filter(links.id_type == id_type)
    return t.select(**{f"{prefix}_value": t.id_value, f"{prefix}_cid": t.customer_id})


def orders_with_customers(orders: ir.Table, links: ir.Table) -> ir.Table:
    """``orders`` plus ``customer_id``.

    An order points to its customer through the record ``<contact_source>:<source_key>``
    when both are set, else through its user_id, then e-mail, then phone.  An order that
    matches nothing (a guest purchase) keeps a NULL ``customer_id``.
    """
    has_record = orders.contact_source.notnull() & orders.source_key.notnull()
    o = orders.mutate(
        _rec=ibis.ifelse(
            has_record, orders.contact_source.concat(":", orders.source_key), ibis.null("string")
        )
    )
    rec, uid = _links(links, "record", "rec"), _links(links, "user_id", "uid")
    em, ph = _links(links, "email", "em"), _links(links, "phone", "ph")
    j = (
        o.left_join(rec, o._rec == rec.rec_value)
        .left_join(uid, o.user_id == uid.uid_value)
        .left_join(em, o.email == em.em_value)
        .left_join(ph, o.phone == ph.ph_value)
    )
    cid = j.rec_cid.coalesce(j.uid_cid, j.em_cid, j.ph_cid)
    return j.select(*orders.columns, customer_id=cid)


def events_with_customers(events: ir.Table, links: ir.Table) -> ir.Table:
    """``events`` plus ``customer_id`` (through user_id, else anonymous_id)."""
    uid, anon = _links(links, "user_id", "uid"), _links(links, "anonymous_id", "an")
    j = events.left_join(uid, events.user_id == uid.uid_value).left_join(
        anon, events.anonymous_id == anon.an_value
    )
    return j.select(*events.columns, customer_id=j.uid_cid.coalesce(j.an_cid))


def order_customers(wh: Warehouse) -> ir.Table:
    """``(order_id, source, customer_id)`` for every order, as resolved by the last run."""
    t = orders_with_customers(wh.table("orders"), wh.table("identity_links"))
    return t.select("order_id", "source", "customer_id")
