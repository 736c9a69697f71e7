"""The typed syntax tree of an expression, and printing it back to canonical text.

Every node is a frozen dataclass.  ``span`` holds the node's ``(start, end)`` character offsets
in the text it was parsed from; it is left out of equality, so ``parse(unparse(ast)) == ast``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, TypeAlias

CompareOp: TypeAlias = Literal["==", "!=", "<", "<=", ">", ">="]
MatchOp: TypeAlias = Literal["contains", "startswith", "endswith", "matches", "like"]
ArithOp: TypeAlias = Literal["+", "-"]
Unit: TypeAlias = Literal["h", "d", "w", "m", "y"]
AggregateFunc: TypeAlias = Literal["count", "sum", "avg", "min", "max"]
Source: TypeAlias = Literal["orders", "events"]

COMPARE_OPS: tuple[str, ...] = ("==", "!=", "<", "<=", ">", ">=")
MATCH_OPS: tuple[str, ...] = ("contains", "startswith", "endswith", "matches", "like")
UNITS: tuple[str, ...] = ("h", "d", "w", "m", "y")
AGGREGATE_FUNCS: tuple[str, ...] = ("count", "sum", "avg", "min", "max")
SOURCES: tuple[str, ...] = ("orders", "events")

#: Words the grammar reserves; a column with one of these names is written in backticks.
KEYWORDS: frozenset[str] = frozenset(
    {"and", "or", "not", "in", "between", "is", "null", "true", "false", "today", "now", "where"}
    | set(MATCH_OPS)
)

Span: TypeAlias = tuple[int, int]


@dataclass(frozen=True)
class Expr:
    """Base class of every node."""

    span: Span = field(default=(0, 0), compare=False, repr=False, kw_only=True)


# -- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number(Expr):
    value: int | float


@dataclass(frozen=True)
class String(Expr):
    value: str


@dataclass(frozen=True)
class Boolean(Expr):
    value: bool


@dataclass(frozen=True)
class DateLiteral(Expr):
    """``date("2025-01-01")``."""

    value: date


@dataclass(frozen=True)
class TimestampLiteral(Expr):
    """``timestamp("2025-01-01 08:30:00")`` (UTC, no time zone)."""

    value: datetime


@dataclass(frozen=True)
class Duration(Expr):
    """``30d``: an amount of hours, days, weeks, months or years."""

    amount: int
    unit: Unit


@dataclass(frozen=True)
class Today(Expr):
    """``today``: the date the expression is evaluated for (bound at compile time)."""


@dataclass(frozen=True)
class Now(Expr):
    """``now``: the instant the expression is evaluated for (bound at compile time)."""


@dataclass(frozen=True)
class Field(Expr):
    """A column of the customer table."""

    name: str


@dataclass(frozen=True)
class Arith(Expr):
    op: ArithOp
    left: Expr
    right: Expr


# -- conditions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare(Expr):
    op: CompareOp
    left: Expr
    right: Expr


@dataclass(frozen=True)
class In(Expr):
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between(Expr):
    operand: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(frozen=True)
class IsNull(Expr):
    operand: Expr
    negated: bool = False


@dataclass(frozen=True)
class Match(Expr):
    """``contains``, ``startswith``, ``endswith``, ``matches`` (regex) or ``like``."""

    op: MatchOp
    operand: Expr
    pattern: Expr
    negated: bool = False


@dataclass(frozen=True)
class And(Expr):
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or(Expr):
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr


@dataclass(frozen=True)
class HasTag(Expr):
    """``has_tag("name")`` or ``has_tag("name", "value")``."""

    tag: str
    value: str | None = None


@dataclass(frozen=True)
class InSegment(Expr):
    """``in_segment("name")``."""

    segment: str


@dataclass(frozen=True)
class Aggregate(Expr):
    """``sum(orders.amount_base where status == "paid", 30d)``.

    ``column`` is None for ``count``; ``where`` refers to columns of ``source``; ``window``
    None means all history up to ``now``.
    """

    func: AggregateFunc
    source: Source
    column: str | None = None
    where: Expr | None = None
    window: Duration | None = None


# -- printing --------------------------------------------------------------------------------

_NAME = re.compile(r"[^\W\d]\w*")
_OR, _AND, _NOT, _PREDICATE, _SUM, _ATOM = range(1, 7)


def quote_name(name: str) -> str:
    """A column name as written in an expression (backticks when it is not a plain word)."""
    if _NAME.fullmatch(name) and name.lower() not in KEYWORDS:
        return name
    return f"`{name}`"


def quote_string(value: str) -> str:
    """A string literal in double quotes, with escapes for quotes, backslashes and controls."""
    out = []
    for ch in value:
        if ch in _ESCAPES_OUT:
            out.append(_ESCAPES_OUT[ch])
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_ESCAPES_OUT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def unparse(node: Expr) -> str:
    """Canonical text of ``node``: ``parse(unparse(node)) == node``.

    Keywords are lower case, strings double-quoted, operators spaced, and parentheses appear
    only where precedence needs them.
    """
    return _unparse(node, 0)


def _wrap(text: str, level: int, context: int) -> str:
    return f"({text})" if level < context else text


def _unparse(node: Expr, ctx: int) -> str:
    u = _unparse
    match node:
        case Or(left, right):
            return _wrap(f"{u(left, _OR)} or {u(right, _AND)}", _OR, ctx)
        case And(left, right):
            return _wrap(f"{u(left, _AND)} and {u(right, _NOT)}", _AND, ctx)
        case Not(operand):
            return _wrap(f"not {u(operand, _NOT)}", _NOT, ctx)
        case Compare(op, left, right):
            return _wrap(f"{u(left, _SUM)} {op} {u(right, _SUM)}", _PREDICATE, ctx)
        case In(operand, items, negated):
            inner = ", ".join(u(i, _SUM) for i in items)
            word = "not in" if negated else "in"
            return _wrap(f"{u(operand, _SUM)} {word} ({inner})", _PREDICATE, ctx)
        case Between(operand, low, high, negated):
            word = "not between" if negated else "between"
            text = f"{u(operand, _SUM)} {word} {u(low, _SUM)} and {u(high, _SUM)}"
            return _wrap(text, _PREDICATE, ctx)
        case IsNull(operand, negated):
            word = "is not null" if negated else "is null"
            return _wrap(f"{u(operand, _SUM)} {word}", _PREDICATE, ctx)
        case Match(op, operand, pattern, negated):
            word = f"not {op}" if negated else op
            return _wrap(f"{u(operand, _SUM)} {word} {u(pattern, _SUM)}", _PREDICATE, ctx)
        case Arith(op, left, right):
            return _wrap(f"{u(left, _SUM)} {op} {u(right, _ATOM)}", _SUM, ctx)
        case Number(value):
            return _number(value)
        case String(value):
            return quote_string(value)
        case Boolean(value):
            return "true" if value else "false"
        case DateLiteral(value):
            return f'date("{value.isoformat()}")'
        case TimestampLiteral(value):
            return f'timestamp("{value.isoformat(sep=" ")}")'
        case Duration(amount, unit):
            return f"{amount}{unit}"
        case Today():
            return "today"
        case Now():
            return "now"
        case Field(name):
            return quote_name(name)
        case HasTag(tag, value):
            args = (
                quote_string(tag)
                if value is None
                else f"{quote_string(tag)}, {quote_string(value)}"
            )
            return f"has_tag({args})"
        case InSegment(segment):
            return f"in_segment({quote_string(segment)})"
        case Aggregate(func, source, column, where, window):
            text = source if column is None else f"{source}.{quote_name(column)}"
            if where is not None:
                text += f" where {u(where, 0)}"
            if window is not None:
                text += f", {u(window, 0)}"
            return f"{func}({text})"
    raise TypeError(f"not an expression node: {node!r}")


def _number(value: int | float) -> str:
    if isinstance(value, bool):  # pragma: no cover - Boolean is its own node
        raise TypeError("booleans are Boolean nodes")
    text = repr(value)
    return text


# -- walking ---------------------------------------------------------------------------------


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node`` (an aggregate's ``where`` included)."""
    match node:
        case Or(left, right) | And(left, right) | Compare(_, left, right) | Arith(_, left, right):
            return (left, right)
        case Not(operand) | IsNull(operand):
            return (operand,)
        case In(operand, items):
            return (operand, *items)
        case Between(operand, low, high):
            return (operand, low, high)
        case Match(_, operand, pattern):
            return (operand, pattern)
        case Aggregate(where=where, window=window):
            return tuple(n for n in (where, window) if n is not None)
    return ()


def walk(node: Expr, *, into_aggregates: bool = True) -> list[Expr]:
    """``node`` and all its descendants, depth first, parents before children."""
    out = [node]
    if isinstance(node, Aggregate) and not into_aggregates:
        return out
    for child in children(node):
        out.extend(walk(child, into_aggregates=into_aggregates))
    return out


def fields(node: Expr) -> tuple[str, ...]:
    """Columns of the customer table the expression reads, in order of first use.

    Columns named inside an aggregate (``orders.amount_base``, its ``where`` clause) belong to
    the aggregated table and are not listed.
    """
    seen: dict[str, None] = {}
    for n in walk(node, into_aggregates=False):
        if isinstance(n, Field):
            seen.setdefault(n.name, None)
    return tuple(seen)
