"""Saved segments: definitions in ``segments``, members in ``segment_members``.

A segment is a named condition in the segment language over the audience table (golden
attributes plus ``customer_features``).  ``segments`` holds one row per definition (name,
expr, description, created_at); every refresh appends the members of each segment with one
``computed_at`` to ``segment_members``, so ``in_segment`` (and :func:`current_members`) read
the latest snapshot and older ones stay queryable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from loupe.errors import LoupeError, NotFoundError
from loupe.expr import CompileContext, ExprError, compile_filter, compile_predicate, parse
from loupe.expr.nodes import InSegment, walk
from loupe.profile.audience import audience_table
from loupe.profile.stage import (
    FEATURES,
    SEGMENT_MEMBERS,
    ensure_tables,
    features_as_of,
    tag_context,
)
from loupe.profile.tables import profile_tables
from loupe.profile.work import work_table
from loupe.segments.settings import SegmentSettings, declared_segments
from loupe.warehouse import Warehouse, stage_run, utcnow

SEGMENTS = "segments"
SEGMENTS_SCHEMA = ibis.schema(
    {"name": "string", "expr": "string", "description": "string", "created_at": "timestamp"}
)
MEMBERS_COLUMNS = ("segment", "customer_id", "computed_at")
WORK_MEMBERS = "segments_work_members"
"""One row per customer, one boolean column per segment (the last refresh)."""


@dataclass
class Audience:
    """The table expressions are evaluated against, and what they are compiled with."""

    table: ir.Table
    context: CompileContext
    revenue_column: str = "monetary"


def audience(wh: Warehouse) -> Audience:
    """The audience table of the current ``customer_features`` and its compile context."""
    features = wh.table(FEATURES)
    as_of = features_as_of(wh, features)
    table = audience_table(wh.table("customers"), features)
    return Audience(table, tag_context(wh, profile_tables(wh), as_of))


def members_of(expr: str, aud: Audience) -> ir.Table:
    """The customers (audience rows) where ``expr`` holds; raises :class:`ExprError`."""
    return compile_filter(expr, aud.table, context=aud.context)


def preview(wh: Warehouse, expr: str, *, sample: int = 10) -> dict[str, Any]:
    """Size of a segment without saving anything.

    Returns ``{"expr", "size", "population", "share", "revenue", "revenue_share", "sample"}``
    (``sample``: up to ``sample`` customer ids, smallest first).
    """
    aud = audience(wh)
    members = members_of(expr, aud)
    col = aud.revenue_column
    stats = wh.to_pandas(
        members.aggregate(size=members.customer_id.count(), revenue=members[col].sum())
    )
    total = wh.to_pandas(
        aud.table.aggregate(n=aud.table.customer_id.count(), revenue=aud.table[col].sum())
    )
    size, population = int(stats["size"].iloc[0]), int(total["n"].iloc[0])
    revenue = float(stats["revenue"].fillna(0).iloc[0])
    all_revenue = float(total["revenue"].fillna(0).iloc[0])
    ids = wh.to_pandas(members.select("customer_id").order_by("customer_id").limit(sample))
    return {
        "expr": expr,
        "size": size,
        "population": population,
        "share": size / population if population else 0.0,
        "revenue": revenue,
        "revenue_share": revenue / all_revenue if all_revenue else 0.0,
        "sample": [str(x) for x in ids["customer_id"]],
    }


# -- definitions ------------------------------------------------------------------------------
def definitions(wh: Warehouse) -> list[SegmentSettings]:
    """Every saved segment definition, by name."""
    if not wh.exists(SEGMENTS):
        return []
    df = wh.to_pandas(wh.table(SEGMENTS).order_by("name"))
    return [
        SegmentSettings(name=r.name, expr=r.expr, description=r.description or "")
        for r in df.itertuples()
    ]


def definition(wh: Warehouse, name: str) -> dict[str, Any]:
    if wh.exists(SEGMENTS):
        t = wh.table(SEGMENTS)
        df = wh.to_pandas(t.filter(t.name == ibis.literal(name, type="string")))
        if len(df):
            row = df.iloc[0]
            return {
                "name": row["name"],
                "expr": row["expr"],
                "description": row["description"] or "",
                "created_at": row["created_at"],
            }
    known = [d.name for d in definitions(wh)]
    raise NotFoundError(
        f"No segment named {name!r}",
        where=SEGMENTS,
        fix=f"saved segments: {', '.join(known) or 'none'} (create one with `loupe segments create`)",
    )


def save_definitions(wh: Warehouse, segments: Sequence[SegmentSettings]) -> None:
    """Insert or update definitions (an unchanged definition keeps its ``created_at``)."""
    wh.create_empty(SEGMENTS, SEGMENTS_SCHEMA)
    current = wh.to_pandas(wh.table(SEGMENTS))
    rows = {r["name"]: r for r in current.to_dict(orient="records")}
    now = utcnow()
    changed = False
    for s in segments:
        old = rows.get(s.name)
        if (
            old is not None
            and old["expr"] == s.expr
            and (old["description"] or "") == s.description
        ):
            continue
        rows[s.name] = {
            "name": s.name,
            "expr": s.expr,
            "description": s.description,
            "created_at": now,
        }
        changed = True
    if changed:
        data = {c: [r[c] for r in rows.values()] for c in SEGMENTS_SCHEMA.names}
        wh.replace(SEGMENTS, ibis.memtable(data, schema=SEGMENTS_SCHEMA))


def dependency_order(segments: Sequence[SegmentSettings]) -> list[SegmentSettings]:
    """Segments ordered so that one using ``in_segment(x)`` comes after ``x``."""
    by_name = {s.name: s for s in segments}
    needs: dict[str, set[str]] = {}
    for s in segments:
        needs[s.name] = _segments_read(s.expr) & set(by_name)
    ordered: list[SegmentSettings] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise LoupeError(
                f"segment {name!r} depends on itself through in_segment()", where=SEGMENTS
            )
        visiting.add(name)
        for dep in sorted(needs[name]):
            visit(dep)
        visiting.discard(name)
        done.add(name)
        ordered.append(by_name[name])

    for s in segments:
        visit(s.name)
    return ordered


# -- members ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RefreshReport:
    computed_at: datetime
    sizes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _member_rows(members: ir.Table, name: str, at: datetime) -> ir.Table:
    return members.select(
        segment=ibis.literal(name, type="string"),
        customer_id=members.customer_id.cast("string"),
        computed_at=ibis.literal(at, type="timestamp"),
    )


def compute_members(
    wh: Warehouse, segments: Sequence[SegmentSettings], *, stage: str = "segments"
) -> RefreshReport:
    """Evaluate ``segments`` (dependencies first) and append their members in one write.

    Every segment is one boolean column of a single select over the audience (so the
    features are read once, not once per segment); that table is stored once and the member
    rows are read from it.
    """
    ensure_tables(wh)
    aud = audience(wh)
    at = utcnow()
    base = wh.table(SEGMENT_MEMBERS).select(*MEMBERS_COLUMNS)
    ordered = dependency_order(segments)
    with stage_run(wh, stage, [FEATURES, "customers", SEGMENTS], [SEGMENT_MEMBERS]) as run:
        table = aud.table
        flags: dict[str, str] = {}
        for i, s in enumerate(ordered):
            ctx = aud.context
            if flags:
                # in_segment() of a segment computed earlier in this run sees its new members
                so_far = _member_union(table, flags, at)
                ctx = replace(ctx, segments=base.union(so_far.cast(base.schema())))
            try:
                pred = compile_predicate(s.expr, table, context=ctx)
            except ExprError as exc:
                raise LoupeError(
                    f"segment {s.name!r} has an invalid expression:\n{exc.render()}",
                    where=f"segment {s.name!r}",
                    fix="correct the expression (`loupe segments preview EXPR` checks one)",
                ) from None
            flag = f"_in_segment_{i}"
            while flag in table.columns:
                flag += "_"
            table = pred.flag(flag)
            flags[s.name] = flag
        sizes: dict[str, int] = {}
        if flags:
            wide = work_table(wh, WORK_MEMBERS, table.select("customer_id", *flags.values()))
            counts = wh.to_pandas(wide.aggregate(**{f: wide[f].sum() for f in flags.values()}))
            sizes = {name: int(counts[f].fillna(0).iloc[0]) for name, f in flags.items()}
            wh.append(SEGMENT_MEMBERS, _member_union(wide, flags, at), count=False)
        sizes = {s.name: sizes.get(s.name, 0) for s in segments}
        run.rows_out = sum(sizes.values())
    return RefreshReport(at, sizes)


def _member_union(table: ir.Table, flags: dict[str, str], at: datetime) -> ir.Table:
    """``segment_members`` rows of every flag column of ``table``."""
    parts = [_member_rows(table.filter(table[f]), name, at) for name, f in flags.items()]
    return parts[0] if len(parts) == 1 else ibis.union(*parts)


def create_segment(
    wh: Warehouse, name: str, expr: str, description: str = "", *, replace_existing: bool = False
) -> dict[str, Any]:
    """Check, save and compute one segment; returns its preview and the saved definition."""
    seg = SegmentSettings(name=name, expr=expr, description=description)
    existing = {d.name for d in definitions(wh)}
    if seg.name in existing and not replace_existing:
        raise LoupeError(
            f"segment {seg.name!r} already exists",
            where=SEGMENTS,
            fix="pass --replace to redefine it, or choose another name",
        )
    doc = preview(wh, expr)  # raises ExprError (with the caret) before anything is saved
    save_definitions(wh, [seg])
    compute_members(wh, [seg])
    return {"name": seg.name, "description": seg.description, **doc}


def delete_segment(wh: Warehouse, name: str) -> dict[str, Any]:
    """Remove a saved segment: its definition and every snapshot of its members.

    Refused while ``loupe.toml`` declares it (the next refresh would save it again) or while
    another saved segment reads it with ``in_segment()`` (that segment would stop compiling).
    Returns ``{"deleted", "member_rows_removed"}``.
    """
    definition(wh, name)  # NotFoundError naming the saved segments
    if name in {s.name for s in declared_segments(wh.settings)}:
        raise LoupeError(
            f"segment {name!r} is declared in loupe.toml: the next refresh would save it again",
            where="[[segments]]",
            fix=f"remove the [[segments]] entry named {name!r} from loupe.toml, then delete it",
        )
    readers = [d.name for d in definitions(wh) if d.name != name and name in _segments_read(d.expr)]
    if readers:
        raise LoupeError(
            f"segment {name!r} is read by {', '.join(sorted(readers))} (in_segment)",
            where=SEGMENTS,
            fix="delete or redefine those segments first",
        )
    defs = wh.table(SEGMENTS)
    wh.replace(SEGMENTS, defs.filter(defs.name != ibis.literal(name, type="string")))
    removed = 0
    if wh.exists(SEGMENT_MEMBERS):
        m = wh.table(SEGMENT_MEMBERS)
        mine = m.segment == ibis.literal(name, type="string")
        removed = wh.count(m.filter(mine))
        if removed:
            wh.replace(SEGMENT_MEMBERS, m.filter(~mine))
    return {"deleted": name, "member_rows_removed": removed}


def _segments_read(expr: str) -> set[str]:
    """The segments an expression reads with ``in_segment()`` (none if it does not parse)."""
    try:
        tree = parse(expr)
    except ExprError:
        return set()
    return {n.segment for n in walk(tree) if isinstance(n, InSegment)}


def refresh_segments(wh: Warehouse, progress: Any = None) -> RefreshReport:
    """The segments stage: save ``[[segments]]`` from loupe.toml, then recompute every segment."""
    declared = declared_segments(wh.settings)
    if declared:
        save_definitions(wh, declared)
    segments = [d for d in definitions(wh) if d.expr.strip()]  # clusters are static
    if not segments:
        return RefreshReport(utcnow(), {})
    report = compute_members(wh, segments)
    if progress:
        progress("segments", len(segments), len(segments))
    return report


def latest_snapshots(members: ir.Table) -> ir.Table:
    """The rows of ``segment_members`` in each segment's latest snapshot, plus ``_latest``
    (that snapshot's ``computed_at``); pure, so analyses can split by segments too."""
    t = members.mutate(_latest=members.computed_at.max().over(group_by=members.segment))
    return t.filter(t.computed_at == t._latest)


def current_members(wh: Warehouse, names: Iterable[str] | None = None) -> ir.Table:
    """``segment, customer_id`` of each segment's latest snapshot."""
    ensure_tables(wh)
    t = wh.table(SEGMENT_MEMBERS)
    if names is not None:
        t = t.filter(t.segment.isin([str(n) for n in names]))
    return latest_snapshots(t).select("segment", "customer_id")


def list_segments(wh: Warehouse) -> list[dict[str, Any]]:
    """Every saved segment with its latest size and when it was computed."""
    defs = definitions(wh)
    if not defs:
        return []
    ensure_tables(wh)
    t = latest_snapshots(wh.table(SEGMENT_MEMBERS))
    df = wh.to_pandas(
        t.group_by("segment").aggregate(size=t.customer_id.count(), at=t._latest.max())
    )
    sizes = {r.segment: (int(r.size), r.at) for r in df.itertuples()}
    out = []
    for d in defs:
        size, at = sizes.get(d.name, (0, None))
        out.append(
            {
                "name": d.name,
                "expr": d.expr,
                "description": d.description,
                "size": size,
                "computed_at": at,
            }
        )
    return out


def show_segment(wh: Warehouse, name: str, *, sample: int = 10) -> dict[str, Any]:
    """A segment's definition, size and how its members differ from everyone (means, lift)."""
    doc = definition(wh, name)
    aud = audience(wh)
    members = current_members(wh, [name])
    ids = members.select(_cid=members.customer_id)
    table = aud.table
    inside = table.filter(table.customer_id.isin(ids._cid))
    cols = [
        c
        for c in (
            "frequency",
            "monetary",
            "aov",
            "recency_days",
            "orders_365d",
            "discount_share",
            "online_share",
            "app_share",
            "store_share",
            "night_share",
            "sessions_90d",
        )
        if c in table.columns
    ]
    agg = {c: table[c].mean() for c in cols}
    everyone = wh.to_pandas(table.aggregate(n=table.customer_id.count(), **agg)).iloc[0]
    mine = wh.to_pandas(
        inside.aggregate(n=inside.customer_id.count(), **{c: inside[c].mean() for c in cols})
    ).iloc[0]
    profile = []
    for c in cols:
        pop, seg = everyone[c], mine[c]
        lift = float(seg) / float(pop) if pop and pop == pop and seg == seg else None
        profile.append({"feature": c, "segment": seg, "population": pop, "lift": lift})
    stages = (
        wh.to_pandas(inside.lifecycle_stage.value_counts())
        if "lifecycle_stage" in cols or "lifecycle_stage" in table.columns
        else None
    )
    sample_ids = wh.to_pandas(inside.select("customer_id").order_by("customer_id").limit(sample))
    return {
        **doc,
        "size": int(mine["n"]),
        "population": int(everyone["n"]),
        "profile": profile,
        "lifecycle": (
            {str(k): int(v) for k, v in zip(stages.iloc[:, 0], stages.iloc[:, 1], strict=True)}
            if stages is not None
            else {}
        ),
        "sample": [str(x) for x in sample_ids["customer_id"]],
    }
