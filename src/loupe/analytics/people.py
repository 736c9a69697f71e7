"""Who did it: the resolved person behind an event or an order.

Analyses count *people*, not identifiers.  A person is the ``customer_id`` that identity
resolution gave the identifier, or, for a visitor never identified, the ``anonymous_id``
itself (``identified`` tells the two apart).
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from loupe.identity.attach import orders_with_customers
from loupe.warehouse.functions import hash64

#: What every analysis reads: canonical tables by name.
Tables = Mapping[str, ir.Table]


def _links(links: ir.Table, id_type: str, prefix: str) -> ir.Table:
    t = links.filter(links.id_type == id_type)
    # One customer per identifier even if a link table carries duplicates.
    t = t.group_by(t.id_value).agg(cid=t.customer_id.min())
    return t.select(**{f"{prefix}_value": t.id_value, f"{prefix}_cid": t.cid})


def _present(col: ir.StringValue) -> ir.StringValue:
    return ibis.ifelse(col == "", ibis.null("string"), col)


def _own_id(t: ir.Table) -> ir.StringValue:
    """The person of an event that links to no customer: its anonymous_id, else its user_id."""
    return _present(t.anonymous_id).coalesce(_present(t.user_id))


def is_given(col: ir.StringValue) -> ir.BooleanValue:
    """The event identifier is there: neither NULL nor empty (as :func:`event_people` reads
    it; the identity graph's ``is_present`` also strips blanks)."""
    return col.notnull() & (col != "")


def event_people(events: ir.Table, links: ir.Table) -> ir.Table:
    """``events`` plus ``person_id`` and ``identified``.

    ``person_id`` is the customer linked to the event's ``user_id``, else the customer linked
    to its ``anonymous_id``, else the ``anonymous_id`` itself (a visitor never identified),
    else an unlinked ``user_id`` (identity not run yet); NULL only for an event that carries
    neither identifier.
    """
    uid, anon = _links(links, "user_id", "uid"), _links(links, "anonymous_id", "an")
    j = events.left_join(uid, events.user_id == uid.uid_value).left_join(
        anon, events.anonymous_id == anon.an_value
    )
    cid = j.uid_cid.coalesce(j.an_cid)
    fallback = _own_id(j)
    return j.select(*events.columns, person_id=cid.coalesce(fallback), identified=cid.notnull())


def event_person_keys(
    events: ir.Table, links: ir.Table, backend: str, *, person_id: bool = False
) -> ir.Table:
    """``events`` plus ``pk``, the 64-bit hash (:func:`~loupe.warehouse.functions.hash64`) of
    the ``person_id`` that :func:`event_people` gives, and that ``person_id`` when asked.

    The identifiers meet their links as hashes too: both sides are hashed (the links once per
    identifier, the events once per row, as the string join hashed them anyway) and joined
    on integers, and a linked person's key is the hash of its ``customer_id``, taken on the
    links, so no string travels through the joins unless ``person_id`` is asked for.  On the
    50M-event funnel bench, the string joins and the ``person_id`` they carried took about
    6 of 20 CPU seconds.  As with ``pk`` itself, two identifiers that share a hash (about
    ``n m / 2^64`` for ``n`` event identifiers and ``m`` links) would be taken for one.
    Events with neither identifier get a NULL ``pk``.
    """
    cols = {"user_id": "u", "anonymous_id": "a"}
    tabs = {}
    for id_type, p in cols.items():
        t = _links(links, id_type, p)
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
        fallback = _own_id(j)
        extra["person_id"] = ibis.coalesce(j.u_cid, j.a_cid, fallback)
    return j.select(*events.columns, pk=pk, **extra)


def _first_row(ts: ir.Value, tie: ir.Value, channel: ir.Value) -> ir.StructValue:
    """``{tie, channel}`` of the earliest row, ties in time to the smaller id."""
    key = ibis.struct({"t": ts, "i": tie})
    return ibis.struct({"tie": tie, "channel": channel}).argmin(key)


def first_touch(tables: Tables) -> ir.Table:
    """``(person_id, first_at, channel)``: each person's first event and its ``utm_source``.

    Ties in time go to the smaller ``event_id``; an empty or missing ``utm_source`` is
    ``(direct)``.  The first event is found per identifier, then per person, with one
    ``argmin`` on a ``(time, event_id)`` key.  A row-number window over every event (the
    earlier form) sorted all 50M events of the benchmark: retention by channel took 28.6 s,
    and 13.6-16.4 s this way.  Folding this ``argmin`` into retention's identifier pass was
    slower still (38 s): DuckDB's grouped aggregate slows down badly with a struct state of
    strings beside the period masks.
    """
    ev = tables["events"]
    e = ev.select("anonymous_id", "user_id", "ts", "event_id", "utm_source")
    e = e.filter(e.ts.notnull())
    src = ibis.ifelse(e.utm_source == "", ibis.null("string"), e.utm_source)
    ident = e.group_by("anonymous_id", "user_id").agg(
        at=e.ts.min(), _f=_first_row(e.ts, e.event_id, src)
    )
    ident = ident.select(
        "anonymous_id", "user_id", "at", tie=ident._f.tie, channel=ident._f.channel
    )
    p = event_people(ident, tables["identity_links"])
    p = p.filter(p.person_id.notnull())
    first = p.group_by("person_id").agg(first_at=p.at.min(), _f=_first_row(p.at, p.tie, p.channel))
    return first.select("person_id", "first_at", channel=first._f.channel.fill_null("(direct)"))


def order_people(orders: ir.Table, links: ir.Table) -> ir.Table:
    """``orders`` plus ``person_id`` (the resolved ``customer_id``).

    An order points to its customer through the record ``<contact_source>:<source_key>``,
    else its ``user_id``, then e-mail, then phone.  A guest order that matches nothing keeps
    a NULL ``person_id``.
    """
    t = orders_with_customers(orders, links)
    return t.rename(person_id="customer_id")


def tables_of(wh, names: list[str]) -> dict[str, ir.Table]:
    """The canonical tables ``names`` of a warehouse, as the pure analyses take them."""
    return {name: wh.table(name) for name in names}


def segment_split(members: ir.Table, split: str) -> tuple[ir.Table, str]:
    """``(_sp, _sv)`` person → group for a split by segment, and the value of the others.

    ``split`` is ``"segment"`` (one group per saved segment, so a person in several segments
    counts in each; people in none are ``(none)``) or ``"segment:NAME"`` (``NAME`` for its
    members, ``not NAME`` for everyone else).  Members are each segment's latest snapshot in
    ``segment_members`` (the table :func:`loupe.segments.current_members` reads).
    """
    from loupe.segments.store import latest_snapshots

    m = latest_snapshots(members)
    m = m.filter(m.customer_id.notnull())
    if split == "segment":
        return m.select(_sp=m.customer_id, _sv=m.segment).distinct(), "(none)"
    name = split.split(":", 1)[1]
    m = m.filter(m.segment == ibis.literal(name, type="string"))
    return m.select(_sp=m.customer_id, _sv=m.segment).distinct(), f"not {name}"


def is_segment_split(split: str | None) -> bool:
    """``segment`` or ``segment:NAME``."""
    return split is not None and (split == "segment" or split.startswith("segment:"))
