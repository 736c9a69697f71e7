"""Connected components by label propagation, written in Ibis so it runs on any backend.

Every record starts with its own name as label.  One iteration

1. gives every identifier the minimum label of the records that carry it,
2. gives every record the minimum of its label and the labels of its identifiers,
3. jumps pointers: a record whose new label is record ``r`` takes ``r``'s label from the
   start of the iteration if smaller (labels are always record names, so long chains
   collapse in a logarithmic number of steps rather than a linear one).

Labels only decrease and always name a record of the same component, so when an iteration
changes nothing every record holds the smallest record name of its component.  Each
iteration is materialised with ``wh.replace`` into a work table, which keeps the query
plans small on DuckDB and Spark alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from loupe.warehouse import Warehouse

LABELS = "identity_work_labels"
NEXT = "identity_work_next"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Propagation:
    """Outcome of :func:`propagate_labels`."""

    iterations: int
    converged: bool


def propagation_step(edges: ir.Table, labels: ir.Table) -> ir.Table:
    """One iteration of min-label propagation with pointer jumping.

    ``edges`` has ``record`` and ``node`` (any identifier of a group of records);
    ``labels`` has ``record`` and ``label``.  Returns the new ``(record, label)``.
    """
    e = edges.join(labels, "record")
    node_min = e.group_by("node").agg(node_label=e.label.min())
    back = edges.join(node_min, "node")
    rec_min = back.group_by("record").agg(edge_label=back.node_label.min())
    # jump from the label an edge offers to that record's own label
    hop = labels.view()
    offered = rec_min.left_join(hop, rec_min.edge_label == hop.record).select(
        record=rec_min.record,
        offer=ibis.least(rec_min.edge_label, hop.label.coalesce(rec_min.edge_label)),
    )
    # and from a record's current label to that record's label
    parent = labels.view()
    j = labels.left_join(offered, labels.record == offered.record).left_join(
        parent, labels.label == parent.record
    )
    return j.select(
        record=labels.record,
        label=ibis.least(
            labels.label,
            offered.offer.coalesce(labels.label),
            parent.label.coalesce(labels.label),
        ),
    )


def propagate_labels(
    wh: Warehouse,
    edges: ir.Table,
    *,
    max_iterations: int,
    progress: Progress | None = None,
    step_name: str = "components",
) -> Propagation:
    """Run propagation over ``edges`` starting from the labels in table :data:`LABELS`.

    Iterates until no label changes or ``max_iterations`` is reached; the final labels are
    left in :data:`LABELS`.
    """
    for i in range(1, max_iterations + 1):
        labels = wh.table(LABELS)
        new = wh.replace(NEXT, propagation_step(edges, labels))
        old = wh.table(LABELS)
        diff = new.join(old, new.record == old.record).filter(lambda t: t.label != t.label_right)
        changed = wh.count(diff)
        wh.replace(LABELS, wh.table(NEXT))
        if progress is not None:
            progress(step_name, i, i + (1 if changed else 0))
        if changed == 0:
            return Propagation(iterations=i, converged=True)
    return Propagation(iterations=max_iterations, converged=False)


def initial_labels(records: ir.Table) -> ir.Table:
    """Every record labelled with its own name."""
    return records.select("record", label=records.record)
