"""``loupe clv``: customer lifetime value.

``loupe clv fit`` fits the models on any transactions file, no project needed; ``loupe clv
score`` fits them on the project's orders and writes the ``clv_*`` columns of
``customer_features``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from loupe.cli import common
from loupe.errors import LoupeError

clv_app = typer.Typer(help="Customer lifetime value: BG/NBD, Pareto/NBD, Gamma-Gamma.")


@clv_app.command("fit")
def fit(
    transactions: Path = typer.Option(..., "--transactions", help="Transactions file (CSV)."),
    customer_col: str = typer.Option(..., "--customer-col", help="Customer id column."),
    date_col: str = typer.Option(..., "--date-col", help="Purchase date column."),
    amount_col: str = typer.Option(..., "--amount-col", help="Purchase amount column."),
    calibration_end: str = typer.Option(
        ..., "--calibration-end", help="Last day (inclusive) of the calibration period."
    ),
    holdout_end: str | None = typer.Option(
        None, "--holdout-end", help="Last day of a holdout period to validate against."
    ),
    time_unit: str = typer.Option("week", "--time-unit", help="day, week or month."),
    date_format: str | None = typer.Option(
        None, "--date-format", help="strftime format of the dates, e.g. %Y%m%d."
    ),
    sep: str = typer.Option(",", "--sep", help="Delimiter, or 'whitespace'."),
    no_header: bool = typer.Option(
        False, "--no-header", help="The file has no header; columns are col1, col2, …"
    ),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the holdout validation chart as standalone HTML."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Fit BG/NBD, Pareto/NBD and Gamma-Gamma on a transactions file."""
    import ibis

    from loupe import models
    from loupe.warehouse import quiet_duckdb

    if time_unit not in ("day", "week", "month"):
        raise LoupeError(
            f"--time-unit must be day, week or month, not {time_unit!r}", where="--time-unit"
        )
    if plot is not None and holdout_end is None:
        raise LoupeError("--plot needs --holdout-end", where="--plot")
    cal_end = common.parse_date(calibration_end, "--calibration-end")
    hold_end = common.parse_date(holdout_end or None, "--holdout-end")
    if hold_end is not None and hold_end <= cal_end:
        raise LoupeError("--holdout-end must be after --calibration-end", where="--holdout-end")
    spec = models.SummarySpec(
        calibration_end=cal_end,
        customer_col="customer_id",
        date_col="ordered_at",
        amount_col="amount",
        time_unit=time_unit,  # type: ignore[arg-type]
        holdout_end=hold_end,
    )
    con = ibis.duckdb.connect()
    quiet_duckdb(con)
    table = models.read_transactions_file(
        con,
        transactions,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        sep=sep,
        header=not no_header,
        date_format=date_format,
    )
    expr = (
        models.calibration_holdout_summary(table, spec)
        if hold_end is not None
        else models.rfm_summary(table, spec)
    )
    try:
        summary = models.execute_summary(con, expr)
    except Exception as exc:
        raise LoupeError(
            f"cannot build the customer summary: {str(exc).splitlines()[0]}",
            where=f"{transactions}, columns {date_col}/{amount_col}",
            fix="check --date-format and that the amount column is numeric",
        ) from exc
    if len(summary) == 0:
        raise LoupeError(
            "no purchases on or before the calibration end",
            where=str(transactions),
            fix="check --calibration-end and --date-col",
        )
    fitted = _fit_all(summary)
    doc: dict[str, Any] = {
        key: {k: v for k, v in entry.items() if k != "_model"} for key, entry in fitted.items()
    }
    doc["n_customers"] = len(summary)
    doc["time_unit"] = time_unit
    doc["calibration_end"] = cal_end
    holdout = None
    if hold_end is not None:
        holdout = _holdout(summary, fitted)
        doc["holdout"] = {
            "holdout_end": hold_end,
            "duration": holdout.attrs["duration_holdout"],
            "mae": holdout.attrs["mae"],
            "buckets": holdout.reset_index().to_dict(orient="records"),
        }
        if plot is not None:
            plot.write_text(
                models.holdout_chart_html(
                    holdout, ("actual", "bgnbd", "pareto_nbd"), title="CLV holdout validation"
                ),
                encoding="utf-8",
            )
    if as_json:
        common.print_json(doc)
    else:
        _print_tables(doc, fitted, holdout, plot)


@clv_app.command("score")
def score(
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Orders before this day count (default: the day after the last order).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Fit the CLV models on the project's orders and write clv_* columns to customer_features."""
    from loupe.models.clv_project import run_clv

    day = common.parse_date(as_of, "--as-of")
    wh = common.state.warehouse()
    try:
        with common.progress_bar(enabled=not as_json) as bar:
            report = run_clv(wh, day, progress=common.StepProgress(bar))
    finally:
        wh.close()
    if as_json:
        common.print_json(report)
        return
    out = common.out
    tm = report["transaction_model"]
    params = ", ".join(f"{k} = {v:.4g}" for k, v in report["params"][tm].items())
    spend = ", ".join(f"{k} = {v:.4g}" for k, v in report["params"]["gamma_gamma"].items())
    out.print(
        f"[bold]{report['scored']:,}[/] customers scored as of {report['as_of']} "
        f"with {report['version']} in {report['seconds']:.1f}s"
    )
    out.print(f"{tm}: {params}")
    out.print(f"gamma_gamma ({report['repeat_customers']:,} repeat customers): {spend}")
    out.print(
        f"CLV over {report['horizon_months']} months at {report['annual_discount_rate']:.0%} "
        f"a year: total {report['total_clv']:,.0f}, mean {report['mean_clv']:,.2f}"
    )


def _fit_all(summary: Any) -> dict[str, Any]:
    from loupe import models

    fitted: dict[str, Any] = {}
    for key, model_cls in (
        ("bgnbd", models.BetaGeoModel),
        ("pareto_nbd", models.ParetoNBDModel),
        ("gamma_gamma", models.GammaGammaModel),
    ):
        try:
            model = model_cls().fit(summary)
        except ValueError as exc:  # e.g. no repeat customers for Gamma-Gamma
            fitted[key] = {"error": str(exc)}
            continue
        fitted[key] = {
            **model.params_,
            "loglik": model.loglik_,
            "n_customers": model.n_customers_,
            "converged": model.converged_,
            "_model": model,
        }
    return fitted


def _holdout(summary: Any, fitted: dict[str, Any]) -> Any:
    from loupe import models

    table = None
    maes: dict[str, float] = {}
    for key in ("bgnbd", "pareto_nbd"):
        model = fitted[key].get("_model")
        if model is None:
            continue
        comp = models.holdout_comparison(model, summary)
        if table is None:
            table = comp[["n_customers", "actual"]].copy()
            table.attrs["duration_holdout"] = comp.attrs["duration_holdout"]
        table[key] = comp["predicted"]
        maes[key] = comp.attrs["mae_buckets"]
    assert table is not None
    table.attrs["mae"] = maes
    table.attrs["note"] = "Mean absolute error over buckets: " + ", ".join(
        f"{k} {v:.4f}" for k, v in maes.items()
    )
    return table


def _print_tables(
    doc: dict[str, Any], fitted: dict[str, Any], holdout: Any, plot: Path | None
) -> None:
    params = Table(
        title=f"CLV models ({doc['n_customers']} customers, time unit {doc['time_unit']})"
    )
    for col in ("model", "parameters", "log-likelihood", "customers fitted"):
        params.add_column(col)
    for key in ("bgnbd", "pareto_nbd", "gamma_gamma"):
        entry = doc[key]
        if "error" in entry:
            params.add_row(key, entry["error"], "", "")
            continue
        model = fitted[key]["_model"]
        text = ", ".join(f"{n} = {entry[n]:.4g}" for n in model.param_names)
        params.add_row(key, text, f"{entry['loglik']:.2f}", str(entry["n_customers"]))
    common.out.print(params)
    if holdout is not None:
        table = Table(
            title=f"Holdout: mean repeat transactions per customer ({holdout.attrs['duration_holdout']:.4g} {doc['time_unit']}s)"
        )
        for col in ("calibration repeats", "customers", "actual", "bgnbd", "pareto_nbd"):
            table.add_column(col, justify="right")
        for bucket, row in holdout.iterrows():
            table.add_row(
                str(bucket),
                str(int(row["n_customers"])),
                *(f"{row[c]:.3f}" for c in ("actual", "bgnbd", "pareto_nbd")),
            )
        common.out.print(table)
        for key, mae in holdout.attrs["mae"].items():
            common.out.print(f"mean absolute error over buckets, {key}: {mae:.4f}")
        if plot is not None:
            common.out.print(f"chart written to {plot}")


def register(app: typer.Typer) -> None:
    """Add the ``clv`` sub-app to the root app."""
    app.add_typer(clv_app, name="clv")
