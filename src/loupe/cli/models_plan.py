"""``loupe models due`` and ``loupe models forecast``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from loupe.cli import common
from loupe.cli.models import models_app
from loupe.errors import LoupeError
from loupe.rich_tables import whole_table, whole_tables_by


def _days(text: str, option: str = "--within", *, allow_zero: bool = False) -> int:
    from loupe.analytics.spec import parse_duration

    span = parse_duration(text, where=option)
    days = span.total_seconds() / 86400
    if days != int(days):
        raise LoupeError(
            f"{option} must be a whole number of days, not {text!r}",
            where=option,
            fix="write e.g. 14d, 2w or 30",
        )
    least = 0 if allow_zero else 1
    if days < least:  # `--within 0d` is a whole number, just too small
        raise LoupeError(
            f"{option} must be at least {least} day{'s' if least != 1 else ''}, not {text!r}",
            where=option,
            fix="write e.g. 14d, 2w or 30",
        )
    return int(days)


@models_app.command("due")
def due(
    within: str = typer.Option("14d", "--within", help="Window from the as-of day: 14d, 2w, 30."),
    overdue: str | None = typer.Option(
        None,
        "--overdue",
        help="Also list those whose expected date passed this long ago (default: --within; 0: "
        "upcoming only).",
    ),
    category: str | None = typer.Option(None, "--category", help="Only this product category."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Day to list for (YYYY-MM-DD); default: the stored computation."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Customers to print (default: all with --json, 50 otherwise)."
    ),
    refresh: bool = typer.Option(
        False, "--refresh", help="Recompute purchase_due (as of --as-of) and store it first."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Who is due to buy again: the expected next purchase falls within the window.

    Lists customers whose expected date falls in the window, soonest first, and those whose
    expected date passed within --overdue days while their interval is still open (flagged
    overdue).
    """
    from loupe.models.due import due_list

    days = _days(within)
    day = common.parse_date(as_of, "--as-of")
    shown = limit if limit is not None or as_json else 50
    wh = common.state.warehouse()
    with wh, common.progress_bar(not as_json) as bar:
        task = bar.add_task("due dates", total=None)
        doc = due_list(
            wh,
            days,
            overdue_days=None if overdue is None else _days(overdue, "--overdue", allow_zero=True),
            category=category,
            as_of=day,
            refresh=refresh,
            limit=shown,
        )
        bar.update(task, total=1, completed=1)
    if as_json:
        common.print_json(doc)
        return
    title = (
        f"Due within {days} days of {doc['as_of']}"
        + (f" in {category}" if category else "")
        + f": {doc['count']} ({doc['overdue']} overdue by up to {doc['overdue_days']} days)"
    )
    headers = ["customer", "category", "last purchase", "expected", "interval", "in days", "basis"]
    rows = [
        [
            c["customer_id"],
            c["category"],
            str(c["last_purchase"]),
            str(c["expected_date"]),
            f"{c['low_date']} … {c['high_date']}",
            f"{c['days_until']}" + (" overdue" if c["overdue"] else ""),
            c["basis"],
        ]
        for c in doc["customers"]
    ]
    table = whole_table(headers, rows, right=(5,), title=title)
    if table.whole_width > common.out.width:  # narrow: ids and dates whole, the rest wraps
        table = whole_table(
            ["customer", "category", "expected", "in days", "interval, basis"],
            [[r[0], r[1], r[3], r[5], f"{r[4]}, {r[6]}"] for r in rows],
            right=(3,),
            give_way=(4,),
            title=title,
        )
    common.out.print(table)
    if doc["count"] > len(doc["customers"]):
        common.out.print(f"… and {doc['count'] - len(doc['customers'])} more (--limit, --json)")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:  # sales in the thousands: the cents only widen the column
            return f"{v:,.0f}"
        # two decimals from 1 up, so that a column of units reads 95.00 and 204.00, not 95
        # and 204.00; ratios and errors below 1 keep three significant digits
        return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"
    return str(v)


@models_app.command("forecast")
def forecast(
    freq: str | None = typer.Option(None, "--freq", help="D (daily) or W (weekly)."),
    horizon: int | None = typer.Option(None, "--horizon", min=1, help="Periods ahead."),
    metric: list[str] = typer.Option(
        [], "--metric", help="revenue or units (repeatable; default from \\[models.forecast])."
    ),
    html_file: Path | None = typer.Option(
        None, "--html", help="Write a standalone HTML chart of sales and forecast."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Forecast sales per category: backtest AutoETS/AutoARIMA against a seasonal-naive
    baseline, then store the best model's forecast in demand_forecasts."""
    from loupe.models.forecast import forecast_chart_html, forecast_run, forecast_spec

    if freq is not None and freq.upper() not in ("D", "W"):
        raise LoupeError(f"--freq must be D or W, not {freq!r}", where="--freq")
    bad = [m for m in metric if m not in ("revenue", "units")]
    if bad:
        raise LoupeError(f"--metric must be revenue or units, not {bad[0]!r}", where="--metric")
    wh = common.state.warehouse()
    with wh, common.progress_bar(not as_json) as bar:
        spec = forecast_spec(
            wh,
            freq=freq.upper() if freq else None,
            horizon=horizon,
            metrics=list(dict.fromkeys(metric)) or None,
        )
        run = forecast_run(wh, spec, common.StepProgress(bar))
    doc = run.to_dict()
    if html_file is not None:
        html_file.write_text(forecast_chart_html(run), encoding="utf-8")
        doc["html"] = str(html_file)
    if as_json:
        common.print_json(doc)
        return
    unit = "days" if spec.freq == "D" else "weeks"
    best = {(c, m): model for m, per in doc["best_by_metric"].items() for c, model in per.items()}
    width = common.out.width
    backtest = [
        [
            r["category"],
            r["metric"],
            r["model"] + (" *" if best.get((r["category"], r["metric"])) == r["model"] else ""),
            _fmt(r["mae"]),
            _fmt(r["rmse"]),
            _fmt(r["smape"]),
            _fmt(r["mase"]),
            f"{100 * r['coverage']:.0f}%" if r["coverage"] is not None else "–",
            _fmt(r["relative_mae"]),
        ]
        for r in doc["backtest"]
    ]
    headers = ["category", "metric", "model", "MAE", "RMSE", "sMAPE %", "MASE", "covered"]
    title = (
        f"Backtest: {spec.backtest_windows} windows of {spec.horizon} {unit}, "
        f"season length {doc['season_length']}"
    )
    # a table per category when one table does not fit the terminal with every number whole
    for table in whole_tables_by(
        [*headers, "vs naive"], backtest, 0, width, right=range(3, 9), title=title
    ):
        common.out.print(table)
    common.out.print("* best model by backtest MAE, used for the forecast")
    forecasts = [
        [
            r["category"],
            r["metric"],
            str(r["period_start"]),
            r["model"],
            _fmt(r["forecast"]),
            _fmt(r["low"]),
            _fmt(r["high"]),
        ]
        for r in doc["forecast"]
    ]
    headers = ["category", "metric", "period", "model", "forecast", "low", "high"]
    title = f"Forecast ({spec.level}% interval)"
    for table in whole_tables_by(headers, forecasts, 0, width, right=range(4, 7), title=title):
        common.out.print(table)
    if html_file is not None:
        common.out.print(f"chart written to {html_file}")
