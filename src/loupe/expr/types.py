"""Type checking: every field exists and every operator gets operands it can use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, TypeAlias

import ibis
import ibis.expr.datatypes as dt

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
    unparse,
)
from loupe.expr.parser import parse, suggest

Kind: TypeAlias = Literal["number", "string", "boolean", "date", "timestamp", "duration"]
SchemaLike: TypeAlias = ibis.Schema | Mapping[str, dt.DataType | str]

#: The column that dates each row of an aggregated table (the window is applied to it).
TIME_COLUMNS: dict[str, str] = {"orders": "ordered_at", "events": "ts"}
TEMPORAL = ("date", "timestamp")


def kind_of(dtype: dt.DataType) -> Kind | None:
    """The expression type of a column type, or None when expressions cannot use it."""
    if dtype.is_numeric():
        return "number"
    if dtype.is_string():
        return "string"
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_date():
        return "date"
    if dtype.is_timestamp():
        return "timestamp"
    return None


def as_schema(schema: SchemaLike) -> dict[str, dt.DataType]:
    """``{column: DataType}`` from an Ibis schema or a ``{column: type}`` mapping."""
    return {name: dt.dtype(kind) for name, kind in dict(schema.items()).items()}


def default_sources() -> dict[str, dict[str, dt.DataType]]:
    """Schemas of ``orders`` and ``events`` as the canonical tables define them, plus customer_id."""
    from loupe.warehouse.schemas import canonical_schema

    out = {}
    for name in TIME_COLUMNS:
        cols = as_schema(canonical_schema(name))
        cols["customer_id"] = dt.string
        out[name] = cols
    return out


def check(
    expr: Expr | str,
    schema: SchemaLike,
    *,
    sources: Mapping[str, SchemaLike] | None = None,
    text: str | None = None,
) -> Kind:
    """Type-check an expression against the columns of the customer table.

    Parameters
    ----------
    expr
        A syntax tree from :func:`parse`, or the text itself.
    schema
        Columns of the customer table (an Ibis schema or ``{column: type}``).
    sources
        Schemas of the tables aggregates read (``orders``, ``events``); defaults to the
        canonical schemas plus ``customer_id``.
    text
        The text ``expr`` was parsed from, so errors can point into it.

    Returns
    -------
    Kind
        ``"boolean"`` for a condition, else the type of the value.

    Raises
    ------
    ExprError
        An unknown field, or operands an operator cannot use.
    """
    if isinstance(expr, str):
        text, expr = expr, parse(expr)
    tables = default_sources()
    for name, cols in (sources or {}).items():
        tables[name] = as_schema(cols)
    return _Checker(text or "", as_schema(schema), tables).kind(expr, None)


def describe(node: Expr, kind: Kind) -> str:
    """How an error message names an operand: ``number field 'orders_90d'``, ``string '2'``."""
    if isinstance(node, Field):
        return f"{kind} field '{node.name}'"
    if isinstance(node, String):
        return f"string '{node.value}'"
    if kind == "boolean":
        return f"condition `{unparse(node)}`"
    return f"{kind} {unparse(node)}"


class _Checker:
    def __init__(
        self,
        text: str,
        schema: dict[str, dt.DataType],
        sources: dict[str, dict[str, dt.DataType]],
    ) -> None:
        self.text = text
        self.schema = schema
        self.sources = sources

    def error(self, message: str, node: Expr, fix: str | None = None) -> ExprError:
        start, end = node.span
        return ExprError(message, self.text, start, end, fix=fix)

    def kind(self, node: Expr, source: str | None) -> Kind:
        match node:
            case Number():
                return "number"
            case String():
                return "string"
            case Boolean():
                return "boolean"
            case DateLiteral() | Today():
                return "date"
            case TimestampLiteral() | Now():
                return "timestamp"
            case Duration():
                return "duration"
            case Field(name):
                return self.field(node, name, source)
            case Arith():
                return self.arith(node, source)
            case Compare(op, left, right):
                lk, rk = self.value(left, source), self.value(right, source)
                self.comparable(right, left, lk, right, rk)
                if op not in ("==", "!=") and lk == "boolean":
                    raise self.error(f"'{op}' does not apply to true/false; use == or !=", node)
                return "boolean"
            case In(operand, items):
                ok = self.value(operand, source)
                for item in items:
                    self.comparable(item, operand, ok, item, self.value(item, source))
                return "boolean"
            case Between(operand, low, high):
                ok = self.value(operand, source)
                for bound in (low, high):
                    self.comparable(bound, operand, ok, bound, self.value(bound, source))
                if ok == "boolean":
                    raise self.error("'between' does not apply to true/false", node)
                return "boolean"
            case IsNull(operand):
                self.value(operand, source)
                return "boolean"
            case Match(op, operand, pattern):
                for side in (operand, pattern):
                    sk = self.value(side, source)
                    if sk != "string":
                        raise self.error(
                            f"'{op}' needs text on both sides, but {describe(side, sk)} is not text",
                            side,
                        )
                if op == "matches" and isinstance(pattern, String):
                    try:
                        re.compile(pattern.value)
                    except re.error as exc:
                        raise self.error(f"invalid regular expression: {exc}", pattern) from None
                return "boolean"
            case And(left, right) | Or(left, right):
                word = "and" if isinstance(node, And) else "or"
                for side in (left, right):
                    self.condition(side, source, f"'{word}' needs a condition on each side")
                return "boolean"
            case Not(operand):
                self.condition(operand, source, "'not' needs a condition")
                return "boolean"
            case HasTag() | InSegment():
                if source is not None:
                    what = "has_tag()" if isinstance(node, HasTag) else "in_segment()"
                    raise self.error(
                        f"{what} describes a customer; it cannot filter the rows of {source}", node
                    )
                return "boolean"
            case Aggregate():
                return self.aggregate(node, source)
        raise self.error(f"unsupported expression {node!r}", node)  # pragma: no cover

    def field(self, node: Expr, name: str, source: str | None) -> Kind:
        columns = self.schema if source is None else self.sources[source]
        if name not in columns:
            where = "" if source is None else f" in {source}"
            raise self.error(f"unknown field '{name}'{where}{suggest(name, list(columns))}", node)
        kind = kind_of(columns[name])
        if kind is None:
            raise self.error(
                f"field '{name}' has type {columns[name]}, which expressions cannot use", node
            )
        return kind

    def value(self, node: Expr, source: str | None) -> Kind:
        kind = self.kind(node, source)
        if kind == "duration":
            raise self.error(
                f"a duration such as {unparse(node)} only makes sense added to or subtracted "
                "from a date, e.g. today - 30d",
                node,
            )
        return kind

    def condition(self, node: Expr, source: str | None, message: str) -> None:
        kind = self.kind(node, source)
        if kind != "boolean":
            raise self.error(f"{message}, but {describe(node, kind)} is not a condition", node)

    def comparable(self, at: Expr, left: Expr, lk: Kind, right: Expr, rk: Kind) -> None:
        if lk == rk or (lk in TEMPORAL and rk in TEMPORAL):
            return
        fix = None
        if {lk, rk} == {"string", "date"} or {lk, rk} == {"string", "timestamp"}:
            fix = (
                'write a date as date("2025-01-31") or a timestamp as timestamp("2025-01-31 08:00")'
            )
        elif {lk, rk} == {"string", "number"}:
            fix = "write numbers without quotes, text in quotes"
        raise self.error(f"cannot compare {describe(left, lk)} with {describe(right, rk)}", at, fix)

    def arith(self, node: Arith, source: str | None) -> Kind:
        lk, rk = self.kind(node.left, source), self.kind(node.right, source)
        if lk == rk == "number":
            return "number"
        if lk in TEMPORAL and rk == "duration":
            assert isinstance(node.right, Duration)
            if lk == "date" and node.right.unit == "h":
                raise self.error(
                    "hours cannot be added to a date; use days (d) or compare a timestamp",
                    node.right,
                )
            return lk
        if lk == "duration" and rk in TEMPORAL:
            raise self.error(
                f"put the date first: {unparse(node.right)} {node.op} {unparse(node.left)}", node
            )
        verb = "add" if node.op == "+" else "subtract"
        prep = "to" if node.op == "+" else "from"
        raise self.error(
            f"cannot {verb} {describe(node.right, rk)} {prep} {describe(node.left, lk)}",
            node,
            fix="+ and - work on numbers, and on a date or timestamp with a duration (today - 30d)",
        )

    def aggregate(self, node: Aggregate, source: str | None) -> Kind:
        if source is not None:
            raise self.error("aggregates cannot be nested inside an aggregate's where", node)
        columns = self.sources.get(node.source)
        if columns is None:  # pragma: no cover - the parser only accepts known sources
            raise self.error(f"unknown table '{node.source}'", node)
        if node.where is not None:
            self.condition(node.where, node.source, "'where' needs a condition")
        if node.column is None:
            return "number"
        kind = self.field(node, node.column, node.source)
        if node.func in ("sum", "avg") and kind != "number":
            raise self.error(
                f"{node.func}() needs a number column, but {node.source}.{node.column} is {kind}",
                node,
            )
        if node.func in ("min", "max") and kind == "boolean":
            raise self.error(f"{node.func}() does not apply to true/false columns", node)
        return "number" if node.func in ("count", "sum", "avg") else kind
