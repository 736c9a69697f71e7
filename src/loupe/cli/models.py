"""``loupe models``: train, score, report and list predictive models; fairness; who is due;
forecasts.

The verbs live in this module and in ``cli/models_plan.py`` (``due``, ``forecast``), all on
:data:`models_app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from loupe.cli import common
from loupe.rich_tables import whole_table

models_app = typer.Typer(
    help="Predictive models: churn and purchase propensity, next purchase, demand forecast.",
    no_args_is_help=True,
)


def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


@models_app.command("train")
def train(
    labels: list[str] | None = typer.Argument(
        None, help=r"Labels to train (default: every [\[models.labels]] entry)."
    ),
    cutoff: str | None = typer.Option(
        None,
        "--cutoff",
        help="Validation cutoff YYYY-MM-DD (default: data end minus the label's horizon).",
    ),
    json_: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Train, validate, calibrate and register churn/purchase propensity models."""
    from loupe.models.propensity import train as train_labels

    day = common.parse_date(cutoff, "--cutoff")
    wh = common.state.warehouse()
    try:
        with common.progress_bar(enabled=not json_) as bar:
            results = train_labels(wh, labels or [], cutoff=day, progress=common.StepProgress(bar))
    finally:
        wh.close()
    docs = [r.to_dict() for r in results]
    if json_:
        common.print_json({"models": docs})
        return
    table = Table(title="Propensity models (validated on the held-out period)")
    for col in ("label", "version", "train rows", "valid rows", "model", "AUC", "PR-AUC", "Brier"):
        table.add_column(col, justify="left" if col in ("label", "version", "model") else "right")
    for d in docs:
        for name in ("booster", "baseline"):
            m = d["metrics"][name]
            table.add_row(
                d["label"] if name == "booster" else "",
                d["version"] if name == "booster" else "",
                str(d["rows"]["train"]) if name == "booster" else "",
                str(d["rows"]["validation"]) if name == "booster" else "",
                name, _fmt(m["auc"]), _fmt(m["pr_auc"]), _fmt(m["brier"], 4),
            )  # fmt: skip
    common.out.print(table)
    for d in docs:
        top = ", ".join(f"{x['feature']} ({x['direction']})" for x in d["drivers"][:5])
        common.out.print(f"{d['label']}: top drivers {top}")


@models_app.command("score")
def score(
    model: str | None = typer.Argument(
        None, help="Model name or version (default: every propensity model)."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Score with data before this day (default: the data end)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Score customers: model_scores rows and score_<model> in customer_features."""
    from loupe.models.propensity import score as score_models

    day = common.parse_date(as_of, "--as-of")
    wh = common.state.warehouse()
    try:
        with common.progress_bar(enabled=not json_) as bar:
            results = score_models(
                wh, [model] if model else [], as_of=day, progress=common.StepProgress(bar)
            )
    finally:
        wh.close()
    docs = [r.to_dict() for r in results]
    if json_:
        common.print_json({"scores": docs})
        return
    for d in docs:
        common.out.print(
            f"[bold]{d['model']}[/] ({d['version']}): {d['customers']:,} customers as of "
            f"{d['as_of']}, mean score {d['mean_score']:.3f}, top decile {d['top_decile_mean']:.3f}"
            + ("" if d["merged"] else " (customer_features not built: scores only)")
        )


@models_app.command("report")
def report(
    model: str = typer.Argument(..., help="Model name or version."),
    html: Path | None = typer.Option(None, "--html", help="Write the report as HTML here."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Validation metrics, lift, calibration and drivers of a propensity model."""
    from loupe.models.report import model_report, render_html

    wh = common.state.warehouse()
    try:
        doc = model_report(wh, model)
    finally:
        wh.close()
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(doc), encoding="utf-8")
    if json_:
        common.print_json(doc)
        return
    table = Table(title=f"{doc['model']} — {doc['version']}")
    for col in ("model", "AUC", "PR-AUC", "Brier", "top-decile lift"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name in ("booster", "baseline"):
        v = doc["validation"][name]
        lift = v["lift"][0]["lift"] if v["lift"] else None
        table.add_row(name, _fmt(v["auc"]), _fmt(v["pr_auc"]), _fmt(v["brier"], 4), _fmt(lift, 2))
    common.out.print(table)
    groups = doc["validation"]["booster"]["drivers"]["groups"][:8]
    common.out.print(
        "driver groups: " + ", ".join(f"{g['group']} {100 * g['share']:.0f}%" for g in groups)
    )
    if html is not None:
        common.out.print(f"HTML report written to {html}")


@models_app.command("list")
def list_(json_: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Every registered model version, newest first."""
    from loupe.models.registry import list_models

    wh = common.state.warehouse()
    try:
        records = list_models(wh) if wh.exists("model_registry") else []
    finally:
        wh.close()
    docs = [r.to_dict() for r in records]
    if json_:
        common.print_json({"data": docs, "count": len(docs)})
        return
    rows = []
    for d in docs:
        metrics = d["metrics"]
        auc = metrics.get("booster", {}).get("auc") if isinstance(metrics, dict) else None
        rows.append([
            d["version"], d["kind"], d["target"] or "-",
            d["trained_at"].strftime("%Y-%m-%d %H:%M"),
            f"{d['train_start'] or '-'} → {d['train_end'] or '-'}",
            f"AUC {auc:.3f}" if auc is not None else ", ".join(sorted(metrics))[:40],
        ])  # fmt: skip
    headers = ["version", "kind", "target", "trained at", "training window", "metrics"]
    table = whole_table(headers, rows, title=f"{len(docs)} model versions")
    if table.whole_width > common.out.width:  # narrow: the time is in the version's name
        table = whole_table(
            [*headers[:3], "training window, metrics"],
            [[*r[:3], f"{r[4]}, {r[5]}"] for r in rows],
            give_way=(3,),
            title=f"{len(docs)} model versions",
        )
    common.out.print(table)


@models_app.command("fairness")
def fairness(
    model: str = typer.Argument(..., help="Model name or version (its latest scoring run)."),
    by: str | None = typer.Option(
        None, "--by", help="gender, age_band, region or city (default: \\[models.propensity])."
    ),
    json_: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Score distribution and top-decile selection rate per group; disparity ratio."""
    from loupe.models.fairness import fairness_report

    wh = common.state.warehouse()
    try:
        doc = fairness_report(wh, model, by=by)
    finally:
        wh.close()
    if json_:
        common.print_json(doc)
        return
    table = Table(title=f"{doc['model']} by {doc['attribute']} (scored {doc['scored_at']})")
    for col in ("group", "customers", "mean", "p10", "median", "p90", "selected", "rate"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for g in doc["groups"]:
        q = g["quantiles"]
        table.add_row(
            g["group"] + ("" if g["in_ratio"] else " *"), str(g["customers"]),
            _fmt(g["mean_score"]), _fmt(q["p10"]), _fmt(q["p50"]), _fmt(q["p90"]),
            str(g["selected"]), _fmt(g["selection_rate"]),
        )  # fmt: skip
    common.out.print(table)
    ratio = doc["disparity_ratio"]
    verdict = (
        "[red]below the four-fifths threshold[/]"
        if doc["four_fifths_violated"]
        else "within the four-fifths threshold"
    )
    common.out.print(
        f"disparity ratio {_fmt(ratio)} ({doc['lowest_group']} / {doc['highest_group']}): "
        f"{verdict if ratio is not None else 'not enough groups'}"
        f"; * = fewer than {doc['min_group_size']} customers or unknown, left out of the ratio"
    )


def register(app: typer.Typer) -> None:
    """Add the ``models`` sub-app to the root app."""
    from loupe.cli import models_plan  # noqa: F401  (adds its verbs to models_app)

    app.add_typer(models_app, name="models")
