"""Ibis 12's DuckDB backend on DuckDB 2.

Ibis 12 reads its metadata (table lists, schemas of queries) with
``DuckDBPyConnection.fetch_arrow_table()`` and streams batches with
``DuckDBPyConnection.fetch_record_batch()``. DuckDB 2.0 removed both from the connection
(``to_arrow_table()`` and ``to_arrow_reader()`` replace them; relations keep their own), so on
DuckDB 2 every ``list_tables`` and every ``create_table`` of Ibis 12 failed. :func:`install`
puts the two names back on the connection class, as thin aliases of their replacements. It also
makes a relation's ``fetch_arrow_table`` (which Ibis calls for a table's schema) a plain alias
of ``to_arrow_table``: DuckDB 2 keeps it but warns that it is deprecated, and will drop it.
Importing this module installs it (``loupe.warehouse`` imports it before anything else).

DuckDB 2 also refuses the arrow lambda (``x -> x + 1``) that sqlglot writes for Ibis's array
operations (``map``, ``filter``, …; the next-purchase lists use them), unless a connection opts
back into it. DuckDB 1.3 and later read ``LAMBDA x : x + 1``, which sqlglot already writes for
a lambda it parsed in that form; :func:`install` makes it write every DuckDB lambda that way,
on any connection (Splink's included), instead of each connection setting ``lambda_syntax``.

Why not stay on DuckDB 1.5: DuckDB 2 runs Loupe's queries faster. On the CLV benchmark's 2.45M
transactions (``bench/bench_clv.py``), the per-customer summary query (two hash aggregations)
took a median of 0.347 s on DuckDB 2.0.1 against 0.474 s on 1.5.6 (seven alternating runs
each); ingest, quality and identity took 18% less at 100k customers, but only 2.4% less at 1M
(``docs/architecture-notes.md``, item 3).

DuckDB 2 warns that Arrow output from a connection (a DB-API result) copies the rows once more
than from a relation. Ibis reads its metadata and ``to_pyarrow_batches`` that way; that warning
is filtered out by its message. Ibis's ``execute`` and ``to_pyarrow``, Loupe's bulk reads, go
through relations.

Remove this module when Ibis's DuckDB backend calls the new names itself.
"""

from __future__ import annotations

import warnings
from typing import Any

_COPY_WARNING = "Arrow output on a DB-API result makes an extra copy of the rows"


def _fetch_arrow_table(self: Any, rows_per_batch: int = 1_000_000) -> Any:
    return self.to_arrow_table(rows_per_batch)


def _fetch_record_batch(self: Any, rows_per_batch: int = 1_000_000) -> Any:
    return self.to_arrow_reader(rows_per_batch)


def _python_style_lambdas() -> None:
    from sqlglot.dialects.duckdb import DuckDB

    generator = DuckDB.Generator
    arrow_lambda_sql = generator.lambda_sql
    if getattr(arrow_lambda_sql, "_loupe", False):
        return

    def lambda_sql(self: Any, expression: Any, *args: Any, **kwargs: Any) -> str:
        if not expression.args.get("colon"):
            expression = expression.copy()  # the tree is Ibis's: write, do not edit it
            expression.set("colon", True)
        return arrow_lambda_sql(self, expression, *args, **kwargs)

    lambda_sql._loupe = True  # type: ignore[attr-defined]
    generator.lambda_sql = lambda_sql  # type: ignore[method-assign]


def install() -> None:
    """Make Ibis 12 and sqlglot work on DuckDB 2 (harmless on DuckDB 1.4 and 1.5)."""
    import duckdb

    _python_style_lambdas()

    connection = duckdb.DuckDBPyConnection
    if hasattr(connection, "fetch_arrow_table"):
        return  # DuckDB 1.x: nothing to do
    setattr(duckdb.DuckDBPyRelation, "fetch_arrow_table", _fetch_arrow_table)  # noqa: B010
    setattr(connection, "fetch_arrow_table", _fetch_arrow_table)  # noqa: B010
    if not hasattr(connection, "fetch_record_batch"):
        setattr(connection, "fetch_record_batch", _fetch_record_batch)  # noqa: B010
    warnings.filterwarnings("ignore", message=_COPY_WARNING, category=UserWarning)


install()
