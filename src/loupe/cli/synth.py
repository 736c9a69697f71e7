"""``loupe generate``: a synthetic company with ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from loupe.cli import common


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


def generate(
    customers: int = typer.Option(20_000, "--customers", help="People in the company."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same files)."),
    out: Path = typer.Option(..., "--out", help="Folder to write the files into."),
    json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write a synthetic omni-channel retailer's files (and truth/) into OUT."""
    from loupe.synth import generate_company

    with common.progress_bar(not json) as bar:
        report = generate_company(
            out, customers=customers, seed=seed, progress=common.StepProgress(bar)
        )
    if json:
        common.print_json(report.to_dict())
    else:
        common.err.print(
            f"wrote {sum(report.files.values()):,} rows in {len(report.files)} files to "
            f"{report.out} ({report.records:,} person records, {report.bad_rows} planted bad rows)"
        )
