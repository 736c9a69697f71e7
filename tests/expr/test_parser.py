"""Parsing text into the syntax tree, and syntax errors with a caret under the mistake."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loupe.errors import LoupeError
from loupe.expr import ExprError, parse
from loupe.expr.nodes import (
    Aggregate,
    And,
    Arith,
    Between,
    Boolean,
    Compare,
    DateLiteral,
    Duration,
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
)


def test_issue_example():
    ast = parse(
        'rfm_group in ("At Risk", "Hibernating") and has_tag("价格敏感型") '
        'and orders_90d >= 2 and city == "上海"'
    )
    assert ast == And(
        And(
            And(
                In(Field("rfm_group"), (String("At Risk"), String("Hibernating"))),
                HasTag("价格敏感型"),
            ),
            Compare(">=", Field("orders_90d"), Number(2)),
        ),
        Compare("==", Field("city"), String("上海")),
    )


def test_precedence_or_and_not():
    assert parse("a or b and not c") == Or(Field("a"), And(Field("b"), Not(Field("c"))))
    assert parse("(a or b) and c") == And(Or(Field("a"), Field("b")), Field("c"))
    assert parse("not a == 1") == Not(Compare("==", Field("a"), Number(1)))


def test_keywords_are_case_insensitive_and_names_are_not_keywords():
    assert parse("android AND NOT ordinal") == And(Field("android"), Not(Field("ordinal")))
    assert parse("x IS NOT NULL") == IsNull(Field("x"), negated=True)


def test_predicates():
    assert parse("x between 1 and 5") == Between(Field("x"), Number(1), Number(5))
    assert parse("x not between 1 and 5") == Between(Field("x"), Number(1), Number(5), True)
    assert parse("x not in ('a',)") == In(Field("x"), (String("a"),), negated=True)
    assert parse("x is null") == IsNull(Field("x"))
    assert parse('x not contains "a"') == Match("contains", Field("x"), String("a"), True)
    for op in ("contains", "startswith", "endswith", "matches", "like"):
        assert parse(f'name {op} "a"') == Match(op, Field("name"), String("a"))
    for op in ("==", "!=", "<", "<=", ">", ">="):
        assert parse(f"x {op} -1.5") == Compare(op, Field("x"), Number(-1.5))


def test_between_binds_its_and():
    ast = parse("x between 1 and 2 and y")
    assert ast == And(Between(Field("x"), Number(1), Number(2)), Field("y"))


def test_values():
    assert parse("x == true") == Compare("==", Field("x"), Boolean(True))
    assert parse("x < 1e3") == Compare("<", Field("x"), Number(1000.0))
    assert parse('d >= date("2025-01-01")') == Compare(
        ">=", Field("d"), DateLiteral(date(2025, 1, 1))
    )
    assert parse('t < timestamp("2025-01-01 08:30:00")') == Compare(
        "<", Field("t"), TimestampLiteral(datetime(2025, 1, 1, 8, 30))
    )
    assert parse("`order count` > 1") == Compare(">", Field("order count"), Number(1))
    assert parse("城市 == '上海'") == Compare("==", Field("城市"), String("上海"))


def test_string_escapes():
    assert parse(r'x == "a\"b\\c\n\u4e2d"').right == String('a"b\\c\n中')
    assert parse(r"x == 'it\'s'").right == String("it's")
    assert parse('x == "it\'s"').right == String("it's")


def test_date_arithmetic():
    assert parse("last_order < today - 30d") == Compare(
        "<", Field("last_order"), Arith("-", Today(), Duration(30, "d"))
    )
    assert parse("seen > now - 12h").right == Arith("-", Now(), Duration(12, "h"))
    assert parse("x - 1 - 2") == Arith("-", Arith("-", Field("x"), Number(1)), Number(2))


def test_functions_and_aggregates():
    assert parse('has_tag("level", "gold")') == HasTag("level", "gold")
    assert parse('in_segment("vip")') == InSegment("vip")
    assert parse("count(orders, 90d) >= 2").left == Aggregate(
        "count", "orders", window=Duration(90, "d")
    )
    assert parse("sum(orders.amount_base, 30d) > 500").left == Aggregate(
        "sum", "orders", "amount_base", window=Duration(30, "d")
    )
    assert parse('count(events where event == "Product Viewed", 7d) > 3').left == Aggregate(
        "count",
        "events",
        where=Compare("==", Field("event"), String("Product Viewed")),
        window=Duration(7, "d"),
    )
    assert parse("max(orders.ordered_at) > today").left == Aggregate("max", "orders", "ordered_at")


def test_spans_point_into_the_text():
    text = 'city == "上海" and orders_90d >= 2'
    ast = parse(text)
    assert text[slice(*ast.span)] == text
    assert text[slice(*ast.right.left.span)] == "orders_90d"


def _error(text: str) -> ExprError:
    with pytest.raises(ExprError) as info:
        parse(text)
    return info.value


def test_error_after_operator_matches_the_issue():
    err = _error("orders_90d >= ")
    assert str(err) == (
        "orders_90d >= \n              ^ expected a number, string, date or column after '>='"
    )
    assert isinstance(err, LoupeError)
    assert err.start == 14


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("a = 1", 2, "use '=='"),
        ("a b", 2, "expected an operator"),
        ("x == 'abc", 5, "never closed"),
        ("(a", 2, "expected ')'"),
        ("a)", 1, "end of the expression"),
        ("x in 1", 5, "expected '('"),
        ("1 < 2 < 3", 6, "unexpected '<'"),
        ("hastag('x')", 0, "did you mean 'has_tag'"),
        ("count(ordrs, 3d) > 1", 6, "did you mean 'orders'"),
        ("count(orders, 3) > 1", 14, "duration"),
        ("sum(orders) > 1", 4, "needs a column"),
        ("has_tag(x)", 8, "quoted string"),
        ('d < date("2025-13-01")', 9, "not a date"),
        (r'x == "\q"', 6, "unknown escape"),
        ("orders.amount > 1", 0, "only be used inside"),
        ("x == 99999999999999999999", 5, "too large"),
        ("", 0, "empty"),
    ],
)
def test_syntax_errors(text, column, words):
    err = _error(text)
    assert words in err.message
    assert err.start == column
    caret_line = str(err).splitlines()[1]
    assert caret_line.index("^") == column


def test_caret_accounts_for_wide_characters():
    err = _error('城市 == "上海" and')
    lines = str(err).splitlines()
    # 城市 and 上海 take two columns each in a terminal
    assert lines[1].index("^") == len('城市 == "上海" and') + 4


def test_multiline_expression_reports_line_and_column():
    err = _error('city == "x"\nand orders >=')
    assert err.line == 2
    assert "line 2" in str(err)
    assert str(err).splitlines()[0] == "and orders >="


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_parses_or_raises_expr_error(text):
    try:
        parse(text)
    except ExprError as err:
        str(err)


_PIECES = st.sampled_from(
    [
        "a", "city", "==", "!=", "<", ">=", "and", "or", "not", "in", "(", ")", ",", '"x"',
        "'y'", "1", "-2.5", "30d", "today", "now", "-", "+", "between", "is", "null",
        "contains", "like", "has_tag", "count", "orders", "orders.amount", "where", "date",
        "true", "`q`", ";", "--", "'", '"', "\\", "1e5", "7h", "events",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=14))
def test_random_token_soup_parses_or_raises_expr_error(pieces):
    try:
        parse(" ".join(pieces))
    except ExprError as err:
        assert err.message
