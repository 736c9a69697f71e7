"""``loupe clv fit`` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loupe.cli import clv
from loupe.cli.main import app, main

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow" / "CDNOW_sample.txt"
CDNOW_ARGS = [
    "clv", "fit", "--transactions", str(CDNOW), "--sep", "whitespace", "--no-header",
    "--customer-col", "col2", "--date-col", "col3", "--amount-col", "col5",
    "--date-format", "%Y%m%d", "--calibration-end", "1997-09-30",
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if "clv" not in {group.name for group in app.registered_groups}:
        clv.register(app)


def test_fit_json_on_cdnow() -> None:
    result = CliRunner().invoke(app, [*CDNOW_ARGS, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["bgnbd"]) >= {"r", "alpha", "a", "b", "loglik"}
    assert set(doc["pareto_nbd"]) >= {"r", "alpha", "s", "beta", "loglik"}
    assert set(doc["gamma_gamma"]) >= {"p", "q", "gamma"}
    assert doc["bgnbd"]["r"] == pytest.approx(0.243, abs=5e-4)
    assert doc["bgnbd"]["loglik"] == pytest.approx(-9582.4, abs=0.1)
    assert doc["pareto_nbd"]["loglik"] == pytest.approx(-9595.0, abs=0.1)
    assert doc["gamma_gamma"]["p"] == pytest.approx(6.25, abs=5e-3)


def test_csv_with_header_holdout_and_plot(tmp_path: Path) -> None:
    csv = tmp_path / "orders.csv"
    lines = ["cust,when,value"]
    for line in CDNOW.read_text().splitlines():
        _, cust, day, _, value = line.split()
        lines.append(f"{cust},{day[:4]}-{day[4:6]}-{day[6:]},{value}")
    csv.write_text("\n".join(lines))
    chart = tmp_path / "holdout.html"
    args = [
        "clv", "fit", "--transactions", str(csv), "--customer-col", "cust", "--date-col", "when",
        "--amount-col", "value", "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30",
        "--plot", str(chart), "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["bgnbd"]["a"] == pytest.approx(0.793, abs=5e-4)
    buckets = doc["holdout"]["buckets"]
    assert [b["bucket"] for b in buckets] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert doc["holdout"]["mae"]["bgnbd"] < 0.3
    assert "<svg" in chart.read_text()
    table = CliRunner().invoke(app, args[:-1])
    assert "bgnbd" in table.stdout and "7+" in table.stdout


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"--customer-col": "nope"}, "nope"),
        ({"--transactions": "missing.csv"}, "missing.csv"),
        ({"--calibration-end": "30/09/1997"}, "--calibration-end"),
    ],
)
def test_bad_input_is_a_clean_error(change, needle, capsys) -> None:
    args = list(CDNOW_ARGS)
    for option, value in change.items():
        args[args.index(option) + 1] = value
    code = main(args)
    captured = capsys.readouterr()
    assert code != 0
    assert needle in captured.err
    assert "Traceback" not in captured.err
