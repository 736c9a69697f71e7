"""Analysis results as saved audiences: a list of customers becomes a static segment.

A funnel drop-off list (or any other set of customers an analysis finds) is saved the way
k-means clusters are: a definition with an empty expression in ``segments`` (so ``loupe
segments refresh`` keeps it as it is) and one snapshot of members in ``segment_members``,
through the segments store's public functions.  Campaigns then target it like any segment.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from loupe.errors import LoupeError


def save_static_segment(
    wh: Any, name: str, members: ir.Table, description: str = "", *, replace: bool = False
) -> None:
    """Save ``members`` (a table with ``customer_id``) as the static segment ``name``.

    Refuses to overwrite an existing segment unless ``replace``; a replaced segment gets a
    new snapshot, so its previous members stay queryable as history.
    """
    from loupe.profile.stage import SEGMENT_MEMBERS, ensure_tables
    from loupe.segments.settings import SegmentSettings
    from loupe.segments.store import definitions, save_definitions
    from loupe.warehouse import utcnow

    seg = SegmentSettings(name=name, expr="", description=description)
    existing = {d.name: d for d in definitions(wh)}
    if seg.name in existing and not replace:
        raise LoupeError(
            f"segment {seg.name!r} already exists",
            where="--save-segment",
            fix="pass --replace to overwrite it, or choose another name",
        )
    if seg.name in existing and existing[seg.name].expr.strip():
        raise LoupeError(
            f"segment {seg.name!r} is defined by an expression; a drop-off list cannot replace it",
            where="--save-segment",
            fix="choose another name",
        )
    ensure_tables(wh)
    save_definitions(wh, [seg])
    rows = members.select(
        segment=ibis.literal(seg.name, type="string"),
        customer_id=members.customer_id.cast("string"),
        computed_at=ibis.literal(utcnow(), type="timestamp"),
    )
    wh.append(SEGMENT_MEMBERS, rows, count=False)
