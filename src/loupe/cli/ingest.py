"""``loupe ingest`` and ``loupe sources``."""

from __future__ import annotations

import typer
from rich.table import Table

from loupe.cli import common


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("sources")(sources)


def ingest(
    source: list[str] = typer.Option(None, "--source", "-s", help="Only these sources."),
    json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Load new files of every declared source; bad rows go to the quarantine."""
    from loupe.ingest import ingest as run_ingest

    wh = common.state.warehouse()
    with common.progress_bar(not json) as bar:
        report = run_ingest(wh, only=source or None, progress=common.StepProgress(bar))
    if json:
        common.print_json(report.to_dict())
        return
    table = Table("source", "table", "read", "loaded", "quarantined", "duplicates", "files")
    for s in report.sources.values():
        files = f"{len(s.files)} new" + (
            f", {len(s.skipped_files)} seen" if s.skipped_files else ""
        )
        table.add_row(
            s.source,
            s.table,
            f"{s.read:,}",
            f"{s.loaded:,}",
            f"{s.quarantined:,}",
            f"{s.duplicates:,}",
            files,
        )
    common.out.print(table)


def sources(json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the declared sources (and check that loupe.toml is valid)."""
    settings = common.state.settings()
    rows = [
        {
            "name": s.name,
            "table": s.target_table,
            "format": s.format,
            "path": s.path or s.sql_table,
            "encoding": s.encoding,
        }
        for s in settings.sources
    ]
    if json:
        common.print_json({"sources": rows})
        return
    table = Table("name", "table", "format", "path", "encoding")
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("name", "table", "format", "path", "encoding")))
    common.out.print(table)
