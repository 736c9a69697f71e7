"""Ibis 12 on DuckDB 2 (``loupe.warehouse.duckdb_compat``)."""

from __future__ import annotations

import warnings

import ibis
import pyarrow as pa

import loupe.warehouse  # noqa: F401  (installs the compatibility layer)


def test_ibis_metadata_and_batches_work_on_this_duckdb() -> None:
    con = ibis.duckdb.connect()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning either
        t = con.create_table("t", pa.table({"a": [1, 2, 3]}))  # reads its schema back
        assert con.table("t").schema().names == ("a",)
    assert "t" in con.list_tables()
    assert con.execute(t.a.sum()) == 6
    batches = list(con.to_pyarrow_batches(t, chunk_size=2))
    assert sum(b.num_rows for b in batches) == 3


def test_duckdb_lambdas_are_written_in_the_form_duckdb_2_reads() -> None:
    t = ibis.memtable({"a": [[1, 2], [3]]})
    expr = t.a.map(lambda x: x + 1).filter(lambda y: y > 2)
    sql = ibis.to_sql(expr, dialect="duckdb")
    assert "LAMBDA" in sql and "->" not in sql
    assert ibis.duckdb.connect().execute(expr).tolist() == [[3], [4]]
    # the expression tree is not edited: other dialects still get their own form
    assert "->" in ibis.to_sql(expr, dialect="pyspark")
