"""Stable customer ids.

A component (a resolved person) keeps the id its records had in the previous run:

* each previous id is claimed by the component holding most of its records (ties: the
  component with the smallest label), so a split keeps the id in the larger part;
* a component that claims several ids keeps the one covering most of its records (ties:
  the smallest id), so a merge keeps the larger person's id;
* a component that claims none gets ``'C' + 12 hex of sha256(smallest record name)``, which
  depends only on its records, never on processing order (on the rare clash with an id
  kept by another component, the hash of ``record + '#'`` is used instead).

Re-running on unchanged input therefore gives the same ids, and adding records leaves the
ids of people whose records did not change alone.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def derived_id(record: ir.StringValue, salt: str = "") -> ir.StringValue:
    """``'C' + 12 hex`` of the SHA-256 of a record name."""
    value = record.concat(salt) if salt else record
    return ibis.literal("C").concat(value.hexdigest("sha256").substr(0, 12))


def assign_customer_ids(labels: ir.Table, previous: ir.Table) -> ir.Table:
    """``(label, customer_id)`` for every component.

    ``labels`` is ``(record, label)``; ``previous`` is ``(record, old_id)`` from the last run
    (empty on the first run).
    """
    comps = labels.group_by("label").agg(first=labels.record.min())
    joined = labels.join(previous, labels.record == previous.record)
    cand = joined.group_by(["label", "old_id"]).agg(n=joined.count())
    claim = ibis.window(group_by="old_id", order_by=[ibis.desc("n"), ibis.asc("label")])
    cand = cand.mutate(claim_rank=ibis.row_number().over(claim))
    cand = cand.filter(cand.claim_rank == 0)
    pick = ibis.window(group_by="label", order_by=[ibis.desc("n"), ibis.asc("old_id")])
    best = cand.mutate(pick_rank=ibis.row_number().over(pick))
    best = best.filter(best.pick_rank == 0).select(kept_label="label", kept_id="old_id")

    out = comps.left_join(best, comps.label == best.kept_label)
    fresh = derived_id(out.first)
    taken = fresh.isin(best.kept_id)
    new_id = ibis.ifelse(taken, derived_id(out.first, "#"), fresh)
    return out.select(label=out.label, customer_id=out.kept_id.coalesce(new_id))
