"""The analytics verbs print one JSON document with the contract keys."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from loupe.errors import LoupeError
from tests.analytics.conftest import analytics_app, canonical


@pytest.fixture
def app(settings, monkeypatch):
    T0 = datetime(2024, 1, 1)
    ev = [
        {"event_id": f"e{i}", "anonymous_id": a, "session_id": a, "event": e,
         "ts": T0 + timedelta(minutes=i)}
        for i, (a, e) in enumerate([("a", "View"), ("a", "Buy"), ("b", "View"), ("c", "View")])
    ]  # fmt: skip
    lines = [
        {"order_id": o, "source": "s", "line_no": i, "product_id": p, "quantity": 1}
        for i, (o, p) in enumerate(
            [("o1", "x"), ("o1", "y"), ("o2", "x"), ("o2", "y"), ("o3", "x")]
        )
    ]
    return analytics_app(
        settings,
        monkeypatch,
        events=canonical("events", ev),
        order_items=canonical("order_items", lines),
    )


def _run(app, *args):
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_funnel_and_basket_contract(app):
    doc = _run(app, "funnel", "--steps", "View,Buy", "--window", "7d", "--json")
    assert [(s["event"], s["count"]) for s in doc["steps"]] == [("View", 3), ("Buy", 1)]
    doc = _run(app, "funnel", "--steps", "View,Buy", "--dropoff", "1", "--json")
    assert sorted(doc["dropoff"]["people"]) == ["b", "c"]
    doc = _run(app, "basket", "--min-support", "0.5", "--min-confidence", "0.6", "--json")
    rules = {(tuple(r["antecedents"]), tuple(r["consequents"])): r for r in doc["rules"]}
    assert set(rules) == {(("x",), ("y",)), (("y",), ("x",))}
    assert rules[(("y",), ("x",))]["conviction"] is None  # confidence 1: infinite
    assert set(rules[(("x",), ("y",))]) >= {
        "support",
        "confidence",
        "lift",
        "leverage",
        "conviction",
    }


def test_retention_and_paths(app):
    doc = _run(app, "retention", "--period", "week", "--json")
    assert doc["cohorts"][0]["size"] == 3 and doc["cohorts"][0]["retention"][0] == 1.0
    doc = _run(app, "paths", "--start", "View", "--json")
    assert {p["path"]: p["count"] for p in doc["paths"]} == {"Buy > (end)": 1, "(end)": 2}


def test_bought_together_text_json_and_a_missing_item(app):
    doc = _run(app, "basket", "--bought-together", "x", "--json")
    assert [(r["other"], r["count"]) for r in doc["bought_together"]] == [("y", 2)]
    res = CliRunner().invoke(app, ["basket", "--bought-together", "nope"])
    assert res.exit_code == 0 and "'nope' shares no basket" in res.output
    # the shell hands the next flag over as the value: an error, not an item called --json
    res = CliRunner().invoke(app, ["basket", "--bought-together", "--json"])
    assert isinstance(res.exception, LoupeError)  # the loupe entry point prints it, no traceback
    assert "the item is missing" in str(res.exception)


def test_retention_shows_the_periods_that_fit_whole(settings, monkeypatch):
    """At 80 columns a retention grid of 20 daily periods cut every cell (``1…``); it now
    shows the periods that fit whole and names those left out.  Person a comes every day,
    b on days 0 and 5: period 5 keeps both, the others one of two."""
    from loupe.cli import common

    t0 = datetime(2024, 1, 1, 9)
    days = [("a", d) for d in range(20)] + [("b", 0), ("b", 5)]
    ev = [
        {"event_id": f"e{i}", "anonymous_id": p, "event": "View", "ts": t0 + timedelta(days=d)}
        for i, (p, d) in enumerate(days)
    ]
    app = analytics_app(settings, monkeypatch, events=canonical("events", ev))
    monkeypatch.setattr(common.out, "width", 80)
    res = CliRunner().invoke(app, ["retention", "--period", "day", "--max-periods", "30"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 and "…" not in line for line in lines)
    header = next(line for line in lines if line.lstrip("│ ").startswith("cohort"))
    periods = header.replace("│", " ").split()[2:]
    row = next(line for line in lines if "2024-01-01" in line).replace("│", " ").split()
    assert row[:2] == ["2024-01-01", "2"] and 5 < len(periods) < 20
    expected = ["100.0%", "50.0%", "50.0%", "50.0%", "50.0%", "100.0%"] + ["50.0%"] * 14
    assert periods == [str(p) for p in range(len(periods))]
    assert row[2:] == expected[: len(periods)]
    assert f"periods {len(periods)}-19 do not fit this terminal" in res.stdout
    monkeypatch.setattr(common.out, "width", 250)
    wide = CliRunner().invoke(app, ["retention", "--period", "day", "--max-periods", "30"]).stdout
    assert "do not fit" not in wide
    assert (
        next(line for line in wide.splitlines() if "2024-01-01" in line).split("│")[-2].strip()
        == "50.0%"
    )
