"""Looking into the quarantine: what ingest rejected, where and why (``loupe quarantine``).

Ingest reports how many rows of each source went to quarantine; this answers the next
questions a data team asks: for which reasons, at which lines, with what text, so that the
export can be fixed at its origin and the files loaded again.  It reads the ``quarantine``
table through Ibis, so it works on either engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir

from loupe.config import SourceSettings
from loupe.errors import NotFoundError
from loupe.warehouse import Warehouse
from loupe.warehouse import functions as fn


def _kind(reason: ir.StringValue) -> ir.StringValue:
    """The reason without its particulars: ``unparseable ordered_at: '2024-13-45'`` and
    ``… '32/13/2024'`` are one kind, ``unparseable ordered_at``."""
    return reason.re_extract(r"^([^:]*)", 1).strip()


#: An unparseable number that looks written with a decimal comma (``12,50``, ``1.234,5``,
#: ``€ 12,50``), and an unparseable date of the form a source's ``date_order`` reads.
_COMMA_NUMBER = (
    "^unparseable [a-z_]+: '[^0-9,]*[-+]?[0-9]{1,3}([. \u00a0\u202f]?[0-9]{3})*,[0-9]+[^0-9,.]*'$"
)
_YEAR_LAST = f"^unparseable [a-z_]+: '(?:{fn.DATE_YEAR_LAST}|{fn.DATE_SHORT_YEAR_LAST})'$"
#: The encoding an undecodable line reads in, as the reader guessed it (readers.reads_as).
_READS_AS = r": reads as ([a-z0-9_]+)$"


def _hint(
    source: SourceSettings | None,
    rows: int,
    commas: int,
    year_last: int,
    reads_as: tuple[str, int] | None = None,
) -> str | None:
    """What to set on the source when most rows of a reason look like a setting it lacks;
    ``reads_as`` is the encoding most of the reason's undecodable rows read in, and how many."""
    if source is None:
        return None
    if reads_as is not None and reads_as[1] * 2 > rows and reads_as[0] != source.encoding:
        encoding, n = reads_as
        return f'{n:,} read as {encoding} text: set `encoding = "{encoding}"`'
    if commas * 2 > rows and source.decimal == "." and source.format in ("csv", "tsv"):
        return f'{_look(commas)} written with a decimal comma (12,50): set `decimal = ","`'
    if year_last * 2 > rows and source.date_order == "ymd":
        return (
            f"{_look(year_last)} written day or month first (05/03/2024): set "
            '`date_order = "dmy"` (day first) or `"mdy"` (month first)'
        )
    return None


def _look(n: int) -> str:
    return f"{n:,} looks" if n == 1 else f"{n:,} look"


def _file_and_line(location: ir.StringValue) -> tuple[ir.StringValue, ir.IntegerValue]:
    """``orders.csv:1203`` as ``("orders.csv", 1203)``: rows sort by line number, not by text
    (``:10`` before ``:9``)."""
    line = location.re_extract(r":(\d+)$", 1)
    file = location.re_extract(r"^(.*):\d+$", 1)
    return ibis.ifelse(line == "", location, file), line.nullif("").cast("int64")


def quarantine_view(
    wh: Warehouse,
    sources: Sequence[str] = (),
    reason: str | None = None,
    latest: bool = False,
    limit: int = 20,
) -> dict[str, Any]:
    """Quarantined rows, summed by source and reason, and the rows themselves.

    Parameters
    ----------
    sources
        Only these sources (declared in ``loupe.toml`` or present in the quarantine).
    reason
        Only rows whose reason contains this text (case-insensitive).
    latest
        Only rows of the latest ingest run that quarantined any.
    limit
        Rows to return, in source, file and line order; 0 for all.

    Returns
    -------
    dict
        ``total`` (rows matching), ``by_reason`` (``source, reason, rows, example, hint``:
        the reason without its particulars, one full reason, and the source setting to
        change when most of its rows look like numbers with a decimal comma, dates day
        first or text in another encoding, else null), ``rows`` (``source, location,
        reason, raw, batch, loaded_at``) and ``batch`` (the latest batch, with ``latest``).
    """
    q = wh.table("quarantine")
    known = {s.name for s in wh.settings.sources} | set(
        wh.to_pandas(q.select("source").distinct())["source"]
    )
    unknown = [s for s in sources if s not in known]
    if unknown:
        raise NotFoundError(
            f"no source named {', '.join(map(repr, unknown))}",
            where="loupe.toml",
            fix=f"sources are: {', '.join(sorted(known)) or '(none declared)'}",
        )
    if sources:
        q = q.filter(q.source.isin(list(sources)))
    if reason:
        q = q.filter(q.reason.lower().contains(reason.lower()))
    batch = None
    if latest:
        newest = wh.to_pandas(q.order_by(ibis.desc("loaded_at")).select("batch").limit(1))
        batch = str(newest["batch"].iloc[0]) if len(newest) else None
        q = q.filter(q.batch == batch) if batch is not None else q.filter(ibis.literal(False))
    kinds = q.mutate(kind=_kind(q.reason))
    summary = wh.to_pandas(
        kinds.group_by(["source", "kind"])
        .aggregate(
            rows=kinds.count(),
            example=kinds.reason.min(),
            commas=ibis.ifelse(kinds.reason.re_search(_COMMA_NUMBER), 1, 0).sum(),
            year_last=ibis.ifelse(kinds.reason.re_search(_YEAR_LAST), 1, 0).sum(),
        )
        .order_by(["source", "kind"])
    )
    declared = {s.name: s for s in wh.settings.sources}
    undecodable = q.filter(q.reason.startswith("bytes not valid"))
    guesses = wh.to_pandas(
        undecodable.group_by(
            source=undecodable.source,
            kind=_kind(undecodable.reason),
            guess=undecodable.reason.re_extract(_READS_AS, 1),
        )
        .aggregate(n=undecodable.count())
        .filter(ibis._.guess != "")
        .order_by(["source", "kind", ibis.desc("n"), "guess"])
    )
    reads_as: dict[tuple[str, str], tuple[str, int]] = {}
    for g in guesses.itertuples():
        reads_as.setdefault((g.source, g.kind), (str(g.guess), int(g.n)))  # the most common
    file, line = _file_and_line(q.location)
    ordered = q.mutate(_file=file, _line=line).order_by(["source", "_file", "_line", "location"])
    if limit > 0:
        ordered = ordered.limit(limit)
    rows = wh.to_pandas(ordered.select("source", "location", "reason", "raw", "batch", "loaded_at"))
    return {
        "total": int(summary["rows"].sum()) if len(summary) else 0,
        "by_reason": [
            {
                "source": r.source,
                "reason": r.kind,
                "rows": int(r.rows),
                "example": r.example,
                "hint": _hint(
                    declared.get(r.source),
                    r.rows,
                    r.commas,
                    r.year_last,
                    reads_as.get((r.source, r.kind)),
                ),
            }
            for r in summary.itertuples()
        ],
        "rows": [
            {
                "source": r.source,
                "location": r.location,
                "reason": r.reason,
                "raw": r.raw,
                "batch": r.batch,
                "loaded_at": r.loaded_at.to_pydatetime(),
            }
            for r in rows.itertuples()
        ],
        "batch": batch,
    }
