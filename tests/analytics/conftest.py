"""Helpers that build small canonical tables as memtables for the analytics tests."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import typer

from loupe.warehouse.schemas import IDENTITY_LINKS, canonical_schema, schema


def canonical(table: str, rows: list[dict[str, Any]]) -> ir.Table:
    """A memtable with the canonical schema of ``table``; missing columns are NULL."""
    sch = canonical_schema(table)
    df = pd.DataFrame(rows, columns=list(sch.names))
    for name, dtype in sch.items():
        if dtype.is_timestamp():
            df[name] = pd.to_datetime(df[name])
        elif dtype.is_array():
            df[name] = [None] * len(df)
    return ibis.memtable(df.astype(object).where(df.notna(), None), schema=sch)


def links(mapping: dict[tuple[str, str], str]) -> ir.Table:
    """identity_links from ``{(id_type, id_value): customer_id}``."""
    df = pd.DataFrame(
        [{"id_type": t, "id_value": v, "customer_id": c} for (t, v), c in mapping.items()],
        columns=list(IDENTITY_LINKS),
    )
    return ibis.memtable(df, schema=schema(IDENTITY_LINKS))


def put(wh, **tables: ir.Table) -> None:
    """Store memtables in the warehouse as canonical tables."""
    for name, t in tables.items():
        wh.replace(name, t)


def analytics_app(settings, monkeypatch, **tables: ir.Table) -> typer.Typer:
    """A Typer app with the analytics commands on a project holding ``tables``."""
    from loupe.cli import analytics as cli
    from loupe.cli import common
    from loupe.warehouse import Warehouse

    with Warehouse.open(settings) as wh:
        put(wh, **tables)
    monkeypatch.setattr(common.state, "warehouse", lambda: Warehouse.open(settings))
    root = typer.Typer()

    @root.callback()
    def _cb() -> None: ...

    cli.register(root)
    return root
