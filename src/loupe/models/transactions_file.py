"""Read a transactions file (CSV or whitespace-separated) into an Ibis table with DuckDB.

Used by ``loupe clv fit`` to fit models on any file without a project.  The file is read by
DuckDB's native reader; nothing row-sized passes through Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from loupe.errors import SourceError

WHITESPACE = "whitespace"


def read_transactions_file(
    con: Any,
    path: str | Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    sep: str = ",",
    header: bool = True,
    date_format: str | None = None,
) -> ir.Table:
    """A table ``customer_id, ordered_at (date), amount (float64)`` over the file at ``path``.

    Parameters
    ----------
    con
        An Ibis DuckDB connection.
    sep
        A one-character delimiter, or ``"whitespace"`` for runs of spaces/tabs (CDNOW style).
    header
        Whether the first line holds column names; without one, columns are ``col1``, ``col2`` …
    date_format
        strftime format of the date column (e.g. ``%Y%m%d``); default: ISO dates/timestamps.

    Raises
    ------
    SourceError
        The file is missing or unreadable, or a named column is not in it.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(
            "transactions file not found", where=str(path), fix="check the path and try again"
        )
    try:
        table = _read(con, path, sep=sep, header=header)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(
            f"cannot read the transactions file: {str(exc).splitlines()[0]}",
            where=str(path),
            fix="check --sep and --no-header",
        ) from exc
    wanted = {"customer": customer_col, "date": date_col, "amount": amount_col}
    for role, col in wanted.items():
        if col is not None and col not in table.columns:
            raise SourceError(
                f"{role} column {col!r} is not in the file (columns: {', '.join(table.columns)})",
                where=f"{path}, column {col}",
                fix=f"pass --{role}-col with one of the file's columns"
                + ("" if header else " (without a header they are col1, col2, …)"),
            )
    date = table[date_col]
    if date_format is not None:
        day = date.cast("string").as_date(date_format)
    elif date.type().is_temporal() or date.type().is_string():
        day = date.cast("date")
    else:
        raise SourceError(
            f"date column {date_col!r} holds {date.type()} values, not dates",
            where=f"{path}, column {date_col}",
            fix="pass --date-format (e.g. --date-format %Y%m%d)",
        )
    amount = table[amount_col].cast("float64") if amount_col else ibis.literal(0.0)
    return table.select(
        customer_id=table[customer_col].cast("string"), ordered_at=day, amount=amount
    )


def _read(con: Any, path: Path, *, sep: str, header: bool) -> ir.Table:
    if sep.lower() != WHITESPACE:
        if len(sep) != 1:
            raise SourceError(
                f"--sep must be one character or 'whitespace', not {sep!r}", where="--sep"
            )
        table = con.read_csv(path, delim=sep, header=header)
        if not header:
            table = table.rename({f"col{i + 1}": c for i, c in enumerate(table.columns)})
        return table
    names: list[str] | None = None
    if header:
        with path.open(encoding="utf-8", errors="replace") as fh:
            names = fh.readline().split()
    lines = con.read_csv(
        path,
        header=False,
        columns={"line": "VARCHAR"},
        delim="\x1f",
        quote="",
        escape="",
        skip=1 if header else 0,
    )
    lines = lines.filter(lines.line.strip().length() > 0)
    parts = lines.line.strip().re_split(r"\s+")
    if names is None:
        width = int(con.execute(parts.length().max()) or 0)
        names = [f"col{i + 1}" for i in range(width)]
    return lines.select(**{name: parts[i] for i, name in enumerate(names)})
