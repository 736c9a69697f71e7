"""``loupe preview``: the first rows of a source, typed as ingest would, with nothing written."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import ibis
import pandas as pd

from loupe.ingest import ingest
from loupe.ingest.preview import preview
from loupe.warehouse import Warehouse
from tests.conftest import make_settings
from tests.ingest.test_load import EVENTS, EXPORT_DE

DE_COLUMNS = {
    "order_id": "Bestellnr",
    "user_id": "Kunde",
    "ordered_at": "Bestelldatum",
    "amount": "Betrag",
    "currency": "Währung",
}


def _de_source(**options: str) -> dict:
    source = {"name": "shop_de", "table": "orders", "format": "csv", "path": "bestellungen.csv"}
    source |= {"encoding": "cp1252", "delimiter": ";", "timezone": "Europe/Berlin"}
    return {**source, **options, "columns": DE_COLUMNS}


def test_a_preview_shows_what_a_setting_changes_and_writes_nothing(tmp_path):
    """Without ``date_order`` the German export's dates are quarantined, with the hint that
    reads them; with the two settings the first row's text sits beside its typed value.
    The project's warehouse is never opened, so it is not even created."""
    (tmp_path / "bestellungen.csv").write_bytes(EXPORT_DE.encode("cp1252"))
    doc = preview(make_settings(tmp_path, sources=[_de_source()]), "shop_de")
    assert (doc["read"], doc["loaded"], doc["quarantined"], doc["duplicates"]) == (6, 1, 5, 0)
    assert doc["files"] == ["bestellungen.csv"]
    [reason] = doc["by_reason"]
    assert (reason["reason"], reason["rows"]) == ("unparseable ordered_at", 5)
    assert "5 look written day or month first" in reason["hint"]
    assert [r["location"] for r in doc["quarantine"]] == [
        f"bestellungen.csv:{n}" for n in (2, 3, 4, 6, 7)
    ]
    assert doc["first_row"] == {
        "location": "bestellungen.csv:5",
        "raw": "B4;K4;2024-03-06T08:00:00Z;7;EUR",
    }

    settings = make_settings(tmp_path, sources=[_de_source(decimal=",", date_order="dmy")])
    doc = preview(settings, "shop_de", show=2)
    assert (doc["read"], doc["loaded"], doc["quarantined"]) == (6, 4, 2)
    assert doc["first_row"]["location"] == "bestellungen.csv:2"
    columns = {c["column"]: c for c in doc["columns"]}
    assert columns["ordered_at"] == {
        "column": "ordered_at",
        "from": "Bestelldatum",
        "as_read": "05.03.2024 10:00",
        "loaded_as": datetime(2024, 3, 5, 9, 0),  # UTC: Berlin is UTC+1 in March
        "filled": 1.0,
    }
    assert (columns["amount"]["as_read"], columns["amount"]["loaded_as"]) == ("1.234,50", 1234.5)
    assert list(columns) == ["order_id", "user_id", "ordered_at", "amount", "currency"]
    assert "email" in doc["not_mapped"] and "store_id" in doc["not_mapped"]
    assert [r["order_id"] for r in doc["rows"]] == ["B1", "B2"]
    assert len(doc["quarantine"]) == 2 and all(r["hint"] is None for r in doc["by_reason"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bestellungen.csv"]


def _orders(tmp_path: Path) -> dict:
    """Two files of three rows; the second row of the first has a field too many."""
    day = "2024-03-05"
    (tmp_path / "orders_a.csv").write_text(f"no,amount,day\nA1,1,{day}\nA2,2,{day},x\nA3,3,{day}\n")
    (tmp_path / "orders_b.csv").write_text(f"no,amount,day\nB1,1,{day}\nA1,1,{day}\nB3,3,{day}\n")
    columns = {"order_id": "no", "amount": "amount", "ordered_at": "day"}
    return {"name": "shop", "table": "orders", "format": "csv", "path": "orders_*.csv"} | {
        "columns": columns
    }


def test_a_preview_reads_the_first_rows_of_the_files_in_order(tmp_path):
    """A row that could not be split counts as read, in its place; the limit runs on into the
    next file; a repeat of a row read earlier is a duplicate, as ingest counts it."""
    settings = make_settings(tmp_path, sources=[_orders(tmp_path)])
    doc = preview(settings, "shop", rows=2)
    assert (doc["read"], doc["loaded"], doc["quarantined"]) == (2, 1, 1)
    assert doc["files"] == ["orders_a.csv"]
    assert doc["quarantine"][0]["location"] == "orders_a.csv:3"
    doc = preview(settings, "shop", rows=5)
    assert (doc["read"], doc["loaded"], doc["quarantined"], doc["duplicates"]) == (5, 3, 1, 1)
    assert doc["files"] == ["orders_a.csv", "orders_b.csv"]
    assert [r["order_id"] for r in doc["rows"]] == ["A1", "A3", "B1"]
    doc = preview(settings, "shop", rows=100, show=0)
    assert (doc["read"], doc["loaded"], doc["rows"], doc["quarantine"]) == (6, 4, [], [])


def test_an_ingest_with_a_limit_does_not_record_a_file_read_in_part(tmp_path):
    """The next full ingest reads the file again: its rows are not skipped as seen."""
    wh = Warehouse.open(make_settings(tmp_path, sources=[_orders(tmp_path)]))
    rep = ingest(wh, limit=4).sources["shop"]
    assert (rep.read, rep.files) == (4, ["orders_a.csv"])  # the whole of a, part of b
    rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded, rep.duplicates, rep.skipped_files) == (3, 1, 2, ["orders_a.csv"])


def test_a_segment_preview_shows_the_line_and_the_profiles(tmp_path):
    lines = [json.dumps(e) for e in EVENTS] + ['{"type": "track", "event": "Cut']
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    source = {"name": "web", "table": "events", "format": "segment", "path": "events.jsonl"}
    doc = preview(make_settings(tmp_path, sources=[source]), "web")
    assert (doc["read"], doc["loaded"], doc["quarantined"], doc["profiles"]) == (4, 3, 1, 1)
    assert doc["first_row"] == {"location": "events.jsonl:1", "raw": lines[0]}
    columns = {c["column"]: c for c in doc["columns"]}
    assert columns["user_id"] == {
        "column": "user_id",
        "from": "Segment spec",
        "as_read": None,
        "loaded_as": "U1",
        "filled": round(2 / 3, 4),
    }
    assert (columns["screen"]["filled"], doc["not_mapped"]) == (0.0, [])  # the spec maps all
    assert doc["by_reason"][0]["reason"] == "broken JSON"


def test_a_preview_of_a_parquet_file_and_a_sql_table(tmp_path):
    """Typed columns are read as their text, shown as read, and typed again."""
    df = pd.DataFrame({"sku": ["A", "B", "C"], "title": ["杯子", "Mug", "Pen"]})
    df["price"] = [12.5, -3.0, 2.0]
    df.to_parquet(tmp_path / "products.parquet")
    con = ibis.duckdb.connect(str(tmp_path / "erp.duckdb"))
    con.create_table("items", ibis.memtable(df))
    con.disconnect()
    columns = {"product_id": "sku", "name": "title", "price": "price"}
    sources = [
        {"name": "pq", "format": "parquet", "path": "products.parquet"},
        {"name": "erp", "format": "sql", "connection": "duckdb://erp.duckdb", "sql_table": "items"},
    ]
    settings = make_settings(
        tmp_path, sources=[{**s, "table": "products", "columns": columns} for s in sources]
    )
    for name, file in (("pq", "products.parquet"), ("erp", "items")):
        doc = preview(settings, name, rows=2)
        assert (doc["read"], doc["loaded"], doc["quarantined"], doc["files"]) == (2, 1, 1, [file])
        assert doc["first_row"] == {"location": f"{file}:1", "raw": "A,杯子,12.5"}
        price = next(c for c in doc["columns"] if c["column"] == "price")
        assert (price["as_read"], price["loaded_as"]) == ("12.5", 12.5)
        assert doc["quarantine"][0]["reason"] == "negative price"
