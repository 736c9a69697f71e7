"""The command line: init, errors without tracebacks, JSON-only stdout."""

from __future__ import annotations

import json

import ibis

from loupe.cli.main import main
from loupe.config import load_settings
from loupe.warehouse import Warehouse


def test_init_writes_a_valid_project(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "loupe.toml").exists()
    assert main(["--project", str(tmp_path / "p"), "sources", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"sources": []}
    assert main(["init", str(tmp_path / "p")]) != 0  # refuses to overwrite
    assert "already exists" in capsys.readouterr().err


def test_sources_table_keeps_paths_whole_and_names_the_sheet(tmp_path, capsys, monkeypatch):
    """The path is what a user checks: it is not cut short; a spreadsheet shows its sheet
    and no text encoding (it declares its own)."""
    from loupe.cli import common

    (tmp_path / "loupe.toml").write_text(
        '[[sources]]\nname = "members"\ntable = "contacts"\nformat = "csv"\n'
        'encoding = "gbk"\npath = "exports/pos/member_export_2025_*.csv.gz"\n'
        'decimal = ","\ndate_order = "DMY"\n[sources.columns]\nsource_key = "id"\n'
        '[[sources]]\nname = "spend"\ntable = "marketing_spend"\nformat = "excel"\n'
        'path = "data/marketing_spend.xlsx"\nsheet = "每日明细"\nheader_row = 3\n'
        '[sources.columns]\ndate = "date"\nchannel = "channel"\nspend = "spend"\n'
        '[[sources]]\nname = "budget"\ntable = "marketing_spend"\nformat = "excel"\n'
        'path = "b.xlsx"\nsheet = "bold"\n[sources.columns]\ndate = "d"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(common.out, "width", 200)
    assert main(["-p", str(tmp_path), "sources"]) == 0
    rows = {r.split()[1]: r for r in capsys.readouterr().out.splitlines() if r.count("│") == 7}
    cells = {k: [c.strip() for c in r.split("│")[4:6]] for k, r in rows.items()}
    assert cells["members"] == ["exports/pos/member_export_2025_*.csv.gz", 'gbk, decimal ",", dmy']
    assert cells["spend"] == ["data/marketing_spend.xlsx [每日明细]", ""]
    assert cells["budget"] == ["b.xlsx [bold]", ""]  # a sheet's name is not Rich markup
    monkeypatch.setattr(common.out, "width", 80)
    assert main(["-p", str(tmp_path), "sources"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "exports/pos/" in out  # the path wraps in its cell, never cut
    assert main(["-p", str(tmp_path), "sources", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["sources"]
    assert [(r["name"], r["sheet"], r["files"]) for r in rows] == [
        ("members", None, 0),  # a path matching nothing shows before an ingest stops on it
        ("spend", "每日明细", 0),
        ("budget", "bold", 0),
    ]
    reading = [(r["decimal"], r["date_order"]) for r in rows]
    assert reading == [(",", "dmy"), (".", "ymd"), (".", "ymd")]
    for name in ("member_export_2025_01.csv.gz", "member_export_2025_02.csv.gz", "other.csv"):
        (tmp_path / "exports" / "pos").mkdir(parents=True, exist_ok=True)
        (tmp_path / "exports" / "pos" / name).write_bytes(b"")
    assert main(["-p", str(tmp_path), "sources", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"][0]["files"] == 2


def test_user_error_prints_no_traceback(tmp_path, capsys):
    code = main(["--project", str(tmp_path), "ingest", "--json"])
    captured = capsys.readouterr()
    assert code != 0
    assert "No loupe.toml" in captured.err and "loupe init" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.out == ""


def test_usage_error_prints_no_traceback(tmp_path, capsys):
    """An unknown option is a usage error: exit code 2 and click's message, no traceback
    (typer 0.2x vendors click, so ``import click`` is not available to handle it)."""
    assert main(["-p", str(tmp_path), "customers", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert "No such option" in err
    assert "Traceback" not in err
    assert main(["-p", str(tmp_path), "lifecycle", "--days", "0"]) == 2
    assert "Invalid value for '--days'" in capsys.readouterr().err


def test_ingest_json_is_one_document(tmp_path, capsys):
    (tmp_path / "loupe.toml").write_text(
        '[[sources]]\nname = "p"\ntable = "products"\nformat = "csv"\npath = "p.csv"\n'
        '[sources.columns]\nproduct_id = "sku"\nprice = "price"\n'
    )
    (tmp_path / "p.csv").write_text("sku,price\nA,1\nB,-2\nA,1\n")
    assert main(["-p", str(tmp_path), "ingest", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    p = doc["sources"]["p"]
    assert {k: p[k] for k in ("read", "loaded", "quarantined", "duplicates")} == {
        "read": 3,
        "loaded": 1,
        "quarantined": 1,
        "duplicates": 1,
    }


def test_ingest_reload_and_the_quarantine_hint(tmp_path, capsys):
    """``loupe quarantine`` names the setting that reads the rejected dates, and ``ingest
    --reload`` reads the unchanged file again once it is set."""
    toml = (
        '[[sources]]\nname = "p"\ntable = "orders"\nformat = "csv"\npath = "p.csv"\n'
        '{extra}[sources.columns]\norder_id = "no"\namount = "amount"\nordered_at = "day"\n'
    )
    (tmp_path / "loupe.toml").write_text(toml.format(extra=""))
    (tmp_path / "p.csv").write_text("no,amount,day\nA,1,05/03/2024\nB,2,06/03/2024\n")
    hint = "p, unparseable ordered_at: 2 look written day or month first (05/03/2024): set"
    assert main(["-p", str(tmp_path), "ingest"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert hint in out and "then `loupe ingest -s p --reload`" in out
    assert main(["-p", str(tmp_path), "quarantine"]) == 0
    assert hint in " ".join(capsys.readouterr().out.split())
    (tmp_path / "loupe.toml").write_text(toml.format(extra='date_order = "dmy"\n'))
    assert main(["-p", str(tmp_path), "ingest", "--reload"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "p: 0 rows loaded before were deleted, and every file read again" in out
    assert main(["-p", str(tmp_path), "ingest", "--reload", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)["sources"]["p"]
    assert (p["forgotten"], p["read"], p["loaded"], p["quarantined"]) == (2, 2, 2, 0)


def test_ingest_and_preview_say_which_files_were_utf8_not_the_declared_encoding(tmp_path, capsys):
    (tmp_path / "loupe.toml").write_text(
        '[[sources]]\nname = "pos"\ntable = "contacts"\nformat = "csv"\npath = "m.csv"\n'
        'encoding = "gbk"\n[sources.columns]\nsource_key = "card"\nname = "name"\n'
    )
    (tmp_path / "m.csv").write_text("card,name\nM1,张伟\nM2,李娜\n", encoding="utf-8")
    said = (
        "pos: m.csv is UTF-8 text, not gbk, and was read as UTF-8; if all its files are now, "
        'set `encoding = "utf-8"` on the source in loupe.toml'
    )
    for command in (["preview", "pos"], ["preview"], ["ingest"]):
        assert main(["-p", str(tmp_path), *command]) == 0
        assert said in " ".join(capsys.readouterr().out.split())
    assert main(["-p", str(tmp_path), "preview", "--json"]) == 0
    (brief,) = json.loads(capsys.readouterr().out)["sources"]
    assert brief["read_as_utf8"] == ["m.csv"]


def test_preview_shows_a_source_typed_and_the_hint_then_previews_again(tmp_path, capsys):
    """``loupe preview`` before any ingest: the first row as read beside its typed value,
    the rows it would quarantine with the setting that reads them, and nothing written."""
    toml = (
        '[[sources]]\nname = "p"\ntable = "orders"\nformat = "csv"\npath = "p.csv"\n'
        '{extra}[sources.columns]\norder_id = "no"\namount = "amount"\nordered_at = "day"\n'
    )
    (tmp_path / "loupe.toml").write_text(toml.format(extra=""))
    (tmp_path / "p.csv").write_text("no,amount,day\nA,1,05/03/2024\nB,2,2024-03-06\n")
    assert main(["-p", str(tmp_path), "preview", "p"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Preview of p (csv → raw_orders): 2 rows read from p.csv." in out
    assert "would load 1 · quarantined 1 · duplicates 0" in out
    assert "First row loaded, p.csv:3" in out
    # in UTC from the project's time zone, Asia/Shanghai by default
    assert "│ ordered_at │ day │ 2024-03-06 │ 2024-03-05 16:00:00 UTC │ 100% │" in out
    assert "1 looks written day or month first" in out and "then `loupe preview p`" in out
    assert "p.csv:2 unparseable ordered_at: '05/03/2024'" in out
    (tmp_path / "loupe.toml").write_text(toml.format(extra='date_order = "dmy"\n'))
    assert main(["-p", str(tmp_path), "preview", "p", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["read"], doc["loaded"], doc["quarantined"]) == (2, 2, 0)
    assert doc["rows"][0]["ordered_at"] == "2024-03-04T16:00:00"  # Shanghai
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loupe.toml", "p.csv"]
    assert main(["-p", str(tmp_path), "preview", "q"]) != 0
    err = capsys.readouterr().err
    assert "No source named 'q'" in err and "Traceback" not in err


def test_preview_of_every_source_goes_on_past_one_that_fails(tmp_path, capsys):
    """Without a name every source is previewed in brief; a mapping error stops its own
    source only, and the hints are printed under the table."""
    (tmp_path / "loupe.toml").write_text(
        '[[sources]]\nname = "p"\ntable = "orders"\nformat = "csv"\npath = "p.csv"\n'
        '[sources.columns]\norder_id = "no"\nordered_at = "day"\n'
        '[[sources]]\nname = "q"\ntable = "orders"\nformat = "csv"\npath = "p.csv"\n'
        '[sources.columns]\norder_id = "no"\nordered_at = "dai"\n'
    )
    (tmp_path / "p.csv").write_text("no,day\nA,05/03/2024\nB,06/03/2024\nC,2024-03-07\n")
    assert main(["-p", str(tmp_path), "preview", "--json"]) == 0
    p, q = json.loads(capsys.readouterr().out)["sources"]
    assert (p["read"], p["loaded"], p["quarantined"], p["error"]) == (3, 1, 2, None)
    assert p["by_reason"][0]["hint"].startswith("2 look written day or month first")
    assert (q["read"], q["by_reason"]) == (None, [])
    assert q["error"].startswith("Source 'q': column 'dai' (mapped to ordered_at) is not in")
    assert main(["-p", str(tmp_path), "preview"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "│ p │ orders │ 3 │ 1 │ 2 │ 0 │" in out and "│ q │ orders │ │ │ │ │" in out
    assert "q: Source 'q': column 'dai'" in out and "then `loupe preview p`" in out
    assert sorted(f.name for f in tmp_path.iterdir()) == ["loupe.toml", "p.csv"]


def test_ingest_table_keeps_source_names_and_counts_whole(tmp_path, capsys, monkeypatch):
    """At 80 columns eshop_orders and eshop_order_lines both read "eshop_ord…" before."""
    from loupe.cli import common

    toml = ""
    for name in ("eshop_product_catalogue", "eshop_product_catalogue_archive"):
        toml += (
            f'[[sources]]\nname = "{name}"\ntable = "products"\nformat = "csv"\n'
            f'path = "{name}.csv"\n[sources.columns]\nproduct_id = "sku"\nprice = "price"\n'
        )
        (tmp_path / f"{name}.csv").write_text("sku,price\nA,1\nB,-2\nA,1\n")
    (tmp_path / "loupe.toml").write_text(toml)
    monkeypatch.setattr(common.out, "width", 80)
    assert main(["-p", str(tmp_path), "ingest"]) == 0
    out = capsys.readouterr().out
    assert "quarantined" in out and "duplicates" in out
    assert "2 rows quarantined: `loupe quarantine --latest` shows them and why" in out
    for name in ("eshop_product_catalogue", "eshop_product_catalogue_archive"):
        cells = [line.replace("│", " ").split() for line in out.splitlines()]  # rules or none
        row = next(c for c in cells if name in c)
        assert row[-6:] == ["3", "1", "1", "1", "1", "new"], row
    assert main(["-p", str(tmp_path), "ingest"]) == 0
    again = capsys.readouterr().out
    assert "loupe quarantine" not in again  # nothing new was quarantined
    rows = [line.replace("│", " ").split() for line in again.splitlines() if "eshop_" in line]
    assert [r[-2:] for r in rows] == [["1", "seen"], ["1", "seen"]]


def test_demo_builds_a_project_and_run_json_is_one_document(tmp_path, capsys):
    target = tmp_path / "demo"
    assert (
        main(["demo", "--customers", "150", "--seed", "3", "--dir", str(target), "--no-serve"]) == 0
    )
    out = capsys.readouterr().out
    assert "customers resolved" in out and "rows quarantined" in out
    assert (target / "loupe.toml").exists() and (target / "loupe.duckdb").exists()
    assert (target / "data" / "truth" / "records.csv").exists()
    # the commands it suggests run on it
    assert "preview crm" in out and "customers find" in out and "customers explain" in out
    wh = Warehouse.open(load_settings(target))
    c = wh.table("customers")
    top = wh.to_pandas(c.order_by([ibis.desc("record_count"), "customer_id"]).limit(1))
    wh.close()
    assert main(["-p", str(target), "customers", "explain", top.customer_id[0], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["records"]) == top.record_count[0] > 1 and doc["connected"] and doc["links"]
    assert main(["-p", str(target), "preview", "crm", "--rows", "50", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["read"] == 50 == doc["loaded"] + doc["quarantined"] + doc["duplicates"]

    assert main(["-p", str(target), "run", "--stage", "ingest", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ingest"]["total"]["loaded"] == 0  # everything was loaded by the demo

    # A demo folder is rebuilt on request; any other non-empty folder is refused.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert main(["demo", "--customers", "50", "--dir", str(other), "--no-serve"]) != 0
    assert (other / "notes.txt").read_text() == "keep me"
