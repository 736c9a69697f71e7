"""Demand forecast: on series with planted weekly seasonality and trend, AutoETS and AutoARIMA
beat the seasonal-naive baseline and their intervals cover about the configured share; the
warehouse path sums sales correctly and stores the right rows."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from tests.conftest import make_settings
from tests.models.test_due import load_purchases

from loupe.errors import LoupeError
from loupe.models import forecast as F
from loupe.warehouse import Warehouse

START = date(2025, 1, 6)  # a Monday
DAYS = 112


def planted_daily(seed: int = 0, days: int = DAYS) -> pd.DataFrame:
    """Two categories: level + trend (2 and 4 units a day) + a weekly cycle (weekends high)
    + N(0, 4) noise, as whole units."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    weekly = np.array([-20, -15, -10, 0, 10, 30, 5])
    rows = []
    for cat, level, slope in (("tea", 150.0, 2.0), ("coffee", 300.0, 4.0)):
        y = level + slope * t + weekly[t % 7] + rng.normal(0, 4, days)
        rows.append(
            pd.DataFrame(
                {"category": cat, "ds": pd.date_range(START, periods=days), "units": np.rint(y)}
            )
        )
    return pd.concat(rows, ignore_index=True)


def as_series(daily: pd.DataFrame, metric: str = "units") -> pd.DataFrame:
    return pd.DataFrame(
        {"category": daily["category"], "metric": metric, "ds": daily["ds"], "y": daily["units"]}
    )


SPEC = F.ForecastSpec(
    end=START + timedelta(days=DAYS), freq="D", horizon=14, backtest_windows=3, metrics=("units",)
)


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, F.Backtest]:
    series = as_series(planted_daily())
    return series, F.backtest(series, SPEC)


def test_models_beat_seasonal_naive_on_planted_trend_and_season(planted) -> None:
    _, bt = planted
    assert bt.season_length == 7
    e = bt.errors.set_index(["category", "model"])
    for cat in ("tea", "coffee"):
        base = e.loc[(cat, F.BASELINE)]
        # seasonal naive misses a week of trend (14 or 28 units) on top of the noise
        assert base["mae"] > 12
        for model in ("AutoETS", "AutoARIMA"):
            row = e.loc[(cat, model)]
            assert row["mae"] < 0.3 * base["mae"]
            assert row["relative_mae"] == pytest.approx(row["mae"] / base["mae"])
            assert row["mase"] < base["mase"]
            assert row["points"] == 3 * 14
        assert bt.best[(cat, "units")] in ("AutoETS", "AutoARIMA")


def test_intervals_cover_about_the_configured_share(planted) -> None:
    _, bt = planted
    p = bt.points[bt.points["model"] != F.BASELINE]
    inside = ((p["low"] <= p["y"]) & (p["y"] <= p["high"])).mean()
    assert inside == pytest.approx(SPEC.level / 100, abs=0.1)  # 168 points
    assert (p["low"] <= p["forecast"]).all() and (p["forecast"] <= p["high"]).all()


def test_errors_match_a_hand_computation(planted) -> None:
    series, bt = planted
    p = bt.points[(bt.points.category == "tea") & (bt.points.model == "AutoETS")]
    e = p["y"] - p["forecast"]
    row = bt.errors.set_index(["category", "model"]).loc[("tea", "AutoETS")]
    assert row["mae"] == pytest.approx(e.abs().mean())
    assert row["rmse"] == pytest.approx(np.sqrt((e**2).mean()))
    smape = (2 * e.abs() / (p["y"].abs() + p["forecast"].abs())).mean() * 100
    assert row["smape"] == pytest.approx(smape)
    # MASE: scaled by the in-sample MAE of "same day last week" on each training window
    tea = series[series.category == "tea"].sort_values("ds")
    scaled = []
    for cutoff, g in p.groupby("cutoff"):
        y = tea.loc[tea.ds <= cutoff, "y"].to_numpy()
        scaled.append((g["y"] - g["forecast"]).abs() / np.abs(y[7:] - y[:-7]).mean())
    assert row["mase"] == pytest.approx(pd.concat(scaled).mean())
    # the backtest origins are horizon apart, the last one horizon before the end
    cutoffs = sorted(p["cutoff"].unique())
    assert [pd.Timestamp(c).date() for c in cutoffs] == [
        SPEC.end - timedelta(days=14 * k + 1) for k in (3, 2, 1)
    ]


def test_forecast_rows_follow_the_history(planted) -> None:
    series, bt = planted
    fc = F.forecast(series, SPEC, bt)
    assert len(fc) == 2 * 14
    for cat, g in fc.groupby("category"):
        assert g["period_start"].tolist() == [SPEC.end + timedelta(days=i) for i in range(14)]
        assert set(g["model"]) == {bt.best[(cat, "units")]}
        assert (g["low"] <= g["forecast"]).all() and (g["forecast"] <= g["high"]).all()
    # the planted trend continues: two weeks ahead of the last week's mean
    tea = fc[fc.category == "tea"]["forecast"].mean()
    planted_mean = 150 + 2 * (DAYS + 6.5)  # the weekly cycle averages 0
    assert tea == pytest.approx(planted_mean, rel=0.05)


def test_short_history_is_refused() -> None:
    series = as_series(planted_daily(days=40))
    with pytest.raises(LoupeError, match="not enough sales history"):
        F.backtest(series, SPEC)


def test_season_length_needs_two_seasons_of_training() -> None:
    weekly = F.ForecastSpec(end=START, freq="W", horizon=8, backtest_windows=3)
    assert F.season_length(weekly, 104) == 1  # 80 weeks to train on
    assert F.season_length(weekly, 128) == 52
    assert F.season_length(SPEC, DAYS) == 7
    assert F.season_length(SPEC, 50) == 1


def test_complete_grid_keeps_whole_weeks_and_fills_zeros() -> None:
    sales = pd.DataFrame(
        {
            "category": ["tea", "tea", "coffee"],
            "period_start": [date(2025, 1, 6), date(2025, 1, 20), date(2025, 1, 13)],
            "revenue": [10.0, 30.0, 5.0],
            "units": [1.0, 3.0, 1.0],
        }
    )
    spec = F.ForecastSpec(end=date(2025, 1, 30), freq="W", metrics=("revenue",))
    # data from Wednesday 1 January: the week of 30 December is partial, so is the one of 27
    grid = F.complete_grid(sales, date(2025, 1, 1), spec)
    tea = grid[grid.category == "tea"]
    assert [d.date() for d in tea["ds"]] == [date(2025, 1, 6), date(2025, 1, 13), date(2025, 1, 20)]
    assert tea["y"].tolist() == [10.0, 0.0, 30.0]
    assert grid[grid.category == "coffee"]["y"].tolist() == [0.0, 5.0, 0.0]
    assert set(grid["metric"]) == {"revenue"}
    # only the most recent periods are kept
    short = F.complete_grid(sales, date(2025, 1, 1), replace(spec, max_history=2))
    assert sorted({d.date() for d in short["ds"]}) == [date(2025, 1, 13), date(2025, 1, 20)]
    assert F.ForecastSpec(end=START, freq="D", horizon=7).history_periods == 365 + 3 * 7


# -- through the warehouse ---------------------------------------------------------------------
def orders_from(daily: pd.DataFrame) -> pd.DataFrame:
    """One order per day and category with ``units`` units at 2.5 each, plus a cancelled order
    that must not count."""
    o = daily.assign(customer_id="C1", day=daily["ds"].dt.date, quantity=daily["units"].astype(int))
    o = o.assign(unit_price=2.5, status="delivered")
    cancelled = o.head(5).assign(status="cancelled", quantity=1000)
    return pd.concat([o, cancelled], ignore_index=True)[
        ["customer_id", "category", "day", "quantity", "unit_price", "status"]
    ]


def test_sales_by_period_sums_lines_in_the_engine(tmp_path) -> None:
    daily = planted_daily()
    wh = Warehouse.open(make_settings(tmp_path))
    load_purchases(wh, orders_from(daily))
    spec = F.ForecastSpec(end=START + timedelta(days=DAYS), freq="W", metrics=("revenue", "units"))
    hist = F.sales_history(wh, spec)
    weekly = daily.assign(week=daily["ds"].dt.to_period("W-SUN").dt.start_time)
    expected = weekly.groupby(["category", "week"])["units"].sum()
    got = hist[hist.metric == "units"].set_index(["category", "ds"])["y"]
    assert got.to_dict() == {k: float(v) for k, v in expected.items()}
    revenue = hist[hist.metric == "revenue"].set_index(["category", "ds"])["y"]
    np.testing.assert_allclose(revenue.to_numpy(), 2.5 * got.to_numpy())
    wh.close()


def test_forecast_run_stores_the_best_models_rows(tmp_path) -> None:
    daily = planted_daily()
    wh = Warehouse.open(make_settings(tmp_path))
    load_purchases(wh, orders_from(daily))
    spec = F.forecast_spec(
        wh, freq="W", horizon=2, backtest_windows=2, metrics=["units"], models=("AutoETS",)
    )
    assert spec.end == START + timedelta(days=DAYS)  # the day after the latest order
    run = F.forecast_run(wh, spec)
    stored = wh.to_pandas(wh.table("demand_forecasts"))
    assert len(stored) == 2 * 2
    assert set(stored["freq"]) == {"W"} and set(stored["metric"]) == {"units"}
    for cat, g in stored.groupby("category"):
        assert sorted(pd.to_datetime(g["period_start"]).dt.date) == [
            spec.end + timedelta(days=7 * i) for i in range(2)
        ]
        assert set(g["model"]) == {run.backtest.best[(cat, "units")]}
    doc = run.to_dict()
    assert doc["best"] == {c: run.backtest.best[(c, "units")] for c in ("coffee", "tea")}
    assert {r["model"] for r in doc["backtest"]} == {"AutoETS", F.BASELINE}
    # a daily run adds its rows and keeps the weekly ones
    F.forecast_run(wh, replace(spec, freq="D", horizon=7))
    stored = wh.to_pandas(wh.table("demand_forecasts"))
    assert stored.groupby("freq").size().to_dict() == {"D": 2 * 7, "W": 2 * 2}
    html = F.forecast_chart_html(run)
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    wh.close()


@pytest.mark.slow
def test_company_weekly_forecast_through_the_warehouse(tmp_path) -> None:
    from tests.profile.company import company

    _, source, _ = company()
    source.con.raw_sql("CHECKPOINT")
    shutil.copy(source.settings.resolve(source.settings.warehouse.path), tmp_path / "loupe.duckdb")
    wh = Warehouse.open(
        make_settings(
            tmp_path, models={"forecast": {"metrics": ["revenue"], "models": ["AutoETS"]}}
        )
    )
    doc = F.run_forecast(wh)
    categories = {"apparel", "baby", "cosmetics", "electronics_accessories", "home", "snacks"}
    assert set(doc["best"]) == categories
    assert doc["freq"] == "W" and doc["horizon"] == 8 and doc["season_length"] == 1
    stored = wh.to_pandas(wh.table("demand_forecasts"))
    assert len(stored) == 6 * 8
    assert pd.to_datetime(stored["period_start"]).min().date() == date(2025, 12, 29)
    # the company's weekly sales are flat with Poisson-like noise: the forecast stays near the
    # recent level (weeks vary by ±40% at 1,000 customers and an ETS level may follow the last
    # weeks, hence the wide band) and the intervals cover most backtest weeks
    hist = F.sales_history(wh, F.forecast_spec(wh, metrics=["revenue"]))
    recent = hist[hist.ds >= hist.ds.max() - pd.Timedelta(weeks=12)].groupby("category")["y"].mean()
    ahead = stored.groupby("category")["forecast"].mean()
    ratio = ahead / recent
    assert ratio.between(0.5, 2.0).all(), ratio
    best = [r for r in doc["backtest"] if doc["best"][r["category"]] == r["model"]]
    assert np.mean([r["coverage"] for r in best]) >= 0.6
    wh.close()


def test_orders_without_lines_name_the_missing_lines(tmp_path) -> None:
    """Sales per category come from order lines: a project of orders alone was told it had
    '0 whole weeks' of history (it had two years of orders)."""
    wh = Warehouse.open(make_settings(tmp_path))
    load_purchases(wh, orders_from(planted_daily()))
    wh.replace("order_items", wh.table("order_items").limit(0))
    spec = F.ForecastSpec(end=START + timedelta(days=DAYS), freq="W", metrics=("units",))
    with pytest.raises(LoupeError, match="no order lines to forecast from"):
        F.sales_history(wh, spec)
    wh.close()
