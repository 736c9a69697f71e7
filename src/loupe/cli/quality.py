"""CLI verbs of the quality stage: ``loupe quality [--json] [--html PATH]``."""

from __future__ import annotations

from pathlib import Path

import typer

from loupe.cli import common
from loupe.errors import LoupeError


class ReportWriteError(LoupeError):
    """The HTML report cannot be written."""


def quality(
    json_output: bool = typer.Option(
        False, "--json", help="Print the report as one JSON document."
    ),
    html: Path | None = typer.Option(
        None,
        "--html",
        help="Write the HTML report here (default: <project>/reports/quality.html).",
        show_default=False,
    ),
) -> None:
    """Standardise, deduplicate and flag the raw tables; print the quality report."""
    from loupe.quality import run_quality

    wh = common.state.warehouse()
    try:
        with common.progress_bar(enabled=not json_output) as bar:
            report = run_quality(wh, progress=common.StepProgress(bar))
    finally:
        wh.close()
    target = html or common.state.project / "reports" / "quality.html"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(report.to_html(), encoding="utf-8")
    except OSError as exc:
        raise ReportWriteError(
            f"Cannot write the HTML report: {exc.strerror}",
            where=str(target),
            fix="pass --html with a path in a writable folder",
        ) from None
    if json_output:
        common.print_json({**report.to_dict(), "html": str(target)})
        return
    common.out.print(report.to_rich())
    common.err.print(f"HTML report: {target}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("quality")(quality)
