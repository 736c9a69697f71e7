"""Export a segment's members to CSV, Parquet or JSON, optionally only those who consented.

Consent is read from ``consents`` (identifier, identifier_type, purpose, granted, ts): the
latest decision per identifier and purpose counts, identifiers map to customers through
``identity_links`` (``id_type`` = ``identifier_type``), and for a customer with several
identifiers the most recent decision among them wins.  A customer with no decision for the
purpose has not consented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from loupe.errors import LoupeError
from loupe.segments.store import current_members, definition
from loupe.warehouse import Warehouse

ExportFormat = Literal["csv", "parquet", "json"]
DEFAULT_COLUMNS = ("customer_id", "email", "phone", "name")


def consented_customers(
    consents: ir.Table, links: ir.Table, purpose: str, *, before: Any = None
) -> ir.Table:
    """``customer_id`` of every customer whose latest decision for ``purpose`` is a grant.

    ``before`` (a datetime) ignores decisions made at or after it.
    """
    c = consents.filter(
        consents.purpose.lower() == ibis.literal(purpose.lower(), type="string"),
        consents.identifier.notnull(),
        consents.granted.notnull(),
    )
    if before is not None:
        c = c.filter(c.ts < ibis.literal(before, type="timestamp"))
    id_type = c.identifier_type.lower().fill_null("")
    c = c.select(id_type=id_type, identifier=c.identifier, granted=c.granted, ts=c.ts)
    j = c.join(links, (c.id_type == links.id_type) & (c.identifier == links.id_value))
    j = j.select(customer_id=links.customer_id, granted=c.granted, ts=c.ts)
    w = ibis.window(
        group_by=j.customer_id, order_by=[j.ts.desc(), j.granted.cast("int8").asc()]
    )  # on a tie in time, a revocation wins
    ranked = j.mutate(_rn=ibis.row_number().over(w))
    latest = ranked.filter((ranked._rn == 0) & ranked.granted)
    return latest.select("customer_id")


def export_members(
    wh: Warehouse,
    name: str,
    path: str | Path,
    *,
    fmt: ExportFormat | None = None,
    consent: str | None = None,
    columns: tuple[str, ...] = DEFAULT_COLUMNS,
) -> dict[str, Any]:
    """Write the latest members of segment ``name`` to ``path``; returns what was written."""
    definition(wh, name)
    out = Path(path)
    kind = fmt or _format_of(out)
    members = current_members(wh, [name])
    customers = wh.table("customers")
    unknown = [c for c in columns if c not in customers.columns]
    if unknown:
        raise LoupeError(
            f"unknown column(s) {', '.join(unknown)}",
            where="--columns",
            fix=f"columns of customers: {', '.join(customers.columns)}",
        )
    rows = customers.filter(customers.customer_id.isin(members.customer_id))
    total = wh.count(rows)
    if consent:
        ok = consented_customers(wh.table("consents"), wh.table("identity_links"), consent)
        rows = rows.filter(rows.customer_id.isin(ok.customer_id))
    table = wh.to_arrow(rows.select(*columns).order_by("customer_id"))
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(table, out, kind)
    return {
        "segment": name,
        "path": str(out),
        "format": kind,
        "members": total,
        "exported": table.num_rows,
        "consent": consent,
        "excluded_without_consent": total - table.num_rows if consent else 0,
    }


def _format_of(path: Path) -> ExportFormat:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "parquet", "json"):
        return suffix  # type: ignore[return-value]
    if suffix in ("jsonl", "ndjson"):
        return "json"
    raise LoupeError(
        f"cannot tell the export format from {path.name!r}",
        where=str(path),
        fix="end the file name in .csv, .parquet or .json, or pass --format",
    )


def _write(table: pa.Table, path: Path, kind: ExportFormat) -> None:
    if kind == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    elif kind == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        path.write_text(
            table.to_pandas().to_json(orient="records", force_ascii=False, date_format="iso"),
            encoding="utf-8",
        )
