"""Helpers to write small raw tables, with lineage columns filled in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import pyarrow as pa

from loupe.warehouse import Warehouse, functions, schemas

NULL_MARK = "__loupe_test_null__"
LOADED_AT = datetime(2024, 6, 1, 12, 0, 0)


def write_raw(wh: Warehouse, table: str, rows: list[dict[str, Any]], batch: str = "b1") -> None:
    """Append ``rows`` to ``raw_<table>``; missing columns are NULL, lineage is filled."""
    schema = schemas.raw_schema(table)
    filled = []
    for i, row in enumerate(rows):
        full = {name: row.get(name) for name in schema.names}
        full["_file"] = row.get("_file", f"{table}.csv")
        full["_line"] = row.get("_line", i + 2)
        full["_batch"] = row.get("_batch", batch)
        full["_loaded_at"] = row.get("_loaded_at", LOADED_AT)
        filled.append(full)
    # Ibis ships memtables to Spark through pandas, where a missing string becomes "NaN":
    # send a marker instead and turn it into NULL in the engine.
    strings = [n for n, t in schema.items() if t.is_string()]
    for row in filled:
        for name in strings:
            if row[name] is None:
                row[name] = NULL_MARK
    frame = ibis.memtable(pa.Table.from_pylist(filled, schema=schema.to_pyarrow()))
    frame = frame.mutate(**{n: frame[n].nullif(NULL_MARK) for n in strings})
    # The content hash ingest stores, over the same columns: quality compares rows by it.
    data = [frame[c] for c in schemas.RAW_COLUMNS[table]]
    wh.append(f"raw_{table}", frame.mutate(_row_hash=functions.row_hash(data)))
