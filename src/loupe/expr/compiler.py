"""Syntax tree to an Ibis boolean expression over a table of one row per customer.

Identifiers resolve only to known columns and every literal becomes ``ibis.literal``: no part
of an expression ever reaches SQL as text.  Conditions are two-valued: a comparison with a
missing value is false (``is null`` tests for it), so ``not`` always selects the complement.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from loupe.expr.errors import ExprError
from loupe.expr.nodes import (
    Aggregate,
    And,
    Arith,
    Between,
    Boolean,
    Compare,
    DateLiteral,
    Duration,
    Expr,
    Field,
    HasTag,
    In,
    InSegment,
    IsNull,
    Match,
    Not,
    Now,
    Number,
    Or,
    String,
    TimestampLiteral,
    Today,
    walk,
)
from loupe.expr.parser import parse
from loupe.expr.types import TIME_COLUMNS, Kind, _Checker, as_schema, default_sources

_IBIS_UNITS = {"h": "h", "d": "D", "w": "W", "m": "M", "y": "Y"}


@dataclass(frozen=True, eq=False)
class CompileContext:
    """What an expression is evaluated against, fixed at compile time.

    Parameters
    ----------
    today
        The value of ``today``.
    now
        The value of ``now`` and the end of every aggregate window; defaults to midnight at
        the start of ``today``, so data of ``today`` itself is not counted.
    tags
        ``customer_tags`` (customer_id, tag, value, computed_at), needed by ``has_tag``.
    segments
        ``segment_members`` (segment, customer_id, computed_at), needed by ``in_segment``.
    orders, events
        Tables carrying ``customer_id`` (and ``ordered_at`` / ``ts``) for aggregates.
    key
        The customer key column shared by every table.
    """

    today: date
    now: datetime | None = None
    tags: ir.Table | None = None
    segments: ir.Table | None = None
    orders: ir.Table | None = None
    events: ir.Table | None = None
    key: str = "customer_id"

    @classmethod
    def as_of(cls, moment: date | datetime, **tables: Any) -> CompileContext:
        """A context for ``moment``: a datetime fixes ``now`` exactly, a date its start."""
        if isinstance(moment, datetime):
            return cls(today=moment.date(), now=moment, **tables)
        return cls(today=moment, **tables)

    @property
    def instant(self) -> datetime:
        return self.now if self.now is not None else datetime.combine(self.today, time())


@dataclass(frozen=True, eq=False)
class Predicate:
    """A compiled condition.

    ``condition`` is a boolean column of ``table``.  ``table`` is the caller's table, widened
    by one column per aggregate when the expression has any (``columns`` lists the original
    columns).
    """

    table: ir.Table
    condition: ir.BooleanValue
    columns: tuple[str, ...]

    def filter(self) -> ir.Table:
        """The rows where the condition holds, with the original columns."""
        return self.table.filter(self.condition).select(*self.columns)

    def flag(self, name: str) -> ir.Table:
        """Every row, with the original columns and the condition as boolean column ``name``."""
        return self.table.select(*self.columns, **{name: self.condition})


def compile_predicate(
    expr: Expr | str, table: ir.Table, *, context: CompileContext, text: str | None = None
) -> Predicate:
    """Type-check and compile a condition over ``table`` (one row per customer).

    Parameters
    ----------
    expr
        The expression text, or a tree from :func:`parse` (then pass ``text`` for carets).
    table
        The customer table whose columns the expression names.
    context
        ``today``/``now`` and the tables ``has_tag``, ``in_segment`` and aggregates read.

    Raises
    ------
    ExprError
        The expression does not parse, does not type-check, is not a condition, or needs a
        table the context does not hold.
    """
    if isinstance(expr, str):
        text, expr = expr, parse(expr)
    compiler = _Compiler(text or "", table, context)
    return compiler.predicate(expr)


def compile_filter(
    expr: Expr | str, table: ir.Table, *, context: CompileContext, text: str | None = None
) -> ir.Table:
    """The rows of ``table`` where the expression holds (same columns as ``table``).

    Aggregates compile to a group-by on the customer key joined back to ``table``;
    ``has_tag`` and ``in_segment`` to semi-joins.  Nothing is executed.
    """
    return compile_predicate(expr, table, context=context, text=text).filter()


def shift(moment: date | datetime, amount: int, unit: str) -> date | datetime:
    """``moment`` moved by ``amount`` units; months and years clamp to the month's last day."""
    if unit == "h":
        if not isinstance(moment, datetime):
            raise ValueError("hours need a timestamp")
        return moment + timedelta(hours=amount)
    if unit in ("d", "w"):
        return moment + timedelta(days=amount * (7 if unit == "w" else 1))
    months = moment.month - 1 + amount * (12 if unit == "y" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


class _Compiler:
    def __init__(self, text: str, table: ir.Table, context: CompileContext) -> None:
        self.text = text
        self.table = table
        self.ctx = context
        sources = default_sources()
        for name in TIME_COLUMNS:
            src = getattr(context, name)
            if src is not None:
                sources[name] = as_schema(src.schema())
        self.checker = _Checker(text, as_schema(table.schema()), sources)
        self.aggregates: dict[Aggregate, str] = {}

    def error(self, message: str, node: Expr, fix: str | None = None) -> ExprError:
        return ExprError(message, self.text, node.span[0], node.span[1], fix=fix)

    def kind(self, node: Expr, source: str | None) -> Kind:
        return self.checker.kind(node, source)

    # -- entry ---------------------------------------------------------------------------------
    def predicate(self, node: Expr) -> Predicate:
        kind = self.kind(node, None)
        if kind != "boolean":
            raise self.error(
                f"the expression must be a condition (true or false), but this is a {kind}",
                node,
                fix="compare it, e.g. orders_90d >= 2",
            )
        for n in walk(node):
            texts = [getattr(n, a, None) for a in ("value", "tag", "segment")]
            if any(isinstance(t, str) and "\x00" in t for t in texts):
                raise self.error(
                    "text cannot contain the NUL character (\\u0000)", n, fix="remove it"
                )
        needs_key = [n for n in walk(node, into_aggregates=False) if _customer_level(n)]
        if needs_key and self.ctx.key not in self.table.columns:
            raise self.error(f"this needs a '{self.ctx.key}' column in the table", needs_key[0])
        wide = self.join_aggregates(node)
        return Predicate(wide, self.condition(node, wide, None), tuple(self.table.columns))

    def join_aggregates(self, node: Expr) -> ir.Table:
        nodes = [n for n in walk(node, into_aggregates=False) if isinstance(n, Aggregate)]
        if not nodes:
            return self.table
        key = self.ctx.key
        taken = set(self.table.columns)
        joined, picks = self.table, []
        for agg in nodes:
            if agg in self.aggregates:
                continue
            name = f"_loupe_agg_{len(self.aggregates)}"
            while name in taken:
                name += "_"
            taken.add(name)
            self.aggregates[agg] = name
            grouped = self.aggregate(agg, name).rename({f"{name}_key": key})
            joined = joined.left_join(grouped, self.table[key] == grouped[f"{name}_key"])
            picks.append(grouped[name])
        return joined.select(*[self.table[c] for c in self.table.columns], *picks)

    def aggregate(self, node: Aggregate, name: str) -> ir.Table:
        src: ir.Table | None = getattr(self.ctx, node.source)
        if src is None:
            raise self.error(
                f"{node.func}() over {node.source} needs the {node.source} table",
                node,
                fix=f"pass {node.source}= in CompileContext",
            )
        key, tcol = self.ctx.key, TIME_COLUMNS[node.source]
        for col in (key, tcol):
            if col not in src.columns:
                raise self.error(f"the {node.source} table has no '{col}' column", node)
        now = self.ctx.instant
        conds = [src[tcol] < ibis.literal(now, type="timestamp")]
        if node.window is not None:
            start = shift(now, -node.window.amount, node.window.unit)
            conds.append(src[tcol] >= ibis.literal(start, type="timestamp"))
        if node.where is not None:
            conds.append(self.condition(node.where, src, node.source))
        rows = src.filter(*conds)
        value: ir.Value
        if node.column is None:
            value = rows.count()
        else:
            method = "mean" if node.func == "avg" else node.func
            value = getattr(rows[node.column], method)()
        return rows.group_by(key).aggregate(**{name: value})

    # -- conditions ----------------------------------------------------------------------------
    def condition(self, node: Expr, tbl: ir.Table, source: str | None) -> ir.BooleanValue:
        """A boolean that is never null (a comparison with a missing value is false)."""
        match node:
            case And(left, right):
                return self.condition(left, tbl, source) & self.condition(right, tbl, source)
            case Or(left, right):
                return self.condition(left, tbl, source) | self.condition(right, tbl, source)
            case Not(operand):
                return ~self.condition(operand, tbl, source)
        return self.atom(node, tbl, source).fill_null(False)

    def atom(self, node: Expr, tbl: ir.Table, source: str | None) -> ir.BooleanValue:
        v = self.value
        match node:
            case Compare(op, left, right):
                lv, rv = self.pair(left, right, tbl, source)
                return {
                    "==": lv.__eq__,
                    "!=": lv.__ne__,
                    "<": lv.__lt__,
                    "<=": lv.__le__,
                    ">": lv.__gt__,
                    ">=": lv.__ge__,
                }[op](rv)
            case In(operand, items, negated):
                ov, *values = self.unify([operand, *items], tbl, source)
                if all(_is_literal(i) for i in items):
                    found = ov.isin(values).fill_null(False)
                else:  # a missing item matches nothing
                    found = ibis.or_(*[(ov == v).fill_null(False) for v in values])
                return ov.notnull() & ~found if negated else found
            case Between(operand, low, high, negated):
                ov, lo, hi = self.unify([operand, low, high], tbl, source)
                test = ov.between(lo, hi)
                if not negated:
                    return test
                # NOT BETWEEN with a missing bound can be true in SQL's logic (x > hi makes
                # the BETWEEN false); like every comparison with a missing value, it is false.
                return ~test & ov.notnull() & lo.notnull() & hi.notnull()
            case IsNull(operand, negated):
                if self.kind(operand, source) == "boolean" and not isinstance(operand, Field):
                    missing = ibis.literal(False)  # conditions are never missing
                else:
                    missing = v(operand, tbl, source).isnull()
                return ~missing if negated else missing
            case Match(op, operand, pattern, negated):
                ov = v(operand, tbl, source)
                pv: Any = pattern.value if isinstance(pattern, String) else v(pattern, tbl, source)
                test = {
                    "contains": lambda: ov.contains(pv),
                    "startswith": lambda: ov.startswith(pv),
                    "endswith": lambda: ov.endswith(pv),
                    "matches": lambda: ov.re_search(pv),
                    "like": lambda: ov.like(pv),
                }[op]()
                return ~test if negated else test
            case HasTag(tag, value):
                return self.membership(node, "tags", "tag", tag, value, tbl)
            case InSegment(segment):
                return self.membership(node, "segments", "segment", segment, None, tbl)
        return v(node, tbl, source)

    def membership(
        self, node: Expr, attr: str, column: str, name: str, value: str | None, tbl: ir.Table
    ) -> ir.BooleanValue:
        table: ir.Table | None = getattr(self.ctx, attr)
        what = "customer_tags" if attr == "tags" else "segment_members"
        if table is None:
            raise self.error(
                f"this needs the {what} table", node, fix=f"pass {attr}= in CompileContext"
            )
        rows = table.filter(table[column] == ibis.literal(name, type="string"))
        latest = rows.computed_at.max().as_scalar()
        current = rows.filter(rows.computed_at == latest)
        if value is not None:
            current = current.filter(current.value.cast("string") == ibis.literal(value, "string"))
        return tbl[self.ctx.key].isin(current[self.ctx.key])

    # -- values --------------------------------------------------------------------------------
    def pair(
        self, left: Expr, right: Expr, tbl: ir.Table, source: str | None
    ) -> tuple[ir.Value, ir.Value]:
        lv, rv = self.unify([left, right], tbl, source)
        return lv, rv

    def unify(self, nodes: list[Expr], tbl: ir.Table, source: str | None) -> list[Any]:
        """The operands' values, dates widened to timestamps when any operand is one."""
        values = [self.value(n, tbl, source) for n in nodes]
        kinds = {self.kind(n, source) for n in nodes}
        if {"date", "timestamp"} <= kinds:
            values = [x.cast("timestamp") for x in values]
        return values

    def value(self, node: Expr, tbl: ir.Table, source: str | None) -> Any:
        match node:
            case Field(name):
                return tbl[name]
            case Number(value):
                return ibis.literal(value, type="int64" if isinstance(value, int) else "float64")
            case String(value):
                return ibis.literal(value, type="string")
            case Boolean(value):
                return ibis.literal(value, type="boolean")
            case DateLiteral(value) | TimestampLiteral(value):
                kind = "timestamp" if isinstance(node, TimestampLiteral) else "date"
                return ibis.literal(value, type=kind)
            case Today():
                return ibis.literal(self.ctx.today, type="date")
            case Now():
                return ibis.literal(self.ctx.instant, type="timestamp")
            case Arith(op, left, right):
                constant = self.constant(node)
                if constant is not None:
                    kind = "timestamp" if isinstance(constant, datetime) else "date"
                    return ibis.literal(constant, type=kind)
                lv = self.value(left, tbl, source)
                if isinstance(right, Duration):
                    rv = ibis.interval(right.amount, unit=_IBIS_UNITS[right.unit])
                else:
                    rv = self.value(right, tbl, source)
                return lv + rv if op == "+" else lv - rv
            case Aggregate(func=func):
                col = tbl[self.aggregates[node]]
                return col.fill_null(0) if func in ("count", "sum") else col
        if self.kind(node, source) == "boolean":
            return self.condition(node, tbl, source)
        raise self.error(f"cannot compute {node!r}", node)  # pragma: no cover

    def constant(self, node: Expr) -> date | datetime | None:
        """Date arithmetic on constants (``today - 30d``), done here so it is exact."""
        match node:
            case Today():
                return self.ctx.today
            case Now():
                return self.ctx.instant
            case DateLiteral(value) | TimestampLiteral(value):
                return value
            case Arith(op, left, Duration(amount, unit)):
                base = self.constant(left)
                if base is None:
                    return None
                try:
                    return shift(base, amount if op == "+" else -amount, unit)
                except (OverflowError, ValueError):
                    raise self.error("this date is out of range", node) from None
        return None


def _is_literal(node: Expr) -> bool:
    return isinstance(node, Number | String | Boolean | DateLiteral | TimestampLiteral)


def _customer_level(node: Expr) -> bool:
    return isinstance(node, HasTag | InSegment | Aggregate)
