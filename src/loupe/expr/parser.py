"""Text to syntax tree: the Lark grammar, string escapes and readable syntax errors."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, cast

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from loupe.expr.errors import ExprError
from loupe.expr.grammar import GRAMMAR
from loupe.expr.nodes import (
    AGGREGATE_FUNCS,
    SOURCES,
    Aggregate,
    AggregateFunc,
    And,
    Arith,
    ArithOp,
    Between,
    Boolean,
    Compare,
    CompareOp,
    DateLiteral,
    Duration,
    Expr,
    Field,
    HasTag,
    In,
    InSegment,
    IsNull,
    Match,
    MatchOp,
    Not,
    Now,
    Number,
    Or,
    Source,
    String,
    TimestampLiteral,
    Today,
    Unit,
    walk,
)

MAX_LENGTH = 20_000
FUNCTIONS = ("has_tag", "in_segment", "date", "timestamp", *AGGREGATE_FUNCS)
_INT64 = 2**63


def parse(text: str) -> Expr:
    """Parse an expression into its syntax tree.

    Parameters
    ----------
    text
        The expression, e.g. ``orders_90d >= 2 and city == "上海"``.

    Returns
    -------
    Expr
        The root node; every node carries its ``span`` in ``text``.

    Raises
    ------
    ExprError
        When ``text`` is not a valid expression; the message points at the mistake.
    """
    if not isinstance(text, str):
        raise ExprError(f"an expression must be text, not {type(text).__name__}")
    if not text.strip():
        raise ExprError(
            'the expression is empty; expected a condition such as city == "上海"', text
        )
    if len(text) > MAX_LENGTH:
        raise ExprError(f"the expression is longer than {MAX_LENGTH} characters", text, MAX_LENGTH)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except (LarkError, RecursionError) as exc:  # pragma: no cover - defensive
        raise ExprError(f"cannot parse the expression ({type(exc).__name__})", text) from None
    try:
        node = cast(Expr, _ToAst(text).transform(tree))
    except VisitError as exc:
        if isinstance(exc.orig_exc, ExprError):
            raise exc.orig_exc from None
        raise  # pragma: no cover - a bug in the transformer
    except RecursionError:
        raise ExprError("the expression is nested too deeply", text) from None
    for n in walk(node):
        if isinstance(n, _Qualified):
            raise ExprError(
                f"'{n.source}.{n.column}' can only be used inside {_agg_list()}",
                text,
                *n.span,
                fix=f"e.g. sum({n.source}.{n.column}, 30d) > 100",
            )
    return node


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _agg_list() -> str:
    return ", ".join(f"{f}()" for f in AGGREGATE_FUNCS)


# -- syntax errors ---------------------------------------------------------------------------

_VALUE_TERMINALS = {"NUMBER", "STRING", "NAME", "QUOTED_NAME", "DURATION", "TODAY", "NOW"}
_OPERATOR_TERMINALS = {"COMP_OP", "IN", "BETWEEN", "IS", "MATCH_OP"}
_PHRASES = {
    "RPAR": "')'",
    "COMMA": "','",
    "AND": "'and'",
    "OR": "'or'",
    "NULL": "'null'",
    "IN": "'in'",
    "LPAR": "'('",
    "$END": "the end of the expression",
}


def _expected(names: set[str]) -> str:
    phrases: list[str] = []
    if names & _VALUE_TERMINALS:
        phrases.append("a number, string, date or column")
    if "COMP_OP" in names:
        phrases.append("an operator (==, !=, <, <=, >, >=, in, between, is null, contains…)")
    elif names & _OPERATOR_TERMINALS:
        phrases.extend(sorted(f"'{n.lower()}'" for n in names & _OPERATOR_TERMINALS))
    skip = "RPAR" if "COMMA" in names and "RPAR" in names and "NAME" not in names else None
    for name in ("COMMA", "RPAR", "NULL", "LPAR", "AND", "OR", "$END"):
        if name in names and not (name == "LPAR" and phrases) and name != skip:
            phrases.append(_PHRASES[name])
    if skip:
        phrases.insert(len(phrases) - ("$END" in names), "')'")
    if not phrases:
        phrases = sorted(n.lower() for n in names)
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _before(text: str, pos: int) -> tuple[str | None, int]:
    """The token just before ``pos`` and how many parentheses are open there."""
    prev, depth = None, 0
    try:
        for tok in _parser().lex(text[:pos]):
            prev = tok
            depth += {"LPAR": 1, "RPAR": -1}.get(tok.type, 0)
    except LarkError:
        return None, 0
    return (str(prev) if prev is not None else None), depth


def _syntax_error(exc: UnexpectedInput, text: str) -> ExprError:
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = text[pos]
        if ch == "=":
            return ExprError("unexpected '='; use '==' to compare", text, pos)
        if ch in "\"'":
            return ExprError(f"this string is never closed; expected a closing {ch}", text, pos)
        if ch == "`":
            return ExprError("this quoted name is never closed; expected a closing `", text, pos)
        found = repr(ch) if ch.isprintable() else f"character U+{ord(ch):04X}"
        prev, _ = _before(text, pos)
        after = f" after '{prev}'" if prev else ""
        allowed = set(exc.allowed or ())
        expected = ""
        if allowed & _VALUE_TERMINALS and "COMP_OP" not in allowed:
            expected = "; expected a number, string, date or column"
        return ExprError(f"unexpected {found}{after}{expected}", text, pos)
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        token = exc.token
        at_end = token.type == "$END"
        pos = len(text) if at_end else (token.start_pos or 0)
        prev, depth = _before(text, pos)
        names = set(exc.expected)
        if depth == 0:
            names -= {"RPAR", "COMMA"}
        elif "RPAR" in names:
            names.discard("$END")
        expected = _expected(names)
        after = f" after '{prev}'" if prev else ""
        if at_end:
            return ExprError(f"expected {expected}{after}", text, pos)
        end = token.end_pos if token.end_pos is not None else pos + 1
        return ExprError(f"unexpected '{token}'{after}; expected {expected}", text, pos, end)
    return ExprError("cannot parse the expression", text)  # pragma: no cover


# -- tree to nodes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Qualified(Expr):
    """``orders.amount_base``: only valid as an aggregate's first argument."""

    source: str
    column: str


@dataclass(frozen=True)
class _Where(Expr):
    """``events where event == "x"``: only valid as an aggregate's first argument."""

    target: Expr
    condition: Expr


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)


def _span(meta: Any) -> tuple[int, int]:
    return (getattr(meta, "start_pos", 0), getattr(meta, "end_pos", 0))


def _tok_span(tok: Token) -> tuple[int, int]:
    return (tok.start_pos or 0, tok.end_pos or 0)


@v_args(meta=True)
class _ToAst(Transformer):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _error(self, message: str, span: tuple[int, int], fix: str | None = None) -> ExprError:
        return ExprError(message, self.text, span[0], span[1], fix=fix)

    # logic
    def or_(self, meta, c):
        return Or(c[0], c[2], span=_span(meta))

    def and_(self, meta, c):
        return And(c[0], c[2], span=_span(meta))

    def not_(self, meta, c):
        return Not(c[1], span=_span(meta))

    # predicates
    def compare(self, meta, c):
        return Compare(cast(CompareOp, str(c[1])), c[0], c[2], span=_span(meta))

    def in_(self, meta, c):
        return In(c[0], c[2], span=_span(meta))

    def not_in(self, meta, c):
        return In(c[0], c[3], negated=True, span=_span(meta))

    def between(self, meta, c):
        return Between(c[0], c[2], c[4], span=_span(meta))

    def not_between(self, meta, c):
        return Between(c[0], c[3], c[5], negated=True, span=_span(meta))

    def is_null(self, meta, c):
        return IsNull(c[0], span=_span(meta))

    def is_not_null(self, meta, c):
        return IsNull(c[0], negated=True, span=_span(meta))

    def match(self, meta, c):
        return Match(cast(MatchOp, str(c[1]).lower()), c[0], c[2], span=_span(meta))

    def not_match(self, meta, c):
        op = cast(MatchOp, str(c[2]).lower())
        return Match(op, c[0], c[3], negated=True, span=_span(meta))

    def tuple(self, meta, c):
        return tuple(x for x in c if not isinstance(x, Token))

    def arith(self, meta, c):
        return Arith(cast(ArithOp, str(c[1])), c[0], c[2], span=_span(meta))

    def group(self, meta, c):
        return c[1]

    # values
    def number(self, meta, c):
        text = "".join(str(t) for t in c)
        span = _span(meta)
        value: int | float
        if re.fullmatch(r"-?\d+", text):
            value = int(text)
            if not -_INT64 <= value < _INT64:
                raise self._error("this whole number is too large (beyond 64-bit)", span)
        else:
            value = float(text)
            if value in (float("inf"), float("-inf")):
                raise self._error("this number is too large", span)
        return Number(value, span=span)

    def string(self, meta, c):
        return String(self._decode(c[0]), span=_span(meta))

    def _decode(self, tok: Token) -> str:
        body = str(tok)[1:-1]
        offset = (tok.start_pos or 0) + 1

        def replace(m: re.Match[str]) -> str:
            code = m.group(1)
            if len(code) > 1:
                point = int(code[1:], 16)
                if point > 0x10FFFF:
                    raise self._error(
                        "this \\U escape is beyond Unicode", (offset + m.start(), offset + m.end())
                    )
                return chr(point)
            if code in _ESCAPES:
                return _ESCAPES[code]
            raise self._error(
                f"unknown escape '\\{code}' in a string",
                (offset + m.start(), offset + m.end()),
                fix="escapes are \\\\ \\\" \\' \\n \\t \\r \\uXXXX; write \\\\ for a backslash",
            )

        return _ESCAPE_RE.sub(replace, body)

    def true(self, meta, c):
        return Boolean(True, span=_span(meta))

    def false(self, meta, c):
        return Boolean(False, span=_span(meta))

    def duration(self, meta, c):
        text = str(c[0])
        amount = int(text[:-1])
        if amount >= 1_000_000:
            raise self._error("this duration is too long", _span(meta))
        return Duration(amount, cast(Unit, text[-1]), span=_span(meta))

    def today(self, meta, c):
        return Today(span=_span(meta))

    def now(self, meta, c):
        return Now(span=_span(meta))

    def name(self, meta, c):
        parts = [_ident(t) for t in c if t.type != "DOT"]
        if len(parts) == 2:
            return _Qualified(parts[0], parts[1], span=_span(meta))
        return Field(parts[0], span=_span(meta))

    def where(self, meta, c):
        return _Where(c[0], c[2], span=_span(meta))

    def call(self, meta, c):
        func = str(c[0]).lower()
        args = [x for x in c[1:] if not isinstance(x, Token)]
        span = _span(meta)
        name_span = _tok_span(c[0])
        for arg in args if func not in AGGREGATE_FUNCS else args[1:]:
            if isinstance(arg, _Where):
                raise self._error("'where' only filters the table of an aggregate", arg.span)
        if func == "has_tag":
            strings = self._strings(
                func, args, 1, 2, span, 'has_tag("vip") or has_tag("level", "gold")'
            )
            return HasTag(strings[0], strings[1] if len(strings) > 1 else None, span=span)
        if func == "in_segment":
            strings = self._strings(func, args, 1, 1, span, 'in_segment("high value")')
            return InSegment(strings[0], span=span)
        if func == "date":
            (value,) = self._strings(func, args, 1, 1, span, 'date("2025-01-31")')
            try:
                return DateLiteral(date.fromisoformat(value), span=span)
            except ValueError:
                raise self._error(
                    f"'{value}' is not a date; expected YYYY-MM-DD", args[0].span
                ) from None
        if func == "timestamp":
            (value,) = self._strings(func, args, 1, 1, span, 'timestamp("2025-01-31 08:00:00")')
            try:
                ts = datetime.fromisoformat(value)
            except ValueError:
                raise self._error(
                    f"'{value}' is not a timestamp; expected YYYY-MM-DD HH:MM:SS", args[0].span
                ) from None
            if ts.tzinfo is not None:
                ts = ts.astimezone(UTC).replace(tzinfo=None)
            return TimestampLiteral(ts, span=span)
        if func in AGGREGATE_FUNCS:
            return self._aggregate(cast(AggregateFunc, func), args, span)
        close = difflib.get_close_matches(func, FUNCTIONS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise self._error(
            f"unknown function '{func}'{hint}",
            name_span,
            fix=None if close else f"functions are {', '.join(FUNCTIONS)}",
        )

    def _strings(self, func, args, low, high, span, example) -> list[str]:
        count = "one" if low == high == 1 else f"{low} or {high}"
        if not low <= len(args) <= high or not all(isinstance(a, String) for a in args):
            bad = next((a for a in args if not isinstance(a, String)), None)
            where = bad.span if bad is not None else span
            raise self._error(
                f"{func}() takes {count} quoted string{'s' if high > 1 else ''}, e.g. {example}",
                where,
            )
        return [a.value for a in args]

    def _aggregate(self, func: AggregateFunc, args: list[Expr], span) -> Aggregate:
        example = f"{func}(orders, 90d)" if func == "count" else f"{func}(orders.amount_base, 30d)"
        if not 1 <= len(args) <= 2:
            raise self._error(
                f"{func}() takes a table and an optional window, e.g. {example}", span
            )
        target: Expr = args[0]
        where: Expr | None = None
        if isinstance(target, _Where):
            where = target.condition
            target = target.target
        if isinstance(target, _Qualified):
            source, column = target.source, target.column
        elif isinstance(target, Field):
            source, column = target.name, None
        else:
            raise self._error(
                f"{func}() needs a table ({' or '.join(SOURCES)}) first, e.g. {example}",
                target.span,
            )
        if source not in SOURCES:
            close = difflib.get_close_matches(source, SOURCES, n=1)
            hint = (
                f"; did you mean '{close[0]}'?" if close else f"; expected {' or '.join(SOURCES)}"
            )
            raise self._error(f"unknown table '{source}'{hint}", target.span)
        if column is None and func != "count":
            raise self._error(
                f"{func}() needs a column, e.g. {func}({source}.amount_base)", target.span
            )
        window = None
        if len(args) == 2:
            if not isinstance(args[1], Duration):
                raise self._error(
                    f"the window of {func}() must be a duration such as 7d, 4w, 3m or 1y",
                    args[1].span,
                )
            window = args[1]
        return Aggregate(func, cast(Source, source), column, where=where, window=window, span=span)


def _ident(tok: Token) -> str:
    text = str(tok)
    return text[1:-1] if tok.type == "QUOTED_NAME" else text


def suggest(name: str, options: list[str] | tuple[str, ...]) -> str:
    """ "; did you mean 'x'?" for the closest option, or an empty string."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"; did you mean '{close[0]}'?" if close else ""
