"""Declarative tags: ``[[profile.tags]]`` evaluated into ``customer_tags`` rows.

A tag is one of four kinds, each a pure builder over the audience table (one row per
customer, see :func:`loupe.profile.audience.audience_table`):

* ``expr`` — a condition in the segment language; members get the value ``"true"``;
* ``threshold`` — ``min <= column <= max``; members get ``"true"``;
* ``quantile`` — equal-size buckets of ``column`` (by percent rank; ties share a bucket),
  the value is the bucket's label;
* ``top_k`` — a customer's ``k`` largest category (or brand) shares of spend that reach
  ``min_share``; the value is the category (one row per category).

For the kinds other than ``expr``, an optional ``expr`` limits who is considered.

Every tag but ``top_k`` is evaluated as one column of a single select over the audience
(:func:`evaluate_tags` chains them), so the features are read once for all tags rather than
once per tag; ``top_k`` tags come from the spend table and stay long.

History
-------
``customer_tags`` (``customer_id, tag, value, computed_at``) stores *changes*: a run appends
the values of a (customer, tag) only when they differ from that pair's latest values
(:func:`tag_changes`), so re-running on unchanged data adds nothing.  The values of a pair at
one ``computed_at`` are the whole set it held from then on (usually one row; a ``top_k`` tag
with ``k > 1`` has one row per value).  A customer who loses a tag gets one row with a NULL
``value`` (the removal).  :func:`current_tags` and :func:`tags_as_of` turn the history back
into values; ``has_tag`` reads :func:`expression_tags`, the current values shaped for the
expression compiler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir

from loupe.errors import LoupeError
from loupe.expr import CompileContext, ExprError, compile_predicate
from loupe.profile.settings import TagSettings

TAGS_SCHEMA = ibis.schema(
    {"customer_id": "string", "tag": "string", "value": "string", "computed_at": "timestamp"}
)
_NAMES = list(TAGS_SCHEMA.names)


@dataclass
class TagResult:
    """The evaluated tags: one value column per tag in ``wide`` and the long ``top_k`` parts.

    ``rows`` is the long ``customer_tags`` snapshot (every current value of every evaluated
    tag).  A caller that stores ``wide`` first should build the rows with :meth:`rows_over`
    on the stored table, so the features are not read again per tag.
    """

    wide: ir.Table | None = None
    columns: dict[str, str] = field(default_factory=dict)
    """Tag name -> its value column in ``wide`` (NULL: the customer does not have it)."""
    long: dict[str, Callable[[ir.Table], ir.Table]] = field(default_factory=dict)
    """Tag name -> its rows (``customer_id, value``) given the stored ``wide`` table."""
    evaluated: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    computed_at: datetime | None = None

    def rows_over(self, wide: ir.Table) -> ir.Table | None:
        """The long rows, in declaration order, reading tag values from ``wide``."""
        parts = []
        for name in self.evaluated:
            if name in self.columns:
                col = wide[self.columns[name]]
                part = wide.filter(col.notnull()).select("customer_id", value=col)
            else:
                part = self.long[name](wide)
            parts.append(_rows(part, name, part.value, self.computed_at))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else ibis.union(*parts)

    @property
    def rows(self) -> ir.Table | None:
        return None if self.wide is None else self.rows_over(self.wide)


def _where(tag: TagSettings) -> str:
    return f"[[profile.tags]] name = {tag.name!r}"


def _rows(members: ir.Table, name: str, value: ir.Value, at: datetime | None) -> ir.Table:
    return members.select(
        customer_id=members.customer_id.cast("string"),
        tag=ibis.literal(name, type="string"),
        value=value.cast("string"),
        computed_at=ibis.literal(at, type="timestamp"),
    )


def _unknown_column(tag: TagSettings, table: ir.Table) -> None:
    assert tag.column is not None
    if tag.column not in table.columns:
        raise LoupeError(
            f"tag {tag.name!r} names unknown column {tag.column!r}",
            where=_where(tag),
            fix="use a column of customer_features (see `loupe profile --json`)",
        )


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
    result = evaluate_tags(
        [tag], audience, context=context, affinity=affinity, computed_at=computed_at, strict=True
    )
    rows = result.rows
    assert rows is not None
    return rows


def _value_column(
    tag: TagSettings, table: ir.Table, context: CompileContext
) -> tuple[ir.Table, ir.Value]:
    """``table`` (widened when the expression aggregates) and the tag's value over it."""
    if tag.kind == "expr":
        assert tag.expr is not None
        pred = compile_predicate(tag.expr, table, context=context)
        return pred.table, ibis.ifelse(pred.condition, "true", ibis.null("string"))
    inside: ir.BooleanValue = ibis.literal(True)
    if tag.expr:
        pred = compile_predicate(tag.expr, table, context=context)
        table, inside = pred.table, pred.condition
    _unknown_column(tag, table)
    col = table[tag.column]
    if tag.kind == "threshold":
        cond = inside & col.notnull()
        if tag.min is not None:
            cond = cond & (col >= tag.min)
        if tag.max is not None:
            cond = cond & (col <= tag.max)
        return table, ibis.ifelse(cond, "true", ibis.null("string"))
    valued = inside & col.notnull()
    # percent rank among the valued customers only: they are their own window partition
    pr = ibis.percent_rank().over(group_by=valued, order_by=col)
    n = len(tag.labels)
    bucket = ibis.least((pr * n).floor().cast("int64"), n - 1)
    label = ibis.cases(*[(bucket == i, lab) for i, lab in enumerate(tag.labels)])
    return table, ibis.ifelse(valued, label, ibis.null("string"))


def evaluate_tags(
    tags: Sequence[TagSettings],
    audience: ir.Table,
    *,
    context: CompileContext,
    affinity: Mapping[str, ir.Table] | None = None,
    computed_at: datetime,
    strict: bool = False,
) -> TagResult:
    """Every tag, in declaration order; a later tag's ``has_tag`` sees earlier ones.

    The tags become columns of one table (``TagResult.wide``, one row per customer of
    ``audience``).  An ``optional`` tag that names a field which does not exist is skipped
    (and reported); any other mistake raises with the tag's name as the location
    (``strict``: the :class:`ExprError` itself).  ``context.tags`` should be
    :func:`expression_tags` of the history.
    """
    result = TagResult(computed_at=computed_at)
    previous = context.tags
    table = audience
    taken = set(audience.columns)
    for i, tag in enumerate(tags):
        ctx = context
        if result.evaluated:
            so_far = result.rows_over(table)
            assert so_far is not None
            if previous is not None:
                so_far = previous.select(*_NAMES).union(
                    so_far.cast(previous.select(*_NAMES).schema())
                )
            ctx = replace(context, tags=so_far)
        name = f"_tag_{i}"
        while name in taken:
            name += "_"
        taken.add(name)
        try:
            if tag.kind == "top_k":
                table, long = _top_k(tag, table, name, ctx, affinity)
                result.long[tag.name] = long
            else:
                wide, value = _value_column(tag, table, ctx)
                table = wide.select(*[wide[c] for c in table.columns], **{name: value})
                result.columns[tag.name] = name
        except ExprError as exc:
            if tag.optional and "unknown field" in exc.message:
                result.skipped[tag.name] = exc.message
                continue
            if strict:
                raise
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
        result.evaluated.append(tag.name)
    extra = [c for c in table.columns if c.startswith("_tag_") and c not in audience.columns]
    result.wide = table.select("customer_id", *extra)
    return result


def _top_k(
    tag: TagSettings,
    table: ir.Table,
    name: str,
    context: CompileContext,
    affinity: Mapping[str, ir.Table] | None,
) -> tuple[ir.Table, Callable[[ir.Table], ir.Table]]:
    """The table with the tag's population flag, and the rows given the stored table."""
    long = (affinity or {}).get(tag.source)
    if long is None:
        raise LoupeError(f"tag {tag.name!r} needs the {tag.source} spend table", where=_where(tag))
    inside: ir.BooleanValue = ibis.literal(True)
    if tag.expr:
        pred = compile_predicate(tag.expr, table, context=context)
        table, inside = pred.table, pred.condition
    table = table.select(*[table[c] for c in table.columns], **{name: inside})
    top = long.filter((long["rank"] <= tag.k) & (long.share >= tag.min_share))

    def rows(wide: ir.Table) -> ir.Table:
        pop = wide.filter(wide[name])
        hit = top.filter(top.customer_id.isin(pop.customer_id))
        return hit.select("customer_id", value=hit[tag.source])

    return table, rows


# -- history ------------------------------------------------------------------------------------
def _moment(moment: date | datetime) -> datetime:
    """A datetime as is; a date means the end of that day (its runs count)."""
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment + timedelta(days=1), time()) - timedelta(microseconds=1)


def tags_as_of(customer_tags: ir.Table, moment: date | datetime | None = None) -> ir.Table:
    """``customer_id, tag, value, computed_at``: every value each customer held at ``moment``.

    For each (customer, tag) the rows of its latest ``computed_at`` at or before ``moment``
    (a date means the end of that day; None means now), without removals (NULL value).
    ``computed_at`` is when that value was recorded.
    """
    t = customer_tags.select(*_NAMES)
    if moment is not None:
        t = t.filter(t.computed_at <= ibis.literal(_moment(moment), type="timestamp"))
    last = t.group_by(["customer_id", "tag"]).aggregate(_at=t.computed_at.max())
    last = last.rename(_cid="customer_id", _tag="tag")
    j = t.join(last, [t.customer_id == last._cid, t.tag == last._tag, t.computed_at == last._at])
    j = j.select(*_NAMES)
    return j.filter(j.value.notnull())


def current_tags(customer_tags: ir.Table) -> ir.Table:
    """``customer_id, tag, value, computed_at``: the tags customers hold now."""
    return tags_as_of(customer_tags, None)


def latest_tags(customer_tags: ir.Table) -> ir.Table:
    """The current tags (:func:`current_tags`; kept for callers of the old name)."""
    return current_tags(customer_tags)


def expression_tags(customer_tags: ir.Table) -> ir.Table:
    """The current tags shaped for ``CompileContext(tags=...)``.

    The compiler's ``has_tag`` keeps the rows of a tag's latest ``computed_at``, so every
    current row carries the same ``computed_at``: the latest in the history.
    """
    cur = current_tags(customer_tags)
    newest = customer_tags.aggregate(_newest=customer_tags.computed_at.max())
    j = cur.cross_join(newest)
    return j.select("customer_id", "tag", "value", computed_at=j._newest)


def tag_changes(
    snapshot: ir.Table, customer_tags: ir.Table, tags: Sequence[str], computed_at: datetime
) -> ir.Table:
    """The rows a run appends to ``customer_tags``: only the (customer, tag) pairs whose
    values differ from their current ones.

    ``snapshot`` holds every current value of the ``tags`` evaluated by this run
    (``customer_id, tag, value``).  A changed pair gets all its new values, or one row with
    a NULL ``value`` when it has none left; tags not in ``tags`` are left alone.
    """
    names = [str(t) for t in tags]
    new = snapshot.select("customer_id", "tag", "value")
    cur = current_tags(customer_tags)
    cur = cur.filter(cur.tag.isin(names)).select("customer_id", "tag", "value")
    cur = cur.cast(new.schema())
    pairs = ["customer_id", "tag"]
    changed = new.difference(cur).select(*pairs).union(cur.difference(new).select(*pairs))
    changed = changed.rename(_cid="customer_id", _tag="tag")
    keys = [new.customer_id == changed._cid, new.tag == changed._tag]
    added = new.semi_join(changed, keys)
    gone = changed.anti_join(new, [changed._cid == new.customer_id, changed._tag == new.tag])
    gone = gone.select(customer_id="_cid", tag="_tag", value=ibis.null("string"))
    at = ibis.literal(computed_at, type="timestamp")
    return added.union(gone).mutate(computed_at=at)
