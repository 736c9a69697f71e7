"""``loupe ingest`` and ``loupe sources``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.text import Text

from loupe.cli import common
from loupe.config import Settings, SourceSettings
from loupe.rich_tables import whole_table


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("sources")(sources)
    app.command("preview")(preview)
    app.command("quarantine")(quarantine)


def ingest(
    source: list[str] = typer.Option(None, "--source", "-s", help="Only these sources."),
    reload: bool = typer.Option(
        False,
        "--reload",
        help="Forget what the sources loaded (rows, quarantine, files seen) and read all their "
        "files again: after a change to a source's settings.",
    ),
    json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Load new files of every declared source; bad rows go to the quarantine."""
    from loupe.ingest import ingest as run_ingest

    wh = common.state.warehouse()
    encoding_of = {src.name: src.encoding for src in wh.settings.sources}.get
    with common.progress_bar(not json) as bar:
        report = run_ingest(
            wh, only=source or None, progress=common.StepProgress(bar), reload=reload
        )
    if json:
        common.print_json(report.to_dict())
        return
    rows = []
    for s in report.sources.values():
        seen = f"{len(s.skipped_files)} seen" if s.skipped_files else ""
        new = f"{len(s.files)} new" if s.files or not seen else ""
        counts = (s.read, s.loaded, s.quarantined, s.duplicates)
        files = ", ".join(filter(None, (new, seen)))
        rows.append([s.source, s.table, *(f"{n:,}" for n in counts), files])
    # Only the target table gives way in a narrow terminal.
    headers = ("source", "table", "read", "loaded", "quarantined", "duplicates", "files")
    table = whole_table(headers, rows, right=range(2, 6), give_way={1})
    common.out.print(table)
    for s in report.sources.values():
        _print_utf8(s.source, s.read_as_utf8, encoding_of(s.source))
        if s.forgotten is not None:
            common.out.print(
                f"[dim]{s.source}: {s.forgotten:,} rows loaded before were deleted, and every "
                "file read again[/]"
            )
    bad = sum(s.quarantined for s in report.sources.values())
    if bad:
        common.out.print(
            f"[dim]{bad:,} rows quarantined: `loupe quarantine --latest` shows them and why[/]"
        )
        from loupe.ingest.quarantine import quarantine_view

        _print_hints(quarantine_view(wh, list(report.sources), latest=True, limit=1))


def _print_utf8(source: str, files: list[str], declared: str | None) -> None:
    """A line saying which of a source's files were read as UTF-8, not in its encoding."""
    if not files:
        return
    named = ", ".join(files[:3]) + (f" and {len(files) - 3:,} more" if len(files) > 3 else "")
    common.out.print(
        Text(
            f"{source}: {named} {'is' if len(files) == 1 else 'are'} UTF-8 text, not "
            f"{declared}, and {'was' if len(files) == 1 else 'were'} read as UTF-8; if all its "
            'files are now, set `encoding = "utf-8"` on the source in loupe.toml',
            style="yellow",
        )
    )


def _print_hints(view: dict[str, Any], then: str = "loupe ingest -s {source} --reload") -> None:
    """One line per reason whose rows look like a setting their source lacks, and the
    command ``then`` to run after setting it."""
    for r in view["by_reason"]:
        if r["hint"]:
            hint = Text(f"{r['source']}, {r['reason']}: ", style="yellow")
            hint.append(
                f"{r['hint']} on the source in loupe.toml, then `{then.format(source=r['source'])}`"
            )
            common.out.print(hint)


def preview(
    name: str = typer.Argument(
        None, help="The source, as named in loupe.toml; every source, in brief, when left out."
    ),
    rows: int = typer.Option(1000, "--rows", "-n", min=1, help="Rows of the source to read."),
    show: int = typer.Option(5, "--show", min=0, help="Rows to list, loaded and quarantined."),
    json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Map and type a source's first rows as ingest would, writing nothing to the project:
    check a mapping, a decimal mark or a date order before loading."""
    from loupe.ingest.preview import FIELD_FORMATS
    from loupe.ingest.preview import preview as run_preview

    settings = common.state.settings()
    if name is None:
        _preview_all(settings, rows, json)
        return
    with common.progress_bar(not json) as bar:
        doc = run_preview(settings, name, rows, show, common.StepProgress(bar))
    if json:
        common.print_json(doc)
        return
    out = common.out
    files = doc["files"]
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3:,} more" if len(files) > 3 else "")
    out.print(
        Text(
            f"Preview of {doc['source']} ({doc['format']} → raw_{doc['table']}): "
            f"{doc['read']:,} rows read from {shown or 'no file'}. Nothing was written to "
            "the project."
        )
    )
    counts = [
        ("would load", doc["loaded"]),
        ("quarantined", doc["quarantined"]),
        ("duplicates", doc["duplicates"]),
        ("contact profiles", doc["profiles"]),
    ]
    out.print("  " + " · ".join(f"{k} {v:,}" for k, v in counts if v is not None))
    _print_utf8(doc["source"], doc["read_as_utf8"], settings.source(name).encoding)
    first = doc["first_row"]
    if first is not None:
        out.print(Text(f"First row loaded, {first['location']}:", style="bold"))
        fields = doc["format"] in FIELD_FORMATS
        if not fields:
            out.print(Text("    ").append_text(_cut(first["raw"] or "")))
        headers = ["column", "from", *(["as read"] if fields else []), "loaded as", "filled"]
        cells = [
            [
                c["column"],
                c["from"] or "",
                *([_shown(c["as_read"])] if fields else []),
                _shown(c["loaded_as"]),
                f"{c['filled']:.0%}",
            ]
            for c in doc["columns"]
        ]
        values = set(range(2, len(headers) - 1))  # as read, loaded as: folded when narrow
        table = whole_table(headers, cells, right={len(headers) - 1}, give_way=values)
        for i in values:
            table.columns[i].overflow = "fold"
        out.print(table)
    if doc["not_mapped"]:
        out.print(f"[dim]not mapped: {', '.join(doc['not_mapped'])}[/]")
    if doc["by_reason"]:
        reasons = [[r["reason"], f"{r['rows']:,}"] for r in doc["by_reason"]]
        out.print(whole_table(("would be quarantined", "rows"), reasons, right={1}))
        _print_hints(doc, then="loupe preview {source}")
        _print_quarantined(doc["quarantine"])


def _preview_all(settings: Settings, rows: int, json: bool) -> None:
    """Every source previewed in brief: its counts, its hints, or the error that stops it
    (one source's error does not stop the others)."""
    from loupe.errors import LoupeError
    from loupe.ingest.load import declared_sources
    from loupe.ingest.preview import preview as run_preview

    sources = declared_sources(settings)
    briefs = []
    with common.progress_bar(not json) as bar:
        task = bar.add_task("preview", total=len(sources))
        for source in sources:
            brief: dict[str, Any] = {"source": source.name, "table": source.target_table}
            try:
                doc = run_preview(settings, source.name, rows, 0)
            except LoupeError as exc:
                brief |= {k: None for k in _COUNTS} | {
                    "by_reason": [],
                    "read_as_utf8": [],
                    "error": exc.render(),
                }
            else:
                brief |= {k: doc[k] for k in (*_COUNTS, "by_reason", "read_as_utf8")}
                brief["error"] = None
            briefs.append(brief)
            bar.advance(task)
    if json:
        common.print_json({"rows_asked": rows, "sources": briefs})
        return
    cells = [
        [b["source"], b["table"], *("" if b[k] is None else f"{b[k]:,}" for k in _COUNTS)]
        for b in briefs
    ]
    headers = ("source", "table", "read", "would load", "quarantined", "duplicates")
    title = f"Preview of every source's first {rows:,} rows; nothing was written to the project"
    common.out.print(whole_table(headers, cells, right=range(2, 6), give_way={1}, title=title))
    for b in briefs:
        _print_utf8(b["source"], b["read_as_utf8"], settings.source(b["source"]).encoding)
        if b["error"]:
            common.out.print(Text(f"{b['source']}: {b['error']}", style="red"))
    _print_hints(
        {"by_reason": [r for b in briefs for r in b["by_reason"]]}, "loupe preview {source}"
    )
    common.out.print(Text("`loupe preview SOURCE` shows one source's rows", style="dim"))


#: The counts a brief preview gives per source.
_COUNTS = ("read", "loaded", "quarantined", "duplicates")


def _shown(value: Any) -> str:
    """A value as the preview shows it: timestamps are stored in UTC, and say so."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") + (" UTC" if value.tzinfo is None else "")
    return str(value)


def _cut(raw: str) -> Text:
    """A row's text, cut at :data:`RAW_CHARS` characters with a note of what was left out."""
    more = len(raw) - RAW_CHARS
    text = Text(raw[:RAW_CHARS] if more > 0 else raw)
    if more > 0:
        text.append(f" … ({more:,} more characters)", style="dim")
    return text


def _print_quarantined(rows: list[dict[str, Any]]) -> None:
    """Rejected rows, two lines each: location and reason, then the text as read."""
    # A table cut every row's text to a few dozen characters.
    for r in rows:
        head = Text(r["location"], style="bold")
        head.append(f"  {r['reason']}")
        common.out.print(head)
        common.out.print(Text("    ").append_text(_cut(r["raw"] or "")))


def sources(json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the declared sources (and check that loupe.toml is valid)."""
    from loupe.errors import SourceError
    from loupe.ingest.readers import find_files

    settings = common.state.settings()

    def matching(source: SourceSettings) -> int | None:
        """Files the path matches now (None for a SQL table): a glob matching nothing is
        seen here, before an ingest stops on it."""
        if source.path is None:
            return None
        try:
            return len(find_files(source, settings.root))
        except SourceError:
            return 0

    rows = [
        {
            "name": s.name,
            "table": s.target_table,
            "format": s.format,
            "path": s.path or s.sql_table,
            "encoding": s.encoding,
            "decimal": s.decimal,
            "date_order": s.date_order,
            "sheet": s.sheet,
            "files": matching(s),
        }
        for s in settings.sources
    ]
    if json:
        common.print_json({"sources": rows})
        return
    # The path is what a user checks: it wraps rather than being cut to "data/crm_custome…".
    # A spreadsheet, Parquet file or database declares its own encoding.
    cells = [
        [
            str(r["name"]),
            str(r["table"]),
            str(r["format"]),
            str(r["path"]) + (f" [{r['sheet']}]" if r["sheet"] else ""),
            ", ".join(_reading(r)),
            "" if r["files"] is None else Text(f"{r['files']:,}", "red" if not r["files"] else ""),
        ]
        for r in rows
    ]
    headers = ("name", "table", "format", "path", "encoding", "files")
    table = whole_table(headers, cells, right={5}, give_way={3})
    table.columns[3].overflow = "fold"
    table.columns[3].min_width = 30
    common.out.print(table)


def _reading(source: dict[str, Any]) -> list[str]:
    """How a source's text is read: its encoding (for the formats read as text), and its
    decimal mark and date order where they are not the defaults."""
    parts = [str(source["encoding"])] if source["format"] in _TEXT_FORMATS else []
    if source["decimal"] != ".":
        parts.append(f'decimal "{source["decimal"]}"')
    if source["date_order"] != "ymd":
        parts.append(str(source["date_order"]))
    return parts


#: Characters of a quarantined row's text shown in the terminal (``--json`` has them all).
RAW_CHARS = 300

#: Formats read as text, in the source's ``encoding``.
_TEXT_FORMATS = ("csv", "tsv", "jsonl", "segment")


def quarantine(
    source: list[str] = typer.Option(None, "--source", "-s", help="Only these sources."),
    reason: str = typer.Option(None, "--reason", "-r", help="Only reasons containing this."),
    latest: bool = typer.Option(False, "--latest", help="Only the latest run's rows."),
    limit: int = typer.Option(20, "--limit", "-n", min=0, help="Rows to list; 0 for all."),
    json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """What ingest rejected: rows per source and reason, then the rows with their text."""
    from loupe.ingest.quarantine import quarantine_view

    wh = common.state.warehouse()
    try:
        doc = quarantine_view(wh, source or (), reason, latest, limit)
    finally:
        wh.close()
    if json:
        common.print_json(doc)
        return
    out = common.out
    if not doc["total"]:
        out.print("nothing in quarantine" + (" that matches" if source or reason else ""))
        return
    reasons = [[r["source"], r["reason"], f"{r['rows']:,}"] for r in doc["by_reason"]]
    title = f"Quarantine: {doc['total']:,} rows" + (f" (batch {doc['batch']})" if latest else "")
    out.print(whole_table(("source", "reason", "rows"), reasons, right={2}, title=title))
    _print_hints(doc)
    _print_quarantined(doc["rows"])
    if len(doc["rows"]) < doc["total"]:
        out.print(
            f"[dim]{len(doc['rows']):,} of {doc['total']:,} rows; --limit 0 lists all, "
            "--json gives them whole[/]"
        )
