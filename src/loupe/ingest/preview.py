"""``loupe preview``: a source's first rows, mapped and typed as ``loupe ingest`` would, with
nothing written to the project.

Setting up a source is a loop: map its columns, set its decimal mark, date order, time zone
or encoding, load, see what was quarantined, change a setting, load again.  ``loupe ingest
--reload`` runs that loop on the project itself, over every file.  A preview runs it on the
first rows of the source (1,000 by default, its files in name order) and shows, for the first
row loaded, each canonical column's text as read beside the value it was loaded as; how full
each column is; and what would be quarantined, and why, with the hints of ``loupe
quarantine``.

It is not a second implementation of ingest: it calls :func:`loupe.ingest.load.ingest`, with
a row limit, on a throwaway warehouse in a temporary folder, so the readers, the mapping, the
typing and the checks are the ones a real load runs.  The project's warehouse is not opened,
so a preview works before the first ingest and while another command holds the warehouse.

The throwaway warehouse is DuckDB whatever the project's engine.  Ingest's typing is the same
Ibis expressions on DuckDB and Spark, which the tests check on both (docs/ingest.md gives the
one known difference); a Spark session would take longer to start than most previews take,
and it would share its table names with the project's in the same process.

Duplicates are counted among the rows read, not against what the project has loaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loupe.config import Settings, SourceSettings
from loupe.ingest import load, readers
from loupe.ingest.quarantine import quarantine_view
from loupe.warehouse import Warehouse
from loupe.warehouse.schemas import RAW_COLUMNS

#: The formats whose rows are fields (a JSON source's row is its line): a preview shows
#: their fields as read.
FIELD_FORMATS = ("csv", "tsv", "excel", "parquet", "sql")


def preview(
    settings: Settings,
    name: str,
    rows: int = 1000,
    show: int = 5,
    progress: load.Progress | None = None,
) -> dict[str, Any]:
    """Map and type the first ``rows`` rows of source ``name`` into a throwaway warehouse.

    Returns
    -------
    dict
        ``source``, ``table``, ``format``, ``rows_asked``; ``files`` (the files read, in
        whole or in part); ``read``, ``loaded``, ``quarantined``, ``duplicates`` (what ingest
        would count for these rows; ``read`` equals the other three together) and
        ``profiles`` (Segment sources: contact versions from identify calls, else null);
        ``read_as_utf8`` (files read as UTF-8 though the source declares another encoding,
        their bytes being UTF-8 text);
        ``first_row`` (``location`` and ``raw``, the text as read, of the first row loaded;
        null when none loads); ``columns`` (per canonical column: ``column``, ``from`` (the
        source column, ``= value`` for a constant, null when not mapped), ``as_read`` (the
        first row's text, for sources read as fields), ``loaded_as`` (its typed value) and
        ``filled`` (the share of loaded rows with a value)), for the columns mapped or filled;
        ``not_mapped`` (the table's other columns); ``rows`` (the first ``show`` rows
        loaded, typed); ``by_reason`` and ``quarantine`` (as ``loupe quarantine`` gives them:
        reasons with their hints, and the first ``show`` rows).
    """
    source = settings.source(name)
    with tempfile.TemporaryDirectory(prefix="loupe-preview-") as tmp:
        scratch = settings.model_copy(
            update={
                "warehouse": settings.warehouse.model_copy(
                    update={"backend": "duckdb", "path": str(Path(tmp) / "preview.duckdb")}
                )
            }
        )
        with Warehouse.open(scratch) as wh:
            report = load.ingest(wh, only=[name], progress=progress, limit=rows)
            return _describe(wh, source, report.sources[name], rows, show)


def _describe(
    wh: Warehouse, source: SourceSettings, rep: load.SourceReport, asked: int, show: int
) -> dict[str, Any]:
    table = source.target_table
    columns = [c for c in RAW_COLUMNS[table] if c not in ("source", "contact_source")]
    raw = wh.table(f"raw_{table}").filter(ibis._.source == source.name)
    first = wh.to_arrow(raw.order_by(["_file", "_line"]).limit(max(show, 1)))
    counts = wh.to_pandas(raw.aggregate(_all=raw.count(), **{c: raw[c].count() for c in columns}))
    loaded = int(counts["_all"].iloc[0])
    filled = {c: int(counts[c].iloc[0]) / loaded if loaded else 0.0 for c in columns}
    quarantined = quarantine_view(wh, [source.name], limit=show or 1)  # 0 would be all
    q = wh.table("quarantine")
    read_from = [
        *rep.files,
        *wh.to_pandas(raw.select(file="_file").distinct())["file"],
        *wh.to_pandas(q.select(file=q.location.re_extract(r"^(.*):\d+$", 1)).distinct())["file"],
    ]
    doc: dict[str, Any] = {
        "source": source.name,
        "table": table,
        "format": source.format,
        "rows_asked": asked,
        "files": sorted(set(read_from) - {""}),
        "read": rep.read,
        "loaded": rep.loaded,
        "quarantined": rep.quarantined,
        "duplicates": rep.duplicates,
        "profiles": rep.profiles,
        "read_as_utf8": rep.read_as_utf8,
        "first_row": None,
        "columns": [],
        "not_mapped": [],
        "rows": first.select(columns).slice(0, show).to_pylist(),
        "by_reason": quarantined["by_reason"],
        "quarantine": quarantined["rows"][:show],
    }
    cells: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    if first.num_rows:
        file, line = first["_file"][0].as_py(), first["_line"][0].as_py()
        typed = first.slice(0, 1).to_pylist()[0]
        found = _row_as_read(source, wh.settings.root, file, line)
        if found is not None:
            text = load._raw_text(source, found, np.array([0]))[0].as_py()
            doc["first_row"] = {"location": f"{file}:{line}", "raw": text}
            if source.format in FIELD_FORMATS:
                cells = found.slice(0, 1).to_pylist()[0]
    for column in columns:
        origin = _origin(source, column)
        if origin is None and not filled[column]:
            doc["not_mapped"].append(column)
            continue
        mapped = source.columns.get(column)
        if mapped is not None:
            as_read = cells.get(mapped)
        elif column in source.constants:
            as_read = source.constants[column]
        else:
            as_read = None
        doc["columns"].append(
            {
                "column": column,
                "from": origin,
                "as_read": as_read if source.format in FIELD_FORMATS else None,
                "loaded_as": typed.get(column),
                "filled": round(filled[column], 4),
            }
        )
    return doc


def _origin(source: SourceSettings, column: str) -> str | None:
    """Where a canonical column's value comes from: the source column (or JSON key), a
    constant, or for the formats that map themselves a description; None when nothing."""
    if column in source.columns:
        return source.columns[column]
    if column in source.constants:
        return f"= {source.constants[column]}"
    if source.format == "segment":
        return "Segment spec"
    if source.target_table == "contacts" and column == "source_key":
        return "user_id, email or phone"
    return None


def _row_as_read(source: SourceSettings, root: Path, file: str, line: int) -> pa.Table | None:
    """The row at ``file:line`` as the source's reader gives it (text columns), or None."""
    for b in _batches_of(source, root, file):
        hit = b.rows.filter(pc.equal(b.rows[readers.LINE], line))
        if hit.num_rows:
            return hit
    return None


def _batches_of(source: SourceSettings, root: Path, file: str) -> Iterator[readers.Batch]:
    if source.format == "sql":
        yield from readers.read_sql(source, root)
        return
    for path in readers.find_files(source, root):
        if path.name == file:
            yield from load._batches(source, path, None)
            return
