"""Attach orders and events to resolved customers through ``identity_links``."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from loupe.warehouse import Warehouse
from loupe.warehouse.functions import hash64
from loupe.warehouse.schemas import EVENT_PERSONS


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


def unique_links(links: ir.Table, id_type: str, prefix: str) -> ir.Table:
    """``(<prefix>_value, <prefix>_cid)``: the customer of each identifier of ``id_type``."""
    t = links.filter(links.id_type == id_type)
    # One customer per identifier even if a link table carries duplicates.
    t = t.group_by(t.id_value).agg(cid=t.customer_id.min())
    return t.select(**{f"{prefix}_value": t.id_value, f"{prefix}_cid": t.cid})


def _present(col: ir.StringValue) -> ir.StringValue:
    return ibis.ifelse(col == "", ibis.null("string"), col)


def own_id(t: ir.Table) -> ir.StringValue:
    """The person of an event that links to no customer: its anonymous_id, else its user_id."""
    return _present(t.anonymous_id).coalesce(_present(t.user_id))


def is_given(col: ir.StringValue) -> ir.BooleanValue:
    """The event identifier is there: neither NULL nor empty (as
    :func:`loupe.analytics.people.event_people` reads it; the identity graph's ``is_present``
    also strips blanks)."""
    return col.notnull() & (col != "")


def event_person_keys(
    events: ir.Table, links: ir.Table, backend: str, *, person_id: bool = False
) -> ir.Table:
    """``events`` plus ``pk``, the 64-bit hash (:func:`~loupe.warehouse.functions.hash64`) of
    the ``person_id`` that :func:`loupe.analytics.people.event_people` gives, and that
    ``person_id`` when asked.

    The identifiers meet their links as hashes too: both sides are hashed (the links once per
    identifier, the events once per row, as the string join hashed them anyway) and joined
    on integers, and a linked person's key is the hash of its ``customer_id``, taken on the
    links, so no string travels through the joins unless ``person_id`` is asked for.  On the
    50M-event funnel bench, the string joins and the ``person_id`` they carried took about
    6 of 20 CPU seconds.  As with ``pk`` itself, two identifiers that share a hash (about
    ``n m / 2^64`` for ``n`` event identifiers and ``m`` links) would be taken for one.
    Events with neither identifier get a NULL ``pk``.  (Used by the analyses; it lives here
    because the identity stage stores its result, :func:`event_person_index`.)
    """
    cols = {"user_id": "u", "anonymous_id": "a"}
    tabs = {}
    for id_type, p in cols.items():
        t = unique_links(links, id_type, p)
        keep = {f"{p}_cid": t[f"{p}_cid"]} if person_id else {}
        tabs[id_type] = t.select(
            **{f"{p}_h": hash64(t[f"{p}_value"], backend)},
            **{f"{p}_pk": hash64(t[f"{p}_cid"], backend)},
            **keep,
        )
    own = {
        f"_{p}_own": ibis.ifelse(is_given(events[c]), hash64(events[c], backend), None)
        for c, p in cols.items()
    }
    e = events.mutate(**own)
    uid, anon = tabs["user_id"], tabs["anonymous_id"]
    j = e.left_join(uid, e._u_own == uid.u_h).left_join(anon, e._a_own == anon.a_h)
    pk = ibis.coalesce(j.u_pk, j.a_pk, j._a_own, j._u_own)
    extra = {}
    if person_id:
        fallback = own_id(j)
        extra["person_id"] = ibis.coalesce(j.u_cid, j.a_cid, fallback)
    return j.select(*events.columns, pk=pk, **extra)


def event_person_index(events: ir.Table, links: ir.Table, backend: str) -> ir.Table:
    """``(event, ts, pk)`` for every event with an identifier: the ``event_persons`` table.

    The identity stage stores it after each run (``pk`` as :func:`event_person_keys` gives
    it), so a funnel reads the person of each event without joining the events to the
    links: on the 50M-event funnel bench those joins, the identifier strings they read and
    the hashing took about 5 of 13 s.  The warehouse drops it whenever ``events`` or
    ``identity_links`` is written (:data:`loupe.warehouse.schemas.DERIVED_FROM`), and the
    analyses join as before while it is missing.
    """
    e = events.select("event", "ts", "anonymous_id", "user_id")
    e = e.filter(is_given(e.anonymous_id) | is_given(e.user_id))
    e = event_person_keys(e, links, backend)
    return e.select("event", "ts", "pk")


def store_event_persons(wh: Warehouse) -> ir.Table:
    """Write ``event_persons`` from the warehouse's ``events`` and ``identity_links``."""
    index = event_person_index(wh.table("events"), wh.table("identity_links"), wh.backend)
    return wh.replace("event_persons", index.cast(EVENT_PERSONS))
