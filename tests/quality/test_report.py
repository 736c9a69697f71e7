"""Report metrics equal direct counts; JSON, HTML and the quality_metrics history."""

from __future__ import annotations

import json
from datetime import datetime

from loupe.quality import run_quality

from .rawdata import write_raw

CONTACTS = [
    {"source": "crm", "source_key": "1", "email": "A@x.com", "phone": "13800138000", "gender": "男",
     "birth_date": "1990/1/2", "updated_at": datetime(2024, 5, 1)},
    {"source": "crm", "source_key": "2", "email": "bad@", "phone": "123", "gender": "女",
     "birth_date": "19900230", "updated_at": datetime(2024, 5, 2)},
    {"source": "crm", "source_key": "3", "email": None, "phone": None, "gender": "?",
     "birth_date": "1985年12月1日", "updated_at": datetime(2024, 5, 3)},
    {"source": "crm", "source_key": "4", "email": "c@y.cn", "phone": "0086 139 1234 5678",
     "gender": None, "birth_date": None, "updated_at": None},
    {"source": "crm", "source_key": "4", "email": "c@y.cn", "phone": "0086 139 1234 5678",
     "gender": None, "birth_date": None, "updated_at": None},
]  # fmt: skip


def test_metrics_equal_direct_counts(wh):
    write_raw(wh, "contacts", CONTACTS)
    report = run_quality(wh)
    t = report.table("contacts")
    df = wh.to_pandas(wh.table("contacts"))
    n = len(df)
    assert (t.rows_in, t.rows_out, t.exact_duplicates, t.superseded) == (5, 4, 1, 0)

    flags = [f for row in df.quality_flags for f in row]
    assert dict(t.flags) == {f: flags.count(f) for f in set(flags)}
    for col in ("email", "phone", "gender", "birth_date", "updated_at", "email_raw"):
        c = t.column(col)
        assert c.non_null == df[col].notna().sum()
        assert c.completeness == df[col].notna().sum() / n
        assert c.distinct == df[col].nunique()
    # validity: valid values / values present in the raw data
    assert t.column("email").validity == 2 / 3  # A@x.com, c@y.cn valid; bad@ not
    assert t.column("phone").validity == 2 / 3
    assert t.column("gender").validity == 2 / 3  # 男, 女 valid; "?" unreadable
    assert t.column("birth_date").validity == 2 / 3
    assert t.newest == datetime(2024, 5, 3)
    assert t.stale is True

    stored = wh.to_pandas(wh.table("quality_metrics"))
    row = stored[
        (stored.table == "contacts") & (stored.column == "email") & (stored.metric == "validity")
    ]
    assert row.value.tolist() == [2 / 3]
    run_quality(wh)
    assert wh.count("quality_metrics") == 2 * len(stored)


def test_json_and_html(wh):
    write_raw(wh, "contacts", CONTACTS)
    write_raw(wh, "orders", [{"source": "s", "order_id": "o1", "ordered_at": datetime(2024, 5, 1),
                              "amount": 5.0, "currency": "CNY", "email": "<b>x</b>@y.com"}])  # fmt: skip
    report = run_quality(wh)
    doc = json.loads(json.dumps(report.to_dict()))
    assert [t["table"] for t in doc["tables"]][:2] == ["contacts", "orders"]
    assert {x["standardiser"] for x in doc["timings"]["standardisers"]} == {
        "email",
        "phone",
        "country",
        "place",
    }
    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>")
    for table in ("contacts", "orders", "order_items", "invalid_email"):
        assert table in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    import dataclasses

    big = dataclasses.replace(report.tables[0], rows_in=54_536_791)
    html = dataclasses.replace(report, tables=(big, *report.tables[1:])).to_html()
    assert "<td>54,536,791</td>" in html  # counts get thousands separators


def test_terminal_report_fits_80_columns_with_names_and_counts_whole(wh):
    import io

    from rich.console import Console

    write_raw(wh, "contacts", CONTACTS)
    report = run_quality(wh)
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(report.to_rich())
    out = console.file.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80
    rows: dict[str, list[str]] = {}  # the first line of each table name: the summary's
    for line in out.splitlines():
        cells = line.replace("│", " ").split()
        if cells:
            rows.setdefault(cells[0], cells)
    # table, raw rows, published, exact dup., superseded, flagged, age (d), stale
    assert rows["contacts"][:6] == [
        "contacts",
        "5",
        "4",
        "1",
        "0",
        str(report.table("contacts").flagged_rows),
    ]
    assert float(rows["contacts"][6]) > 365 and "stale" in out  # may wrap below the age
    assert rows["marketing_spend"][:6] == ["marketing_spend", "0", "0", "0", "0", "0"]
