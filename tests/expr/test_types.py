"""Type checking against the customer table's schema."""

from __future__ import annotations

import ibis
import pytest

from loupe.expr import ExprError, check, parse

SCHEMA = {
    "city": "string",
    "orders_90d": "int64",
    "monetary": "float64",
    "signup_at": "timestamp",
    "birth_date": "date",
    "vip": "boolean",
    "sources": "array<string>",
}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('city == "上海"', "boolean"),
        ("orders_90d + 1", "number"),
        ("today - 30d", "date"),
        ("now - 2h", "timestamp"),
        ("signup_at >= birth_date", "boolean"),
        ('signup_at < date("2025-01-01") + 1m', "boolean"),
        ("vip", "boolean"),
        ("vip == false", "boolean"),
        ("count(orders, 90d) >= 2", "boolean"),
        ("max(orders.ordered_at)", "timestamp"),
        ('count(events where event == "Product Viewed" and ts > now - 1h, 7d)', "number"),
        ("monetary between 1 and 2.5", "boolean"),
        ("birth_date in (date('2000-01-01'), timestamp('2001-01-01 00:00'))", "boolean"),
    ],
)
def test_kinds(text, kind):
    assert check(text, SCHEMA) == kind


def test_accepts_an_ibis_schema_and_a_tree():
    assert check(parse("orders_90d > 1"), ibis.schema(SCHEMA)) == "boolean"


@pytest.mark.parametrize(
    ("text", "message", "marked"),
    [
        ('citty == "x"', "unknown field 'citty'; did you mean 'city'?", "citty"),
        ('orders_90d >= "2"', "cannot compare number field 'orders_90d' with string '2'", '"2"'),
        ('signup_at >= "2025-01-01"', "cannot compare timestamp field 'signup_at'", '"2025-01-01"'),
        ("orders_90d and vip", "'and' needs a condition on each side", "orders_90d"),
        ("not city", "'not' needs a condition", "city"),
        ("birth_date < today - 2h", "hours cannot be added to a date", "2h"),
        ("orders_90d > 30d", "a duration such as 30d", "30d"),
        ("30d + today > birth_date", "put the date first", "30d + today"),
        ('city + 1 == "x"', "cannot add number 1 to string field 'city'", "city + 1"),
        ("vip < true", "'<' does not apply to true/false", "vip < true"),
        ("sources == 'x'", "has type array<string>", "sources"),
        ("orders_90d contains 'x'", "needs text on both sides", "orders_90d"),
        ('city matches "("', "invalid regular expression", '"("'),
        ("city in ('a', 1)", "cannot compare string field 'city' with number 1", "1"),
        ("sum(orders.status) > 1", "sum() needs a number column", "sum(orders.status)"),
        ("count(orders where amont > 1) > 0", "unknown field 'amont' in orders", "amont"),
        (
            "count(orders where has_tag('x')) > 0",
            "cannot filter the rows of orders",
            "has_tag('x')",
        ),
        (
            "count(orders where count(events) > 1) > 0",
            "cannot be nested",
            "count(events)",
        ),
    ],
)
def test_errors_point_at_the_mistake(text, message, marked):
    with pytest.raises(ExprError) as info:
        check(text, SCHEMA)
    err = info.value
    assert message in err.message
    assert text[err.start : err.end] == marked
    assert "^" * len(marked) in str(err) or "^" in str(err)


def test_custom_source_schema():
    sources = {"orders": {"customer_id": "string", "ordered_at": "timestamp", "gmv": "float64"}}
    assert check("sum(orders.gmv, 30d) > 1", SCHEMA, sources=sources) == "boolean"
    with pytest.raises(ExprError, match="unknown field 'amount_base' in orders"):
        check("sum(orders.amount_base) > 1", SCHEMA, sources=sources)
