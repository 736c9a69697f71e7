"""``loupe init``, ``loupe run`` and ``loupe demo``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from loupe.cli import common
from loupe.errors import LoupeError
from loupe.rich_tables import plain

DEMO_MARKER = ".loupe-demo"


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("run")(run)
    app.command("demo")(demo)


def init(
    directory: Path = typer.Argument(Path("."), help="Folder of the new project."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing loupe.toml."),
) -> None:
    """Write a commented example loupe.toml."""
    from loupe.scaffold import example_toml, write_config

    path = write_config(directory, example_toml(directory.resolve().name), force=force)
    common.err.print(
        f"wrote {path}; declare your [\\[sources]], check each with `loupe preview NAME`, "
        "then run `loupe ingest`"
    )


def run(
    stage: list[str] = typer.Option(None, "--stage", help="Only these stages (repeatable)."),
    json: bool = typer.Option(False, "--json", help="Print the stage reports as JSON."),
) -> None:
    """Run the pipeline: ingest → quality → identity → profile → models → segments."""
    from loupe.pipeline import run_pipeline

    wh = common.state.warehouse()
    with common.progress_bar(not json) as bar:
        reports = run_pipeline(wh, stage or None, progress=common.StepProgress(bar))
    doc = {name: _as_dict(r) for name, r in reports.items()}
    if json:
        common.print_json(doc)
    else:
        common.out.print(_summary(wh, doc))


def demo(
    customers: int = typer.Option(20_000, "--customers", help="People in the company."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same company)."),
    directory: Path = typer.Option(Path("loupe-demo"), "--dir", help="Project folder."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Do not start the web console."),
) -> None:
    """Create a project, generate a company, and run the whole pipeline on it."""
    from loupe.config import load_settings
    from loupe.pipeline import run_pipeline
    from loupe.scaffold import demo_toml, write_config
    from loupe.synth import generate_company
    from loupe.warehouse import Warehouse

    directory = directory.resolve()
    _prepare_demo_dir(directory)
    write_config(directory, demo_toml(directory.name), force=True)
    (directory / DEMO_MARKER).write_text("created by `loupe demo`; safe to delete\n")
    with common.progress_bar() as bar:
        step = common.StepProgress(bar)
        generate_company(directory / "data", customers=customers, seed=seed, progress=step)
        wh = Warehouse.open(load_settings(directory))
        reports = run_pipeline(wh, progress=step)
    doc = {name: _as_dict(r) for name, r in reports.items()}
    common.out.print(_summary(wh, doc))
    common.out.print(
        Text(
            f"project: {directory}\n"
            f"try:     loupe -p {directory} customers find <part of a name, e-mail or phone>\n"
            f"         loupe -p {directory} customers show <email|phone|customer_id>\n"
            f"         loupe -p {directory} customers explain <customer_id>  (why its records "
            "are one customer)\n"
            f"         loupe -p {directory} quarantine   (the rows ingest rejected, and why)\n"
            f"         loupe -p {directory} preview crm  (a source's first rows, as ingest "
            "reads them)"
        )
    )
    if not no_serve:
        common.err.print("(the web console arrives with the server stage; nothing to serve yet)")


def _prepare_demo_dir(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        if not (directory / DEMO_MARKER).exists():
            raise LoupeError(
                f"{directory} is not empty and was not made by `loupe demo`",
                where=str(directory),
                fix="choose another --dir, or empty the folder",
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)


def _as_dict(report: Any) -> Any:
    return report.to_dict() if hasattr(report, "to_dict") else report


def _summary(wh: Any, doc: dict[str, Any]) -> Any:
    table = Table(title="Loupe: what happened", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    ing = doc.get("ingest")
    if ing:
        total = ing["total"]
        table.add_row("sources", str(len(ing["sources"])))
        table.add_row("rows read", f"{total['read']:,}")
        table.add_row("rows loaded", f"{total['loaded']:,}")
        table.add_row("rows quarantined", f"{total['quarantined']:,}")
        table.add_row("duplicate rows skipped", f"{total['duplicates']:,}")
    ident = doc.get("identity")
    if ident:
        for key, label in (
            ("records", "person records"),
            ("customers", "customers resolved"),
            ("duplicates_merged", "duplicates merged"),
            ("shared_identifiers", "shared identifiers"),
            ("probabilistic_links", "probabilistic links"),
        ):
            value = ident.get(key)
            if isinstance(value, list):
                value = len(value)
            if value is not None:
                table.add_row(label, f"{value:,}")
    features = (doc.get("profile") or {}).get("features") or {}
    if features.get("customers") is not None:
        table.add_row("customers profiled", f"{features['customers']:,}")
    tags = ((doc.get("profile") or {}).get("tags") or {}).get("tags") or {}
    for tag, count in list(tags.items())[:5]:
        table.add_row(plain(f"  tag {tag}"), f"{count:,}")
    _models_rows(table, doc.get("models") or {})
    return Panel.fit(table)


def _models_rows(table: Table, models: dict[str, Any]) -> None:
    clv = models.get("clv") or {}
    if clv.get("scored") is not None:
        table.add_row("customers valued (CLV)", f"{clv['scored']:,}")
    if clv.get("total_clv") is not None:
        table.add_row(
            f"  expected value, {clv.get('horizon_months')} months", f"{clv['total_clv']:,.0f}"
        )
    for scored in (models.get("propensity") or {}).get("scored") or []:
        table.add_row(
            f"propensity {scored['model']}",
            f"{scored['customers']:,} scored, mean {scored['mean_score']:.1%}",
        )
    due = models.get("due") or {}
    if due.get("rows") is not None:
        table.add_row("next-purchase dates", f"{due['rows']:,}")
    forecast = models.get("forecast") or {}
    if forecast.get("forecast") is not None:
        periods = f"{forecast['horizon']} {'days' if forecast['freq'] == 'D' else 'weeks'}"
        table.add_row(f"demand forecast rows ({periods})", f"{len(forecast['forecast']):,}")
    for part, err in (models.get("skipped") or {}).items():
        table.add_row(f"  {part} skipped", str(err.get("what", ""))[:60])
