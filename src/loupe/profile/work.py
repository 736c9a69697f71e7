"""Work tables of the profile and segment stages: intermediate results stored once.

:meth:`Warehouse.scratch` goes through Ibis's ``create_table(temp=True, overwrite=True)``,
which on DuckDB fills a temporary table under a generated name and then *copies* it into the
final one (a workaround Ibis keeps for an old DuckDB rename bug).  For the profile's
ten-million-row order facts that copy costs as much as computing them, so on DuckDB this
module drops the old work table and creates the new one directly; other backends use
:meth:`Warehouse.scratch` unchanged.
"""

from __future__ import annotations

import ibis.expr.types as ir

from loupe.warehouse import Warehouse


def work_table(wh: Warehouse, name: str, expr: ir.Table) -> ir.Table:
    """Store ``expr`` as work table ``name`` for this connection and return it."""
    if wh.backend != "duckdb":
        return wh.scratch(name, expr)
    wh.con.drop_table(name, database=("temp", "main"), force=True)
    return wh.con.create_table(name, expr, temp=True)
