"""Who did it: the resolved person behind an event or an order.

Analyses count *people*, not identifiers.  A person is the ``customer_id`` that identity
resolution gave the identifier, or, for a visitor never identified, the ``anonymous_id``
itself (``identified`` tells the two apart).
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

# The person key of an event is the identity stage's to store (``event_persons``), so its
# expressions live there; the analyses import them from here.
from loupe.identity.attach import (  # noqa: F401
    event_person_index,
    event_person_keys,
    is_given,
    orders_with_customers,
    own_id,
    unique_links,
)

#: What every analysis reads: canonical tables by name.
Tables = Mapping[str, ir.Table]


def event_people(events: ir.Table, links: ir.Table) -> ir.Table:
    """``events`` plus ``person_id`` and ``identified``.

    ``person_id`` is the customer linked to the event's ``user_id``, else the customer linked
    to its ``anonymous_id``, else the ``anonymous_id`` itself (a visitor never identified),
    else an unlinked ``user_id`` (identity not run yet); NULL only for an event that carries
    neither identifier.
    """
    uid, anon = unique_links(links, "user_id", "uid"), unique_links(links, "anonymous_id", "an")
    j = events.left_join(uid, events.user_id == uid.uid_value).left_join(
        anon, events.anonymous_id == anon.an_value
    )
    cid = j.uid_cid.coalesce(j.an_cid)
    fallback = own_id(j)
    return j.select(*events.columns, person_id=cid.coalesce(fallback), identified=cid.notnull())


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
