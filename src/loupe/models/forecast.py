"""Demand forecast: daily or weekly sales per product category, with a rolling-origin backtest.

Sales (line revenue in the base currency, and units) per category and period are summed in the
warehouse from ``order_items``, ``orders`` and ``products``; only that small table (categories
x periods) reaches pandas.  The models are Nixtla's ``statsforecast`` (AutoETS, AutoARIMA; Hyndman
& Khandakar 2008, Hyndman et al. 2002) with a **seasonal-naive** baseline: a model only earns its
place if it beats "same as one season ago".

Season length is 7 for daily and 52 for weekly sales, used only when the shortest backtest
training window holds two full seasons; otherwise the models are fitted without a season (and
the baseline becomes the naive "same as last period").

Backtest: ``backtest_windows`` origins, each ``horizon`` periods apart, the last one ``horizon``
periods before the end of the data (statsforecast's ``cross_validation`` refits at each origin).
Per category, metric and model it reports MAE, RMSE, sMAPE (%), MASE (errors scaled by the
in-sample seasonal-naive MAE of each training window; Hyndman & Koehler 2006), the share of
actuals inside the ``level`` % prediction interval and the MAE relative to the baseline.  The
model with the lowest backtest MAE (the baseline included) is refitted on all the data and its
forecast, with prediction intervals, is written to ``demand_forecasts``.

Only whole periods are used: a first or last week cut by the data's start or end would look
like a collapse in demand.  Only the most recent year of days (three years of weeks) plus the
backtest windows is fitted on, unless ``max_history`` says otherwise: older sales rarely help
these models, and AutoARIMA's time grows quickly with the series length.  Sales are never negative, so forecasts and interval bounds are
clipped at 0.
"""

from __future__ import annotations

import html
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _

from loupe.errors import LoupeError
from loupe.models.settings import FORECAST_MODELS, ForecastSettings
from loupe.warehouse import Warehouse, stage_run, utcnow
from loupe.warehouse.schemas import DEMAND_FORECASTS

Progress = Callable[[str, int, int], None]
Freq = Literal["D", "W"]
Metric = Literal["revenue", "units"]

FORECASTS = "demand_forecasts"
BASELINE = "SeasonalNaive"
SEASON: dict[str, int] = {"D": 7, "W": 52}
PERIOD_DAYS: dict[str, int] = {"D": 1, "W": 7}
SF_FREQ: dict[str, str] = {"D": "D", "W": "W-MON"}
MIN_TRAIN = 10
"""Periods the shortest backtest training window needs."""
DEFAULT_HISTORY: dict[str, int] = {"D": 365, "W": 156}
NOT_PURCHASE = ("cancelled", "canceled", "refunded", "returned")
_SEP = "\x1f"


@dataclass(frozen=True)
class ForecastSpec:
    """What a forecast run needs.

    Parameters
    ----------
    end
        First day *not* used (the as-of day); periods must end before it.
    freq, horizon, models, metrics, backtest_windows, level
        As in ``[models.forecast]``.
    """

    end: date
    freq: Freq = "W"
    horizon: int = 8
    models: tuple[str, ...] = FORECAST_MODELS
    metrics: tuple[Metric, ...] = ("revenue", "units")
    backtest_windows: int = 3
    level: int = 80
    max_history: int | None = None
    not_purchase_statuses: tuple[str, ...] = NOT_PURCHASE

    @classmethod
    def from_settings(
        cls,
        settings: ForecastSettings,
        end: date,
        not_purchase_statuses: Sequence[str] = NOT_PURCHASE,
    ) -> ForecastSpec:
        return cls(
            end=end,
            freq=settings.freq,
            horizon=settings.horizon,
            models=tuple(settings.models),
            metrics=tuple(settings.metrics),
            backtest_windows=settings.backtest_windows,
            level=settings.level,
            max_history=settings.max_history,
            not_purchase_statuses=tuple(s.lower() for s in not_purchase_statuses),
        )

    @property
    def cutoff(self) -> datetime:
        return datetime.combine(self.end, dtime())

    @property
    def history_periods(self) -> int:
        """Most recent periods kept (``max_history``, else a year of days or three of weeks,
        plus the backtest windows)."""
        if self.max_history is not None:
            return self.max_history
        return DEFAULT_HISTORY[self.freq] + self.backtest_windows * self.horizon


# -- sales in the engine -----------------------------------------------------------------------
def sales_by_period(
    orders: ir.Table, order_items: ir.Table, products: ir.Table, spec: ForecastSpec
) -> ir.Table:
    """``category, period_start, revenue, units`` per category and day (or Monday-weeks).

    Revenue is quantity x unit price - line discount (at least 0), converted to the base
    currency with the order's ``amount_base / amount``.  Every purchase counts, guests' too.
    """
    status = orders.status.lower().strip().fill_null("")
    o = orders.filter(
        orders.ordered_at < ibis.literal(spec.cutoff, type="timestamp"),
        ~status.isin(list(spec.not_purchase_statuses)),
    )
    if "amount_base" in o.columns:
        fx = ibis.ifelse((o.amount > 0) & o.amount_base.notnull(), o.amount_base / o.amount, 1.0)
    else:
        fx = ibis.literal(1.0)
    o = o.select("order_id", day=o.ordered_at.date(), fx=fx.cast("float64"))
    disc = order_items.discount.fill_null(0.0)
    line = order_items.quantity.cast("float64") * order_items.unit_price.fill_null(0.0) - disc
    items = order_items.select(
        "order_id", "product_id", line=ibis.greatest(line, 0.0), units=order_items.quantity
    )
    prods = products.select("product_id", category=products.category)
    j = items.join(o, "order_id").left_join(prods, "product_id")
    period = j.day if spec.freq == "D" else j.day.truncate("W").cast("date")
    rows = j.select(
        category=j.category.fill_null("unknown"),
        period_start=period,
        revenue=j.line * j.fx,
        units=j.units.fill_null(0).cast("float64"),
    )
    return rows.group_by(["category", "period_start"]).aggregate(
        revenue=_.revenue.sum(), units=_.units.sum()
    )


def complete_grid(sales: pd.DataFrame, first_day: date, spec: ForecastSpec) -> pd.DataFrame:
    """Long ``category, metric, period_start, y`` over every whole period, zeros filled in.

    ``first_day`` is the first day with data; a period starting before it, or ending on or after
    ``spec.end``, is partial and left out.  Only the last ``spec.history_periods`` are kept.
    """
    step = PERIOD_DAYS[spec.freq]
    start = first_day
    if spec.freq == "W":
        start = first_day + timedelta(days=(7 - first_day.weekday()) % 7)
    last = spec.end - timedelta(days=step)  # the last period that ends before spec.end
    if spec.freq == "W":
        last -= timedelta(days=last.weekday())
    periods = pd.date_range(start, max(last, start - timedelta(days=step)), freq=f"{step}D")
    periods = periods[-spec.history_periods :]
    cats = sorted(str(c) for c in sales["category"].unique()) if len(sales) else []
    grid = pd.MultiIndex.from_product([pd.Index(cats), periods], names=["category", "ds"])
    s = sales.assign(ds=pd.to_datetime(sales["period_start"])).set_index(["category", "ds"])
    wide = s[["revenue", "units"]].reindex(grid).fillna(0.0).reset_index()
    long = wide.melt(id_vars=["category", "ds"], var_name="metric", value_name="y")
    long = long[long["metric"].isin(spec.metrics)]
    return long.sort_values(["category", "metric", "ds"]).reset_index(drop=True)


# -- models (statsforecast) --------------------------------------------------------------------
def season_length(spec: ForecastSpec, periods: int) -> int:
    """7 (daily) or 52 (weekly) when the shortest training window holds two seasons, else 1."""
    shortest = periods - spec.backtest_windows * spec.horizon
    m = SEASON[spec.freq]
    return m if shortest >= 2 * m else 1


def _models(spec: ForecastSpec, m: int, periods: int) -> list[Any]:
    """The candidates and the baseline.  AutoARIMA approximates the likelihood during its
    order search on long or long-seasonal series, as R's ``auto.arima`` does by default
    (``n > 150`` or ``m > 12``): an exact search on 160 weeks with ``m = 52`` took 40 s."""
    from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive

    out: list[Any] = []
    for name in spec.models:
        if name == "AutoARIMA":
            out.append(AutoARIMA(season_length=m, approximation=periods > 150 or m > 12))
        else:
            out.append(AutoETS(season_length=m))
    return [*out, SeasonalNaive(m)]


def _engine(spec: ForecastSpec, m: int, periods: int) -> Any:
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    return StatsForecast(
        models=_models(spec, m, periods),
        freq=SF_FREQ[spec.freq],
        n_jobs=1,
        fallback_model=SeasonalNaive(m),
    )


def _as_sf(series: pd.DataFrame) -> pd.DataFrame:
    uid = series["category"].astype(str) + _SEP + series["metric"].astype(str)
    return pd.DataFrame({"unique_id": uid, "ds": series["ds"], "y": series["y"].astype(float)})


def _split_uid(frame: pd.DataFrame) -> pd.DataFrame:
    parts = frame["unique_id"].astype(str).str.split(_SEP, n=1, expand=True)
    return frame.assign(category=parts[0], metric=parts[1]).drop(columns="unique_id")


def _model_names(spec: ForecastSpec) -> list[str]:
    return [*spec.models, BASELINE]


@dataclass
class Backtest:
    """Rolling-origin backtest of every model on every series."""

    errors: pd.DataFrame
    """Per ``category, metric, model``: ``mae, rmse, smape, mase, coverage, relative_mae``."""
    best: dict[tuple[str, str], str]
    """The model with the lowest MAE per ``(category, metric)``."""
    season_length: int
    points: pd.DataFrame = field(repr=False)
    """Every backtest forecast: ``category, metric, ds, cutoff, y, model, forecast, low, high``."""


def _check_history(series: pd.DataFrame, spec: ForecastSpec) -> int:
    periods = int(series.groupby(["category", "metric"]).size().max()) if len(series) else 0
    need = spec.backtest_windows * spec.horizon + MIN_TRAIN
    if periods < need:
        unit = "days" if spec.freq == "D" else "weeks"
        raise LoupeError(
            f"not enough sales history for the backtest: {periods} whole {unit}, need {need} "
            f"({spec.backtest_windows} windows of {spec.horizon} plus {MIN_TRAIN} to train on)",
            where="[models.forecast]",
            fix="use a shorter horizon, fewer backtest_windows, or freq = 'D'",
        )
    return periods


def backtest(series: pd.DataFrame, spec: ForecastSpec) -> Backtest:
    """Rolling-origin backtest of ``series`` (:func:`complete_grid`'s long frame)."""
    periods = _check_history(series, spec)
    m = season_length(spec, periods)
    df = _as_sf(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = _engine(spec, m, periods).cross_validation(
            df=df,
            h=spec.horizon,
            step_size=spec.horizon,
            n_windows=spec.backtest_windows,
            level=[spec.level],
        )
    cv = _split_uid(cv.reset_index() if "unique_id" not in cv.columns else cv)
    points = _long_points(cv, spec)
    scale = _mase_scale(series, cv[["category", "metric", "cutoff"]].drop_duplicates(), m)
    errors = _errors(points.merge(scale, on=["category", "metric", "cutoff"]))
    best = _best(errors)
    return Backtest(errors=errors, best=best, season_length=m, points=points)


def _long_points(cv: pd.DataFrame, spec: ForecastSpec) -> pd.DataFrame:
    frames = []
    for name in _model_names(spec):
        lo, hi = f"{name}-lo-{spec.level}", f"{name}-hi-{spec.level}"
        frames.append(
            pd.DataFrame(
                {
                    "category": cv["category"],
                    "metric": cv["metric"],
                    "ds": cv["ds"],
                    "cutoff": cv["cutoff"],
                    "y": cv["y"],
                    "model": name,
                    "forecast": cv[name].clip(lower=0),
                    "low": cv[lo].clip(lower=0) if lo in cv else np.nan,
                    "high": cv[hi].clip(lower=0) if hi in cv else np.nan,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _mase_scale(series: pd.DataFrame, cutoffs: pd.DataFrame, m: int) -> pd.DataFrame:
    """In-sample MAE of the seasonal-naive forecast on each training window."""
    rows = []
    for (cat, metric), g in series.groupby(["category", "metric"]):
        y = g.sort_values("ds")
        for cutoff in cutoffs[(cutoffs.category == cat) & (cutoffs.metric == metric)]["cutoff"]:
            train = y.loc[y["ds"] <= cutoff, "y"].to_numpy(dtype=float)
            diffs = np.abs(train[m:] - train[:-m]) if len(train) > m else np.array([])
            scale = float(diffs.mean()) if len(diffs) else np.nan
            rows.append((cat, metric, cutoff, scale if scale > 0 else np.nan))
    return pd.DataFrame(rows, columns=["category", "metric", "cutoff", "scale"])


def _errors(points: pd.DataFrame) -> pd.DataFrame:
    e = points["y"] - points["forecast"]
    denom = points["y"].abs() + points["forecast"].abs()
    p = points.assign(
        ae=e.abs(),
        se=e * e,
        sape=np.where(denom > 0, 2 * e.abs() / denom.where(denom > 0, 1), 0.0),
        sae=e.abs() / points["scale"],
        inside=(points["low"] <= points["y"]) & (points["y"] <= points["high"]),
    )
    g = p.groupby(["category", "metric", "model"], sort=True)
    out = g.agg(
        mae=("ae", "mean"),
        rmse=("se", "mean"),
        smape=("sape", "mean"),
        mase=("sae", "mean"),
        coverage=("inside", "mean"),
        points=("ae", "size"),
    ).reset_index()
    out["rmse"] = np.sqrt(out["rmse"])
    out["smape"] = 100 * out["smape"]
    base = out[out["model"] == BASELINE][["category", "metric", "mae"]]
    ref = out.merge(base.rename(columns={"mae": "ref"}), on=["category", "metric"], how="left")
    base_mae = ref["ref"].to_numpy(dtype=float)
    relative = np.where(
        base_mae > 0, out["mae"].to_numpy() / np.where(base_mae > 0, base_mae, 1), np.nan
    )
    out["relative_mae"] = pd.Series(relative, index=out.index)
    return out


def _best(errors: pd.DataFrame) -> dict[tuple[str, str], str]:
    best = {}
    for (cat, metric), g in errors.groupby(["category", "metric"]):
        g = g.assign(order=g["model"].map(lambda m: m == BASELINE))  # a tie goes to a model
        best[(str(cat), str(metric))] = str(g.sort_values(["mae", "order"]).iloc[0]["model"])
    return best


def forecast(series: pd.DataFrame, spec: ForecastSpec, bt: Backtest) -> pd.DataFrame:
    """Refit on all of ``series`` and forecast ``horizon`` periods with the best models.

    Returns ``category, metric, period_start, model, forecast, low, high``.
    """
    df = _as_sf(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        periods = int(series.groupby(["category", "metric"]).size().max())
        engine = _engine(spec, bt.season_length, periods)
        fc = engine.forecast(df=df, h=spec.horizon, level=[spec.level])
    fc = _split_uid(fc.reset_index() if "unique_id" not in fc.columns else fc)
    rows = []
    for (cat, metric), g in fc.groupby(["category", "metric"], sort=True):
        name = bt.best[(str(cat), str(metric))]
        lo, hi = f"{name}-lo-{spec.level}", f"{name}-hi-{spec.level}"
        rows.append(
            pd.DataFrame(
                {
                    "category": cat,
                    "metric": metric,
                    "period_start": pd.to_datetime(g["ds"]).dt.date,
                    "model": name,
                    "forecast": g[name].clip(lower=0).to_numpy(),
                    "low": g[lo].clip(lower=0).to_numpy(),
                    "high": g[hi].clip(lower=0).to_numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


# -- on a warehouse ----------------------------------------------------------------------------
def forecast_spec(wh: Warehouse, **overrides: Any) -> ForecastSpec:
    """The project's :class:`ForecastSpec` (end: the day after the latest order), with
    ``overrides`` (``freq``, ``horizon``, ``metrics`` …) for the ones not ``None``."""
    from loupe.profile.settings import profile_settings
    from loupe.profile.tables import default_as_of

    statuses = profile_settings(wh.settings).not_purchase_statuses
    spec = ForecastSpec.from_settings(wh.settings.models.forecast, default_as_of(wh), statuses)
    chosen = {k: v for k, v in overrides.items() if v is not None}
    if "metrics" in chosen:
        chosen["metrics"] = tuple(chosen["metrics"])
    return replace(spec, **chosen)


def sales_history(wh: Warehouse, spec: ForecastSpec) -> pd.DataFrame:
    """:func:`complete_grid` of the warehouse's sales."""
    orders, items, products = (wh.table(t) for t in ("orders", "order_items", "products"))
    sales = wh.to_pandas(sales_by_period(orders, items, products, spec))
    first = wh.scalar(orders.ordered_at.min())
    if first is None or first != first:
        raise LoupeError(
            "there are no orders to forecast from",
            where="orders",
            fix="load orders first (`loupe ingest`, `loupe run`)",
        )
    if wh.count(items) == 0:  # sales per category come from the lines, not from orders
        raise LoupeError(
            "there are no order lines to forecast from: sales per category are read from "
            "order_items",
            where="order_items",
            fix='declare a source of order lines (table = "order_items") and run `loupe run`',
        )
    first_day = pd.Timestamp(first).date()
    return complete_grid(sales, first_day, spec)


def _store(wh: Warehouse, rows: pd.DataFrame, spec: ForecastSpec, at: datetime) -> None:
    """Replace the stored rows of this frequency and these metrics with ``rows``."""
    new = rows.assign(freq=spec.freq, computed_at=at)
    new = ibis.memtable(new[list(DEMAND_FORECASTS)], schema=ibis.schema(DEMAND_FORECASTS))
    old = wh.table(FORECASTS) if wh.exists(FORECASTS) else None
    if old is not None and "metric" in old.columns:
        keep = old.filter(~((old.freq == spec.freq) & old.metric.isin(list(spec.metrics))))
        keep = keep.select(*DEMAND_FORECASTS).cast(ibis.schema(DEMAND_FORECASTS))
        staged = wh.scratch("forecast_work_rows", keep.union(new))
        wh.replace(FORECASTS, staged)
        wh.drop("forecast_work_rows")
    else:
        wh.replace(FORECASTS, new)


@dataclass
class ForecastRun:
    """What :func:`forecast_run` computed (the backtest and the stored forecast)."""

    spec: ForecastSpec
    history: pd.DataFrame
    backtest: Backtest
    forecast: pd.DataFrame
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``loupe models forecast``; ``best`` is for the first metric."""
        errors = self.backtest.errors.replace({np.nan: None})
        first = self.spec.metrics[0]
        by_metric: dict[str, dict[str, str]] = {}
        for (cat, metric), model in sorted(self.backtest.best.items()):
            by_metric.setdefault(metric, {})[cat] = model
        fc = self.forecast.assign(period_start=self.forecast["period_start"].astype(str))
        return {
            "freq": self.spec.freq,
            "horizon": self.spec.horizon,
            "level": self.spec.level,
            "end": self.spec.end,
            "metrics": list(self.spec.metrics),
            "season_length": self.backtest.season_length,
            "backtest_windows": self.spec.backtest_windows,
            "backtest": [_clean(r) for r in errors.to_dict("records")],
            "best": by_metric.get(first, {}),
            "best_by_metric": by_metric,
            "forecast": [_clean(r) for r in fc.to_dict("records")],
            "seconds": self.seconds,
        }


def _clean(row: dict[Any, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        k = str(k)
        if isinstance(v, float | np.floating):
            out[k] = None if not math.isfinite(v) else round(float(v), 6)
        elif isinstance(v, np.integer):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def forecast_run(
    wh: Warehouse, spec: ForecastSpec, progress: Progress | None = None
) -> ForecastRun:
    """Sales history, backtest, forecast with the best models, stored in ``demand_forecasts``."""
    start = time.perf_counter()
    step = "demand forecast"
    if progress:
        progress(step, 0, 3)
    inputs = ["orders", "order_items", "products"]
    with stage_run(wh, "forecast", inputs, [FORECASTS]) as run:
        history = sales_history(wh, spec)
        run.rows_in = len(history)
        if progress:
            progress(step, 1, 3)
        bt = backtest(history, spec)
        if progress:
            progress(step, 2, 3)
        fc = forecast(history, spec, bt)
        _store(wh, fc, spec, utcnow())
        run.rows_out = len(fc)
    if progress:
        progress(step, 3, 3)
    return ForecastRun(spec, history, bt, fc, round(time.perf_counter() - start, 3))


def run_forecast(wh: Warehouse, progress: Progress | None = None) -> dict[str, Any]:
    """The ``loupe run`` step: forecast with ``[models.forecast]``; return the JSON summary."""
    return forecast_run(wh, forecast_spec(wh), progress).to_dict()


# -- chart -------------------------------------------------------------------------------------
def forecast_chart_html(run: ForecastRun, *, history_periods: int | None = None) -> str:
    """A standalone HTML page: per category and metric, recent sales, the forecast and its
    interval as inline SVG (no JavaScript, nothing fetched from the network)."""
    spec = run.spec
    keep = history_periods or max(4 * spec.horizon, 3 * run.backtest.season_length, 24)
    e = run.backtest.errors
    relative = {
        (str(c), str(m), str(mod)): float(r)
        for c, m, mod, r in zip(
            e["category"], e["metric"], e["model"], e["relative_mae"], strict=True
        )
    }
    panels = []
    for (cat, metric), hist in run.history.groupby(["category", "metric"], sort=True):
        hist = hist.sort_values("ds").tail(keep)
        fc = run.forecast[(run.forecast.category == cat) & (run.forecast.metric == metric)]
        model = run.backtest.best[(str(cat), str(metric))]
        rel = relative[(str(cat), str(metric), model)]
        note = f"best: {model}" + (f", MAE {rel:.2f}x seasonal naive" if rel == rel else "")
        panels.append(_panel(f"{cat} · {metric}", note, hist, fc))
    title = f"Demand forecast ({'daily' if spec.freq == 'D' else 'weekly'}, {spec.level}% interval)"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body style='font-family:sans-serif'>"
        f"<h2>{html.escape(title)}</h2><p>Sales before {spec.end.isoformat()}; "
        "grey: sales, blue: forecast, band: prediction interval.</p>"
        + "".join(panels)
        + "</body></html>"
    )


def _panel(title: str, note: str, hist: pd.DataFrame, fc: pd.DataFrame) -> str:
    width, height, pad = 720, 260, 56
    xs = list(pd.to_datetime(hist["ds"])) + list(pd.to_datetime(fc["period_start"]))
    values = [*hist["y"], *fc["high"], *fc["forecast"]]
    top = max([float(v) for v in values if v == v] + [1.0]) * 1.1
    n = max(len(xs) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad + i * (width - 2 * pad) / n, height - pad - v / top * (height - 2 * pad)

    h = len(hist)
    past = " ".join("{:.1f},{:.1f}".format(*xy(i, v)) for i, v in enumerate(hist["y"]))
    ahead = [xy(h + i, v) for i, v in enumerate(fc["forecast"])]
    lows = [xy(h + i, v) for i, v in enumerate(fc["low"])]
    highs = [xy(h + i, v) for i, v in enumerate(fc["high"])]
    band = " ".join(f"{x:.1f},{y:.1f}" for x, y in highs + lows[::-1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-size="11">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#333"/>',
        f'<polygon points="{band}" fill="#1f77b4" fill-opacity="0.2" stroke="none"/>',
        f'<polyline fill="none" stroke="#777" stroke-width="1.5" points="{past}"/>',
        '<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in ahead)
        + '"/>',
    ]
    for k in range(5):
        v = top * k / 4
        _, y = xy(0, v)
        parts.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
    for i in (0, h - 1, len(xs) - 1):
        if 0 <= i < len(xs):
            x, _ = xy(i, 0)
            label = xs[i].date().isoformat()
            parts.append(
                f'<text x="{x:.1f}" y="{height - pad + 16}" text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3><p>{html.escape(note)}</p>" + "".join(parts)
