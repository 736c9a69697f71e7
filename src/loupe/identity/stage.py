"""``resolve_identities``: the identity stage from canonical tables to customers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from loupe.identity import components as comp
from loupe.identity.attach import (
    orders_with_customers,
    store_event_persons,
)
from loupe.identity.golden import golden_records
from loupe.identity.graph import (
    is_present,
    linking_edges,
    record_identifiers,
    record_key,
    shared_identifiers,
)
from loupe.identity.ids import assign_customer_ids
from loupe.identity.probabilistic import match_records
from loupe.warehouse import Warehouse, stage_run
from loupe.warehouse.schemas import (
    CUSTOMER_ID_CHANGES,
    CUSTOMERS,
    IDENTITY_LINKS,
    IDENTITY_MATCHES,
    SHARED_IDENTIFIERS,
    schema,
)

Progress = Callable[[str, int, int], None]

SHARED_SCHEMA = schema(SHARED_IDENTIFIERS)
MATCHES_SCHEMA = schema(IDENTITY_MATCHES)
CHANGES = schema(CUSTOMER_ID_CHANGES)
WORK_TABLES = (
    *comp.WORK_TABLES,
    "identity_work_ids",
    "identity_work_edges",
    "identity_work_all_edges",
    "identity_work_previous",
    "identity_work_records",
    "identity_work_contacts",
)
TOP_SHARED = 20
#: Customers of most records in the report: where an over-merge shows first.
TOP_LARGEST = 5
#: Bins of ``records_per_customer`` in the report: (name, fewest, most).
SIZE_BINS = (
    ("1", 1, 1),
    ("2", 2, 2),
    ("3", 3, 3),
    ("4-5", 4, 5),
    ("6-10", 6, 10),
    ("11-50", 11, 50),
    ("51+", 51, None),
)


@dataclass(frozen=True)
class IdentityReport:
    """What one identity run did."""

    records: int
    customers: int
    duplicates_merged: int
    links_by_type: dict[str, int]
    shared_identifiers: int
    shared_top: list[dict[str, Any]]
    probabilistic_links: int
    match_weights: list[dict[str, Any]]
    prior_match_probability: float
    blocking_rules: list[str]
    iterations: int
    converged: bool
    seconds: dict[str, float] = field(default_factory=dict)
    match_threshold: float | None = None  # None: probabilistic matching is off
    ids_retired: int = 0  # last run's customer ids no customer keeps (customer_id_changes)
    records_per_customer: dict[str, int] = field(default_factory=dict)
    largest_customers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self.start, 3)}


def _previous_ids(wh: Warehouse) -> ir.Table:
    """``(record, old_id)`` from the last run's ``identity_links``."""
    if wh.exists("identity_links"):
        links = wh.table("identity_links")
        prev = links.filter(links.id_type == "record").select(
            record=links.id_value, old_id=links.customer_id
        )
    else:
        prev = ibis.memtable(
            pd.DataFrame({"record": [], "old_id": []}),
            schema=ibis.schema({"record": "string", "old_id": "string"}),
        )
    return wh.scratch("identity_work_previous", prev)


def _probabilistic(wh: Warehouse, contacts: ir.Table, threshold: float) -> tuple[pd.DataFrame, Any]:
    labels = wh.table(comp.LABELS)
    c = contacts.mutate(record=record_key(contacts))
    extract = c.join(labels, "record").select(
        "record",
        component=labels.label,
        name=c.name,
        birth_date=c.birth_date,
        city=c.city,
        gender=c.gender,
    )
    # As Arrow, in record order: what ``prepare`` works on (no Python object per value).
    df = wh.to_arrow(extract.order_by("record"))
    # Splink's DuckDB and the warehouse's share the project's memory limit while it runs.
    with wh.lending_memory() as limit:
        result = match_records(df, threshold=threshold, memory_limit=limit)
    return result.pairs, result


def _match_edges(pairs: pd.DataFrame) -> ir.Table:
    node = "match:" + pairs["record_l"] + "|" + pairs["record_r"]
    df = pd.DataFrame(
        {
            "record": list(pairs["record_l"]) + list(pairs["record_r"]),
            "node": list(node) + list(node),
        }
    )
    return ibis.memtable(df, schema=ibis.schema({"record": "string", "node": "string"}))


def _identity_links(edges: ir.Table, record_customers: ir.Table) -> ir.Table:
    ids = edges.join(record_customers, "record")
    ids = ids.select("id_type", "id_value", "customer_id").distinct()
    recs = record_customers.select(
        id_type=ibis.literal("record"), id_value=record_customers.record, customer_id="customer_id"
    )
    return ibis.union(ids, recs).cast(schema(IDENTITY_LINKS))


def retired_ids(previous: ir.Table, record_customers: ir.Table, kept: ir.Table) -> ir.Table:
    """The last run's customer ids that no customer keeps, and where their records went.

    ``previous`` is ``(record, old_id)`` from the last run, ``record_customers`` ``(record,
    customer_id)`` from this one and ``kept`` this run's ``customer_id`` column.  An id is
    ``merged`` into the customer now holding most of its records (ties: the smallest id),
    or ``removed`` when none of its records is left.
    """
    olds = previous.group_by("old_id").agg(old_records=previous.count())
    gone = olds.anti_join(kept, olds.old_id == kept.customer_id)
    went = previous.join(record_customers, "record")
    went = went.group_by(["old_id", "customer_id"]).agg(records=went.count())
    w = ibis.window(group_by="old_id", order_by=[ibis.desc("records"), "customer_id"])
    went = went.mutate(_rank=ibis.row_number().over(w))
    most = went.filter(went._rank == 0).drop("_rank")
    out = gone.left_join(most, gone.old_id == most.old_id)
    return out.select(
        old_id=gone.old_id,
        customer_id=most.customer_id,
        reason=ibis.ifelse(most.customer_id.isnull(), "removed", "merged"),
        records=most.records.fill_null(0),
        old_records=gone.old_records,
        changed_at=ibis.literal(datetime.now(UTC).replace(tzinfo=None), "timestamp"),
    )


def order_records(orders: ir.Table, contact_schema: ibis.Schema) -> ir.Table:
    """Contact-shaped records of the people behind orders that name no contact record.

    One record per order source and identifier (the ``user_id``, else the e-mail, else the
    phone), named ``orders:<source>:<identifier>``; it carries the smallest of each identifier
    seen on those orders and, as ``signup_at``/``updated_at``, the first and last order time.
    """

    def present(col: ir.StringValue) -> ir.StringValue:  # as the graph reads identifiers
        return ibis.ifelse(is_present(col), col, ibis.null("string"))

    key = present(orders.user_id).coalesce(present(orders.email), present(orders.phone))
    unnamed = orders.contact_source.isnull() | orders.source_key.isnull()
    o = orders.filter(key.notnull() & unnamed).mutate(_key=key)
    g = o.group_by(
        source=ibis.literal("orders:").concat(o.source.fill_null("")), source_key=o._key
    ).agg(
        user_id=present(o.user_id).min(),
        email=present(o.email).min(),
        phone=present(o.phone).min(),
        signup_at=o.ordered_at.min(),
        updated_at=o.ordered_at.max(),
    )
    return g.select(
        **{c: g[c] if c in g.columns else ibis.null(t) for c, t in contact_schema.items()}
    ).cast(contact_schema)


def resolve_identities(wh: Warehouse, progress: Progress | None = None) -> IdentityReport:
    """Resolve ``contacts`` into customers; write ``identity_links`` and ``customers``.

    Also writes ``shared_identifiers`` (identifiers the over-merge guard refused) and
    ``identity_matches`` (record pairs linked by the probabilistic model), and appends to
    ``customer_id_changes`` the last run's customer ids that no customer keeps.

    Parameters
    ----------
    wh
        The open warehouse; ``wh.settings.identity`` holds the settings.
    progress
        Optional ``progress(step, done, total)`` callback.
    """
    cfg = wh.settings.identity
    tick = progress or (lambda step, done, total: None)
    clock = _Clock()
    inputs = ["contacts", "events", "orders"]
    outputs = [
        "identity_links",
        "customers",
        "shared_identifiers",
        "identity_matches",
        "event_persons",
        "customer_id_changes",
    ]
    with stage_run(wh, "identity", inputs, outputs) as run:
        steps = 6
        tick("identity", 0, steps)
        contacts = real_contacts = wh.table("contacts")
        if cfg.customers_from_orders and wh.exists("orders"):
            implied = order_records(wh.table("orders"), contacts.schema())
            contacts = wh.scratch(
                "identity_work_contacts", ibis.union(contacts, implied, distinct=False)
            )
        events = wh.table("events") if wh.exists("events") else None
        records = wh.scratch(
            "identity_work_records", contacts.select(record=record_key(contacts)).distinct()
        )
        n_records = wh.count(records)
        run.rows_in = n_records

        # Materialised once: the guard and the linking edges both read it, and as an
        # expression it was computed twice (the union of every identifier column and the
        # identify calls): at 1M customers this part took 27.2 s, 20-21.5 s with the work table.
        all_edges = wh.scratch("identity_work_all_edges", record_identifiers(contacts, events))
        shared = wh.replace(
            "shared_identifiers",
            shared_identifiers(all_edges, contacts, events, cfg.max_records_per_identifier).cast(
                SHARED_SCHEMA
            ),
        )
        edges = wh.scratch("identity_work_edges", linking_edges(all_edges, shared))
        clock.lap("graph")
        tick("identity", 1, steps)

        nodes = edges.select("record", node=edges.id_type.concat(":", edges.id_value))
        prop = comp.connected_components(
            wh, records, nodes, max_iterations=cfg.max_iterations, progress=progress
        )
        iterations, converged = prop.iterations, prop.converged
        clock.lap("components")
        tick("identity", 2, steps)

        pairs = pd.DataFrame(columns=list(MATCHES_SCHEMA.names))
        model = None
        if cfg.probabilistic and n_records > 1:
            # records made from orders carry no name, birth date or city to compare
            pairs, model = _probabilistic(wh, real_contacts, cfg.match_threshold)
            if len(pairs):
                more = comp.merge_components(
                    wh,
                    _match_edges(pairs),
                    max_iterations=max(cfg.max_iterations - iterations, 1),
                    progress=progress,
                    step_name="components (probabilistic)",
                )
                iterations += more.iterations
                converged = more.converged
        wh.replace("identity_matches", ibis.memtable(pairs, schema=MATCHES_SCHEMA))
        clock.lap("probabilistic")
        tick("identity", 3, steps)

        previous = _previous_ids(wh)
        labels = wh.table(comp.LABELS)
        ids = wh.scratch("identity_work_ids", assign_customer_ids(labels, previous))
        record_customers = labels.join(ids, "label").select("record", "customer_id")
        retired = wh.append(
            "customer_id_changes", retired_ids(previous, record_customers, ids).cast(CHANGES)
        )
        links = wh.replace("identity_links", _identity_links(edges, record_customers))
        clock.lap("ids")
        tick("identity", 4, steps)

        rc = links.filter(links.id_type == "record").select(
            record=links.id_value, customer_id=links.customer_id
        )
        persons = None
        if events is not None:
            # the person key of every event, so funnels need not join events to the links;
            # the golden records take each customer's first and last event from it
            persons = store_event_persons(wh)
            clock.lap("event_persons")
        orders = orders_with_customers(wh.table("orders"), links) if wh.exists("orders") else None
        golden = golden_records(contacts, rc, cfg.source_priority, orders, persons, wh.backend)
        customers = wh.replace("customers", golden.cast(schema(CUSTOMERS)))
        clock.lap("golden")
        tick("identity", 5, steps)

        report = _report(wh, links, customers, shared, n_records, pairs, model)
        for name in WORK_TABLES:
            wh.drop(name)
        run.rows_out = report["customers"]
        tick("identity", steps, steps)
    return IdentityReport(
        **report,
        iterations=iterations,
        converged=converged,
        seconds=clock.total(),
        match_threshold=cfg.match_threshold if cfg.probabilistic else None,
        ids_retired=retired,
    )


def _report(
    wh: Warehouse,
    links: ir.Table,
    customers: ir.Table,
    shared: ir.Table,
    n_records: int,
    pairs: pd.DataFrame,
    model: Any,
) -> dict[str, Any]:
    by_type = wh.to_pandas(links.group_by("id_type").agg(n=links.count()))
    n_customers = wh.count(customers)
    sizes = wh.to_pandas(customers.group_by("record_count").agg(n=customers.count()))
    largest = wh.to_pandas(
        customers.order_by([ibis.desc("record_count"), "customer_id"])
        .limit(TOP_LARGEST)
        .select("customer_id", "name", "record_count")
    )
    top = wh.to_pandas(
        shared.order_by([ibis.desc("records"), "id_type", "id_value"]).limit(TOP_SHARED)
    )
    return {
        "records": n_records,
        "customers": n_customers,
        "duplicates_merged": n_records - n_customers,
        "links_by_type": {
            str(k): int(v) for k, v in sorted(zip(by_type.id_type, by_type.n, strict=True))
        },
        "shared_identifiers": wh.count(shared),
        "shared_top": [
            {"id_type": r.id_type, "id_value": r.id_value, "records": int(r.records)}
            for r in top.itertuples()
        ],
        "records_per_customer": {
            name: int(
                sizes.n[(sizes.record_count >= lo) & (sizes.record_count <= (hi or 1 << 62))].sum()
            )
            for name, lo, hi in SIZE_BINS
        },
        "largest_customers": [
            {
                "customer_id": str(r.customer_id),
                "name": r.name if isinstance(r.name, str) else None,
                "records": int(r.record_count),
            }
            for r in largest.itertuples()
        ],
        "probabilistic_links": len(pairs),
        "match_weights": [lv.to_dict() for lv in model.levels] if model is not None else [],
        "prior_match_probability": float(model.prior_match) if model is not None else 0.0,
        "blocking_rules": list(model.blocking) if model is not None else [],
    }
