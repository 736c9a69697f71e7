"""How saved segments overlap: pairwise shared members and Jaccard index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis.expr.types as ir
from ibis import _

from loupe.segments.store import current_members, definitions
from loupe.warehouse import Warehouse


def overlap_counts(members: ir.Table) -> ir.Table:
    """``segment_a, segment_b, shared`` for every pair (including a segment with itself)."""
    a = members.select(segment_a=members.segment, cid_a=members.customer_id)
    b = members.select(segment_b=members.segment, cid_b=members.customer_id)
    j = a.join(b, a.cid_a == b.cid_b)
    return j.group_by(["segment_a", "segment_b"]).aggregate(shared=_.cid_a.count())


def overlap(wh: Warehouse, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The overlap matrix of ``names`` (default: every saved segment).

    Returns ``{"segments": [...], "sizes": {...}, "shared": [[...]], "jaccard": [[...]]}``;
    row i, column j of ``shared`` is the number of customers in both segment i and j.
    """
    chosen = list(names) if names else [d.name for d in definitions(wh)]
    if names:
        from loupe.segments.store import definition

        for n in chosen:
            definition(wh, n)  # raises NotFoundError for an unknown name
    df = wh.to_pandas(overlap_counts(current_members(wh, chosen)))
    shared = {(r.segment_a, r.segment_b): int(r.shared) for r in df.itertuples()}
    sizes = {n: shared.get((n, n), 0) for n in chosen}
    matrix = [[shared.get((a, b), 0) for b in chosen] for a in chosen]
    jaccard = [
        [
            (matrix[i][j] / (sizes[a] + sizes[b] - matrix[i][j]))
            if (sizes[a] + sizes[b] - matrix[i][j])
            else 0.0
            for j, b in enumerate(chosen)
        ]
        for i, a in enumerate(chosen)
    ]
    return {"segments": chosen, "sizes": sizes, "shared": matrix, "jaccard": jaccard}
