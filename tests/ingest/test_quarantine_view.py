"""``loupe quarantine``: rejected rows by source and reason, in line order, filtered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loupe.errors import NotFoundError
from loupe.ingest import ingest
from loupe.ingest.quarantine import quarantine_view
from loupe.warehouse import Warehouse
from tests.conftest import make_settings

HEADER = "order_no,account_id,order_time,total_amount,currency\n"
GOOD = "O{n},U{n},2024-03-05 10:00:00,{n},CNY\n"
BAD_LINES = {3: "O3,U3,2024-13-45 10:00:00,3,CNY\n", 10: "O10,U10,10\n", 11: "O11,U11,x,11,CNY,9\n"}


def _orders(path: Path, bad: dict[int, str]) -> None:
    """A CSV whose data line N (the header is line 1) is ``bad[N]`` or a good order."""
    lines = [HEADER] + [bad.get(n, GOOD.format(n=n)) for n in range(2, 13)]
    path.write_text("".join(lines), encoding="utf-8")


def _project(tmp_path: Path) -> Warehouse:
    (tmp_path / "events.jsonl").write_text(
        '{"event":"view","user":"u1","ts":"2024-03-05T10:00:00Z"}\n{"event":"view",\n',
        encoding="utf-8",
    )
    _orders(tmp_path / "orders_1.csv", BAD_LINES)
    sources = [
        {"name": "shop", "table": "orders", "format": "csv", "path": "orders_*.csv",
         "columns": {"order_id": "order_no", "user_id": "account_id", "ordered_at": "order_time",
                     "amount": "total_amount", "currency": "currency"}},
        {"name": "clicks", "table": "events", "format": "jsonl", "path": "events.jsonl",
         "columns": {"event": "event", "user_id": "user", "ts": "ts"}},
    ]  # fmt: skip
    return Warehouse.open(make_settings(tmp_path, sources=sources))


def test_rows_by_reason_in_line_order(tmp_path: Path) -> None:
    wh = _project(tmp_path)
    report = ingest(wh)
    view = quarantine_view(wh, limit=0)
    assert view["total"] == sum(s.quarantined for s in report.sources.values()) == 4
    assert [(r["source"], r["reason"], r["rows"]) for r in view["by_reason"]] == [
        ("clicks", "broken JSON", 1),
        ("shop", "unparseable ordered_at", 1),
        ("shop", "wrong number of fields", 2),
    ]
    shop = [r for r in view["rows"] if r["source"] == "shop"]
    # by line number: as text, ":10" and ":11" would come before ":3"
    assert [r["location"] for r in shop] == ["orders_1.csv:3", "orders_1.csv:10", "orders_1.csv:11"]
    assert [r["raw"] for r in shop] == [
        "O3,U3,2024-13-45 10:00:00,3,CNY",
        "O10,U10,10",
        "O11,U11,x,11,CNY,9",
    ]
    assert shop[0]["reason"] == "unparseable ordered_at: '2024-13-45 10:00:00'"

    two = quarantine_view(wh, limit=2)
    assert two["total"] == 4 and len(two["rows"]) == 2
    only = quarantine_view(wh, sources=["clicks"])
    assert only["total"] == 1 and only["rows"][0]["location"] == "events.jsonl:2"
    fields = quarantine_view(wh, reason="NUMBER OF")  # any case
    assert [r["location"] for r in fields["rows"]] == ["orders_1.csv:10", "orders_1.csv:11"]
    with pytest.raises(NotFoundError, match="'shops'") as err:
        quarantine_view(wh, sources=["shops"])
    assert "clicks, shop" in str(err.value)
    wh.close()


def test_latest_is_the_last_run_that_quarantined(tmp_path: Path) -> None:
    wh = _project(tmp_path)
    ingest(wh)
    _orders(tmp_path / "orders_2.csv", {5: "O5,U5,2024-03-05 10:00:00,-,CNY,extra\n"})
    second = ingest(wh)
    latest = quarantine_view(wh, latest=True)
    assert latest["batch"] == second.batch
    assert [r["location"] for r in latest["rows"]] == ["orders_2.csv:5"]
    assert quarantine_view(wh)["total"] == 5
    assert quarantine_view(wh, sources=["clicks"], latest=True)["batch"] != second.batch
    wh.close()


def test_cli_lists_reasons_then_whole_rows(tmp_path: Path, capsys, monkeypatch) -> None:
    from loupe.cli import common
    from loupe.cli.main import main

    _project(tmp_path).close()
    (tmp_path / "loupe.toml").write_text(
        '[[sources]]\nname = "shop"\ntable = "orders"\nformat = "csv"\npath = "orders_*.csv"\n'
        '[sources.columns]\norder_id = "order_no"\nuser_id = "account_id"\n'
        'ordered_at = "order_time"\namount = "total_amount"\ncurrency = "currency"\n',
        encoding="utf-8",
    )
    assert main(["-p", str(tmp_path), "ingest", "--json"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(common.out, "width", 80)
    assert main(["-p", str(tmp_path), "quarantine", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "Quarantine: 3 rows" in out
    lines = out.splitlines()
    at = lines.index("orders_1.csv:3  unparseable ordered_at: '2024-13-45 10:00:00'")
    assert lines[at + 1] == "    O3,U3,2024-13-45 10:00:00,3,CNY"
    assert "2 of 3 rows" in out
    assert main(["-p", str(tmp_path), "quarantine", "--reason", "fields", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"] == 2 and doc["rows"][0]["raw"] == "O10,U10,10"
