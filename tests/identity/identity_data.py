"""Small canonical tables for identity tests."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from loupe.config import Settings, parse_settings
from loupe.warehouse import Warehouse
from loupe.warehouse.schemas import canonical_schema


def frame(table: str, rows: list[dict[str, Any]]) -> ibis.Table:
    sch = canonical_schema(table)
    df = pd.DataFrame([{c: r.get(c) for c in sch.names} for r in rows], columns=list(sch.names))
    df = df.astype(object).where(df.notna(), None)
    return ibis.memtable(df).cast(sch) if rows else ibis.memtable(df, schema=sch)


def load(wh: Warehouse, **tables: list[dict[str, Any]]) -> None:
    """Replace each named canonical table with ``rows`` (missing columns are NULL)."""
    for name, rows in tables.items():
        wh.replace(name, frame(name, rows))


def person(source: str, key: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source": source,
        "source_key": key,
        "_file": f"{source}.csv",
        "_line": 2,
    }
    row.update(kw)
    if isinstance(row.get("birth_date"), str):
        row["birth_date"] = date.fromisoformat(row["birth_date"])
    for col in ("signup_at", "updated_at"):
        if isinstance(row.get(col), str):
            row[col] = datetime.fromisoformat(row[col])
    return row


def make_settings(root: Path, **sections: Any) -> Settings:
    """Settings for a project in ``root`` (as ``tests/conftest.make_settings``)."""
    return parse_settings(sections, root, str(root / "loupe.toml"))
