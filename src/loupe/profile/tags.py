"""Declarative tags: ``[[profile.tags]]`` evaluated into ``customer_tags`` rows.

A tag is one of four kinds, each a pure builder over the audience table (one row per
customer, see :func:`loupe.profile.audience.audience_table`):

* ``expr`` — a condition in the segment language; members get the value ``"true"``;
* ``threshold`` — ``min <= column <= max``; members get ``"true"``;
* ``quantile`` — equal-size buckets of ``column`` (by percent rank; ties share a bucket),
  the value is the bucket's label;
* ``top_k`` — a customer's ``k`` largest category (or brand) shares of spend that reach
  ``min_share``; the value is the category (one row per category).

For the kinds other than ``expr``, an optional ``expr`` limits who is considered.  Rows are
``customer_id, tag, value, computed_at``; every run appends a full snapshot, so history is a
query on ``computed_at`` and ``has_tag`` reads the latest snapshot of each tag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import ibis
import ibis.expr.types as ir

from loupe.errors import LoupeError
from loupe.expr import CompileContext, ExprError, compile_filter
from loupe.profile.settings import TagSettings

TAGS_SCHEMA = ibis.schema(
    {"customer_id": "string", "tag": "string", "value": "string", "computed_at": "timestamp"}
)


@dataclass
class TagResult:
    """The rows of the evaluated tags and the optional tags that were skipped."""

    rows: ir.Table | None
    evaluated: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _where(tag: TagSettings) -> str:
    return f"[[profile.tags]] name = {tag.name!r}"


def _rows(members: ir.Table, tag: TagSettings, value: ir.Value, at: datetime) -> ir.Table:
    return members.select(
        customer_id=members.customer_id.cast("string"),
        tag=ibis.literal(tag.name, type="string"),
        value=value.cast("string"),
        computed_at=ibis.literal(at, type="timestamp"),
    )


def _population(audience: ir.Table, tag: TagSettings, context: CompileContext) -> ir.Table:
    if tag.kind == "expr" or not tag.expr:
        return audience
    return compile_filter(tag.expr, audience, context=context)


def tag_rows(
    tag: TagSettings,
    audience: ir.Table,
    *,
    context: CompileContext,
    affinity: Mapping[str, ir.Table] | None = None,
    computed_at: datetime,
) -> ir.Table:
    """The ``customer_tags`` rows of one tag (nothing is executed).

    Raises
    ------
    ExprError
        The tag's expression is wrong.
    LoupeError
        A column the tag names does not exist, or ``top_k`` has no affinity table.
    """
    if tag.kind == "expr":
        assert tag.expr is not None
        members = compile_filter(tag.expr, audience, context=context)
        return _rows(members, tag, ibis.literal("true"), computed_at)
    pop = _population(audience, tag, context)
    if tag.kind in ("threshold", "quantile"):
        assert tag.column is not None
        if tag.column not in pop.columns:
            raise LoupeError(
                f"tag {tag.name!r} names unknown column {tag.column!r}",
                where=_where(tag),
                fix="use a column of customer_features (see `loupe profile --json`)",
            )
        col = pop[tag.column]
        if tag.kind == "threshold":
            cond = col.notnull()
            if tag.min is not None:
                cond = cond & (col >= tag.min)
            if tag.max is not None:
                cond = cond & (col <= tag.max)
            return _rows(pop.filter(cond), tag, ibis.literal("true"), computed_at)
        valued = pop.filter(col.notnull())
        pr = ibis.percent_rank().over(order_by=valued[tag.column])
        n = len(tag.labels)
        bucket = ibis.least((pr * n).floor().cast("int64"), n - 1)
        label = ibis.cases(*[(bucket == i, lab) for i, lab in enumerate(tag.labels)])
        return _rows(valued, tag, label, computed_at)
    long = (affinity or {}).get(tag.source)
    if long is None:
        raise LoupeError(f"tag {tag.name!r} needs the {tag.source} spend table", where=_where(tag))
    top = long.filter((long["rank"] <= tag.k) & (long.share >= tag.min_share))
    top = top.filter(top.customer_id.isin(pop.customer_id))
    return _rows(top, tag, top[tag.source], computed_at)


def evaluate_tags(
    tags: Sequence[TagSettings],
    audience: ir.Table,
    *,
    context: CompileContext,
    affinity: Mapping[str, ir.Table] | None = None,
    computed_at: datetime,
) -> TagResult:
    """Every tag's rows, in declaration order; a later tag's ``has_tag`` sees earlier ones.

    An ``optional`` tag that names a field which does not exist is skipped (and reported);
    any other mistake raises with the tag's name as the location.
    """
    result = TagResult(rows=None)
    previous = context.tags
    for tag in tags:
        tags_so_far = previous
        if result.rows is not None:
            tags_so_far = result.rows
            if previous is not None:
                tags_so_far = previous.select(*TAGS_SCHEMA.names).union(
                    result.rows.cast(previous.select(*TAGS_SCHEMA.names).schema())
                )
        ctx = replace(context, tags=tags_so_far)
        try:
            rows = tag_rows(tag, audience, context=ctx, affinity=affinity, computed_at=computed_at)
        except ExprError as exc:
            if tag.optional and "unknown field" in exc.message:
                result.skipped[tag.name] = exc.message
                continue
            raise LoupeError(
                f"tag {tag.name!r} has an invalid expression:\n{exc.render()}",
                where=_where(tag),
                fix="correct `expr` (docs/segments.md lists the language)",
            ) from None
        except LoupeError as exc:
            if tag.optional and "unknown column" in exc.what:
                result.skipped[tag.name] = exc.what
                continue
            raise
        result.rows = rows if result.rows is None else result.rows.union(rows)
        result.evaluated.append(tag.name)
    return result


def latest_tags(customer_tags: ir.Table) -> ir.Table:
    """The rows of each tag's latest snapshot (what ``has_tag`` sees)."""
    latest = customer_tags.computed_at.max().over(group_by=customer_tags.tag)
    t = customer_tags.mutate(_latest=latest)
    return t.filter(t.computed_at == t._latest).drop("_latest")
