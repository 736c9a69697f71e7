"""``loupe models due`` and ``loupe models forecast`` through the real CLI."""

from __future__ import annotations

import json
from datetime import date

import pytest
from tests.conftest import make_settings
from tests.models.test_due import AS_OF, load_purchases, planted_shop
from tests.models.test_forecast import orders_from, planted_daily

from loupe.cli.main import main
from loupe.warehouse import Warehouse

TOML = """[project]
name = "plan"

[models.due]
interval = 0.8

[models.forecast]
freq = "W"
horizon = 2
backtest_windows = 2
metrics = ["units"]
models = ["AutoETS"]
"""


@pytest.fixture
def due_project(tmp_path):
    (tmp_path / "loupe.toml").write_text(TOML, encoding="utf-8")
    history, _ = planted_shop(seed=3)
    with Warehouse.open(make_settings(tmp_path)) as wh:
        load_purchases(wh, history)
    return tmp_path


def run_json(capsys, *args: str) -> dict:
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_due_json_lists_who_is_due(due_project, capsys) -> None:
    p = str(due_project)
    # histories end 1-5 days before AS_OF, cadences are 20-40 days: due within 30 days
    doc = run_json(capsys, "-p", p, "models", "due", "--within", "30", "--json")
    assert doc["as_of"] == AS_OF.isoformat() and doc["within_days"] == doc["overdue_days"] == 30
    assert doc["count"] == len(doc["customers"]) > 0
    first = doc["customers"][0]
    assert set(first) >= {
        "customer_id", "category", "last_purchase", "expected_date", "low_date", "high_date",
        "basis", "days_until", "overdue",
    }  # fmt: skip
    for c in doc["customers"]:
        assert -30 <= c["days_until"] < 30 and c["high_date"] >= AS_OF.isoformat()
        assert c["overdue"] == (c["days_until"] < 0)
    days = [c["days_until"] for c in doc["customers"]]
    assert days == sorted(days)
    upcoming = run_json(
        capsys, "-p", p, "models", "due", "--within", "30", "--overdue", "0", "--json"
    )
    assert upcoming["overdue"] == 0 and upcoming["count"] == doc["count"] - doc["overdue"]
    # limits, categories and a look back in time
    few = run_json(
        capsys,
        "-p",
        p,
        "models",
        "due",
        "--within",
        "4w",
        "--limit",
        "3",
        "--category",
        "snacks",
        "--json",
    )
    assert len(few["customers"]) == 3 and {c["category"] for c in few["customers"]} == {"snacks"}
    back = run_json(capsys, "-p", p, "models", "due", "--as-of", "2025-05-01", "--json")
    assert back["as_of"] == "2025-05-01"
    again = run_json(capsys, "-p", p, "models", "due", "--json")
    assert again["as_of"] == AS_OF.isoformat()  # the stored list is untouched
    run_json(capsys, "-p", p, "models", "due", "--as-of", "2025-05-01", "--refresh", "--json")
    assert run_json(capsys, "-p", p, "models", "due", "--json")["as_of"] == "2025-05-01"


def test_due_table_and_errors(due_project, capsys) -> None:
    p = str(due_project)
    assert main(["-p", p, "models", "due", "--within", "30d", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "Due within 30 days of 2025-07-01" in out and "more (--limit, --json)" in out
    for args, message in (
        (["--within", "soon"], "cannot read the duration"),
        (["--within", "12h"], "whole number of days"),
        (["--within", "0d"], "--within must be at least 1 day, not '0d'"),
        (["--overdue", "-3d"], "cannot read the duration"),
        (["--as-of", "01/07/2025"], "must be a date"),
        (["--category", "tee"], "categories are: coffee, snacks"),
    ):
        code = main(["-p", p, "models", "due", *args, "--json"])
        captured = capsys.readouterr()
        assert code != 0 and message in captured.err, captured.err
        assert captured.out == "" and "Traceback" not in captured.err


def test_due_table_keeps_ids_and_dates_whole_at_80_columns(due_project, capsys, monkeypatch):
    """At 80 columns the seven-column table cut customer ids and every date (``C036f04…``,
    ``2025-10…``); a narrow table now leaves out the last purchase and wraps the interval
    with the basis, and a wide one has every column."""
    from loupe.cli import common

    p = str(due_project)
    due = run_json(capsys, "-p", p, "models", "due", "--within", "30", "--json")["customers"][:3]
    monkeypatch.setattr(common.out, "width", 80)
    assert main(["-p", p, "models", "due", "--within", "30", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    table = out.split("… and")[0].replace(" … ", "")  # the interval's own ellipsis aside
    assert "…" not in table and "last purchase" not in out
    for c in due:
        row = next(line for line in out.splitlines() if c["customer_id"] in line)
        cells = row.replace("│", " ").split()
        assert cells[:4] == [
            c["customer_id"],
            c["category"],
            c["expected_date"],
            str(c["days_until"]),
        ]
        assert c["low_date"] in row
    monkeypatch.setattr(common.out, "width", 250)
    assert main(["-p", p, "models", "due", "--within", "30", "--limit", "3"]) == 0
    wide = capsys.readouterr().out
    assert "last purchase" in wide and "basis" in wide
    assert all(f"{c['low_date']} … {c['high_date']}" in wide for c in due)


def test_forecast_json_html_and_table(tmp_path, capsys, monkeypatch) -> None:
    from loupe.cli import common

    (tmp_path / "loupe.toml").write_text(TOML, encoding="utf-8")
    with Warehouse.open(make_settings(tmp_path)) as wh:
        load_purchases(wh, orders_from(planted_daily()))
    chart = tmp_path / "forecast.html"
    p = str(tmp_path)
    doc = run_json(capsys, "-p", p, "models", "forecast", "--html", str(chart), "--json")
    assert (doc["freq"], doc["horizon"], doc["metrics"]) == ("W", 2, ["units"])
    assert set(doc["best"]) == {"coffee", "tea"}
    assert {(r["category"], r["model"]) for r in doc["backtest"]} == {
        (c, m) for c in ("coffee", "tea") for m in ("AutoETS", "SeasonalNaive")
    }
    assert set(doc["backtest"][0]) >= {"mae", "rmse", "smape", "mase", "coverage"}
    assert len(doc["forecast"]) == 4
    assert set(doc["forecast"][0]) >= {
        "category",
        "period_start",
        "model",
        "forecast",
        "low",
        "high",
    }
    assert chart.read_text(encoding="utf-8").count("<svg") == 2
    assert main(["-p", p, "models", "forecast", "--freq", "D", "--horizon", "7"]) == 0
    out = capsys.readouterr().out
    assert "Backtest" in out and "season length 7" in out and "Forecast (80% interval)" in out
    monkeypatch.setattr(common.out, "width", 80)  # a table per category rather than cut cells
    assert main(["-p", p, "models", "forecast", "--freq", "D", "--horizon", "7"]) == 0
    out = capsys.readouterr().out
    assert "season length 7: coffee" in out and "season length 7: tea" in out
    assert "…" not in out and "Forecast (80% interval)\n" in out  # this one fits whole
    code = main(["-p", p, "models", "forecast", "--freq", "M", "--json"])
    captured = capsys.readouterr()
    assert code != 0 and "--freq must be D or W" in captured.err and captured.out == ""
    with Warehouse.open(make_settings(tmp_path)) as wh:
        stored = wh.to_pandas(wh.table("demand_forecasts"))
    assert stored.groupby("freq").size().to_dict() == {"D": 14, "W": 4}
    assert date.fromisoformat(doc["forecast"][0]["period_start"]).weekday() == 0


def test_forecast_numbers_read_alike_down_a_column() -> None:
    """A column of units printed 204.00 beside 95 and 86.3; sales in the thousands carried
    cents that only widened the column."""
    from loupe.cli.models_plan import _fmt

    got = [_fmt(v) for v in (11736.42, 204.0, 95.0, 86.3, 9.756, 1.0, 0.7791, 0.13, None)]
    assert got == ["11,736", "204.00", "95.00", "86.30", "9.76", "1.00", "0.779", "0.13", "–"]
