"""Expressions can never inject SQL: payloads stay quoted literals or are refused."""

from __future__ import annotations

import re
from datetime import date

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loupe.expr import CompileContext, ExprError, compile_filter, parse
from loupe.expr.nodes import quote_name, quote_string

PAYLOADS = [
    "x'; DROP TABLE customers; --",
    "' OR '1'='1",
    "'' OR 1=1 --",
    "\\'; DELETE FROM customers; --",
    '"); DROP TABLE customers; --',
    "x' UNION SELECT * FROM secrets --",
    "/* */ DROP TABLE customers",
    "上海'; DROP TABLE customers; --",
]
_QUOTED = re.compile(r"'(?:[^']|'')*'")


@pytest.fixture
def con(tmp_path):
    backend = ibis.duckdb.connect(str(tmp_path / "w.duckdb"))
    customers = pa.table({"customer_id": ["a", "b"], "city": ["上海", PAYLOADS[0]]})
    backend.create_table("customers", customers)
    backend.create_table("secrets", pa.table({"customer_id": ["s"], "city": ["secret"]}))
    yield backend
    backend.disconnect()


def _outside_literals(sql: str) -> str:
    return _QUOTED.sub("''", sql)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_in_a_string_is_a_literal(con, payload):
    text = f"city == {quote_string(payload)} or city != {quote_string(payload)}"
    table = compile_filter(text, con.table("customers"), context=CompileContext(today=date.today()))
    sql = ibis.to_sql(table, dialect="duckdb")
    bare = _outside_literals(sql).upper()
    for word in ("DROP", "DELETE", "UNION", "SECRETS", "1=1", "--", "/*"):
        assert word not in bare
    rows = con.execute(table)
    assert sorted(rows.customer_id) == ["a", "b"]
    assert con.list_tables() == ["customers", "secrets"]
    assert int(con.execute(con.table("customers").count())) == 2


def test_nul_characters_are_refused(con):
    # DuckDB's parser stops at a NUL byte, which would cut the SQL text short.
    with pytest.raises(ExprError, match="NUL"):
        compile_filter(
            r'city == "\u0000\'; DROP TABLE customers; --"',
            con.table("customers"),
            context=CompileContext(today=date.today()),
        )
    with pytest.raises(ExprError, match="NUL"):
        compile_filter(
            r'has_tag("a\u0000")',
            con.table("customers"),
            context=CompileContext(today=date.today()),
        )


def test_exact_payload_matches_only_itself(con):
    table = compile_filter(
        'city == "x\'; DROP TABLE customers; --"',
        con.table("customers"),
        context=CompileContext(today=date.today()),
    )
    assert list(con.execute(table).customer_id) == ["b"]
    assert "customers" in con.list_tables()


@pytest.mark.parametrize(
    "text",
    [
        '"a" or 1=1 --',
        "city == 'x' -- and false",
        "city; drop table customers",
        "city == 'x'; DROP TABLE customers",
        "city == 'x' /* comment */",
        "`city; drop table customers` == 'x'",
        "`city` == 'x' or `1=1`",
        "city == 'x' union select * from secrets",
        "city == 'x' # comment",
        "city == `x`",
        "drop(customers)",
        "count(secrets) > 0",
        "city == 'a' || 1",
        "city == 'a' && 1",
        "city == 'a\\'; DROP TABLE customers; --",
    ],
)
def test_injection_attempts_are_clean_errors(con, text):
    with pytest.raises(ExprError) as info:
        compile_filter(text, con.table("customers"), context=CompileContext(today=date.today()))
    assert "^" in str(info.value)
    assert con.list_tables() == ["customers", "secrets"]


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_random_string_literals_never_reach_sql_as_text(payload):
    customers = ibis.table({"customer_id": "string", "city": "string"}, name="customers")
    ctx = CompileContext(today=date.today())
    if "\x00" in payload:
        with pytest.raises(ExprError):
            compile_filter(f"city == {quote_string(payload)}", customers, context=ctx)
        return
    table = compile_filter(f"city == {quote_string(payload)}", customers, context=ctx)
    sql = ibis.to_sql(table, dialect="duckdb")
    assert _outside_literals(sql) == _outside_literals(
        ibis.to_sql(customers.filter((customers.city == "").fill_null(False)), dialect="duckdb")
    )


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(blacklist_characters="`", blacklist_categories=("Cs",)), min_size=1))
def test_random_identifiers_resolve_only_to_known_columns(name):
    customers = ibis.table({"customer_id": "string", "city": "string"}, name="customers")
    ctx = CompileContext(today=date.today())
    try:
        table = compile_filter(f"{quote_name(name)} == 'x'", customers, context=ctx)
    except ExprError as err:
        assert "unknown field" in err.message
    else:
        assert name in ("customer_id", "city")
        assert table.columns == customers.columns


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=50))
def test_random_text_compiles_or_raises_expr_error(text):
    customers = ibis.table({"customer_id": "string", "city": "string", "n": "int64"}, name="c")
    try:
        parse(text)
        compile_filter(text, customers, context=CompileContext(today=date.today()))
    except ExprError:
        pass
