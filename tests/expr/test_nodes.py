"""Printing trees back to canonical text, and listing the fields an expression reads."""

from __future__ import annotations

from datetime import date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from loupe.expr import fields, parse, unparse
from loupe.expr.nodes import (
    AGGREGATE_FUNCS,
    COMPARE_OPS,
    KEYWORDS,
    MATCH_OPS,
    SOURCES,
    UNITS,
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


def test_canonical_text():
    text = "RFM_group IN ('At Risk','Hibernating') AND has_tag('价格敏感型') AND (orders_90d>=2)"
    assert unparse(parse(text)) == (
        'RFM_group in ("At Risk", "Hibernating") and has_tag("价格敏感型") and orders_90d >= 2'
    )


def test_parentheses_only_where_needed():
    assert unparse(parse("(a or b) and (c or d)")) == "(a or b) and (c or d)"
    assert unparse(parse("a or (b and c)")) == "a or b and c"
    assert unparse(parse("a and (b and c)")) == "a and (b and c)"
    assert unparse(parse("not (a and b)")) == "not (a and b)"
    assert unparse(parse("x - (1 - 2) > 0")) == "x - (1 - 2) > 0"


def test_names_that_need_backticks():
    assert unparse(Field("order count")) == "`order count`"
    assert unparse(Field("today")) == "`today`"
    assert unparse(Field("AND")) == "`AND`"
    assert unparse(Field("城市")) == "城市"


def test_strings_are_escaped():
    assert unparse(String('a"b\\c\n')) == r'"a\"b\\c\n"'
    assert unparse(String("\x00")) == r'"\u0000"'


def test_aggregates_and_dates():
    text = 'sum(orders.amount_base where status == "paid", 30d) > 500 and d >= date("2025-01-01")'
    assert unparse(parse(text)) == text
    assert unparse(TimestampLiteral(datetime(2025, 1, 2, 3, 4, 5))) == (
        'timestamp("2025-01-02 03:04:05")'
    )


def test_fields_lists_customer_columns_in_order():
    ast = parse(
        'city == "上海" and (orders_90d > 1 or city is null) and '
        "count(orders where channel == 'app', 30d) > 1 and signup_at < today - 1y"
    )
    assert fields(ast) == ("city", "orders_90d", "signup_at")
    assert fields(parse('has_tag("x")')) == ()


# -- round trip ------------------------------------------------------------------------------

_names = st.one_of(
    st.sampled_from(["city", "orders_90d", "城市", "x_1", "order count", "a-b", *KEYWORDS]),
    st.text(st.characters(blacklist_characters="`", blacklist_categories=("Cs",)), min_size=1),
)
_text = st.text(max_size=12)
_leaves = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(Number),
    st.floats(allow_nan=False, allow_infinity=False).map(Number),
    _text.map(String),
    st.booleans().map(Boolean),
    st.dates().map(DateLiteral),
    st.datetimes().map(TimestampLiteral),
    st.builds(Duration, st.integers(0, 999_999), st.sampled_from(UNITS)),
    st.just(Today()),
    st.just(Now()),
    _names.map(Field),
    st.builds(HasTag, _text, st.none() | _text),
    st.builds(InSegment, _text),
)


def _extend(children):
    items = st.lists(children, min_size=1, max_size=3).map(tuple)
    return st.one_of(
        st.builds(Or, children, children),
        st.builds(And, children, children),
        st.builds(Not, children),
        st.builds(Compare, st.sampled_from(COMPARE_OPS), children, children),
        st.builds(In, children, items, st.booleans()),
        st.builds(Between, children, children, children, st.booleans()),
        st.builds(IsNull, children, st.booleans()),
        st.builds(Match, st.sampled_from(MATCH_OPS), children, children, st.booleans()),
        st.builds(Arith, st.sampled_from(["+", "-"]), children, children),
        st.builds(
            Aggregate,
            st.sampled_from(AGGREGATE_FUNCS),
            st.sampled_from(SOURCES),
            _names,
            st.none() | children,
            st.none() | st.builds(Duration, st.integers(0, 999), st.sampled_from(UNITS)),
        ),
    )


_trees = st.recursive(_leaves, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_trees)
def test_unparse_round_trips(ast):
    text = unparse(ast)
    assert parse(text) == ast
    assert unparse(parse(text)) == text


def test_count_without_column_round_trips():
    ast = Aggregate("count", "events", where=IsNull(Field("x")), window=Duration(7, "d"))
    assert parse(unparse(ast)) == ast
    assert unparse(Compare(">", ast, Number(1))) == "count(events where x is null, 7d) > 1"
    assert parse(unparse(DateLiteral(date(1, 1, 1)))) == DateLiteral(date(1, 1, 1))
