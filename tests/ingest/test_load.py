"""Ingestion on small hand-written files: quarantine, reconciliation, idempotency, errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from datetime import date, datetime
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loupe.errors import SourceError
from loupe.ingest import ingest
from loupe.ingest import load as load_module
from loupe.warehouse import Warehouse
from tests.conftest import make_settings

ORDERS_CSV = """order_no,account_id,order_time,total_amount,currency
O1,U1,2024-03-05 10:00:00,100.50,CNY
O2,U2,2024-03-05T02:00:00Z,20,CNY
O3,U3,2024-13-45 10:00:00,30,CNY
O4,U4,2024/3/6 09:00,40,USD,extra
O1,U1,2024-03-05 10:00:00,100.50,CNY

O5,U5,not a date,50,CNY
O6,U6,2024年3月7日 08:00,60,CNY
"""

LINES_CSV = """小票号,行号,商品编码,数量,单价
T1,1,SKU1,2,9.90
T1,2,SKU2,-1,5.00
T2,1,SKU1,1,9.90
"""

EVENTS = [
    {
        "type": "identify",
        "messageId": "m1",
        "anonymousId": "a1",
        "userId": "U1",
        "traits": {"email": "Wang@QQ.com", "phone": "13800138000", "name": "王伟"},
        "timestamp": "2024-03-05T02:00:00Z",
    },
    {
        "type": "track",
        "messageId": "m2",
        "anonymousId": "a1",
        "userId": "U1",
        "event": "Product Viewed",
        "properties": {"product_id": "SKU1"},
        "context": {
            "campaign": {"source": "douyin", "medium": "cpc", "name": "spring"},
            "page": {"url": "https://shop/p/1"},
        },
        "timestamp": "2024-03-05T02:01:00Z",
    },
    {
        "type": "page",
        "messageId": "m3",
        "anonymousId": "a2",
        "name": "Home",
        "timestamp": "2024-03-05T10:02:00+08:00",
    },
]


def _project(tmp_path: Path, sources: list[dict]) -> Warehouse:
    return Warehouse.open(make_settings(tmp_path, sources=sources))


def _orders_source(path: str = "orders*.csv") -> dict:
    return {
        "name": "shop",
        "table": "orders",
        "format": "csv",
        "path": path,
        "columns": {
            "order_id": "order_no",
            "user_id": "account_id",
            "ordered_at": "order_time",
            "amount": "total_amount",
            "currency": "currency",
        },
    }


def _quarantine(wh: Warehouse) -> pd.DataFrame:
    return wh.to_pandas(wh.table("quarantine").order_by("location"))


def test_csv_quarantine_reconciles_and_locations(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    wh = _project(tmp_path, [_orders_source()])
    rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates) == (7, 3, 3, 1)
    assert rep.reconciled
    q = _quarantine(wh)
    assert list(q["location"]) == ["orders.csv:4", "orders.csv:5", "orders.csv:8"]
    reasons = dict(zip(q["location"], q["reason"], strict=True))
    assert "ordered_at" in reasons["orders.csv:4"]
    assert "wrong number of fields" in reasons["orders.csv:5"]
    raw = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(raw["order_id"]) == ["O1", "O2", "O6"]
    by_id = raw.set_index("order_id")
    # 10:00 Shanghai == 02:00 UTC; the Z form is already UTC.
    assert str(by_id.loc["O1", "ordered_at"]) == "2024-03-05 02:00:00"
    assert str(by_id.loc["O2", "ordered_at"]) == "2024-03-05 02:00:00"
    assert str(by_id.loc["O6", "ordered_at"]) == "2024-03-07 00:00:00"
    assert by_id.loc["O1", "amount"] == pytest.approx(100.5)
    assert set(raw["_line"]) == {2, 3, 9}


def test_reingest_loads_nothing_and_new_files_are_picked_up(tmp_path):
    (tmp_path / "orders_1.csv").write_text(ORDERS_CSV)
    wh = _project(tmp_path, [_orders_source()])
    ingest(wh)
    again = ingest(wh).sources["shop"]
    assert (again.read, again.loaded, again.quarantined) == (0, 0, 0)
    assert again.skipped_files == ["orders_1.csv"]
    (tmp_path / "orders_2.csv").write_text(
        "order_no,account_id,order_time,total_amount,currency\n"
        "O1,U1,2024-03-05 10:00:00,100.50,CNY\nO9,U9,2024-04-01 12:00:00,9,CNY\n"
    )
    third = ingest(wh).sources["shop"]
    assert (third.read, third.loaded, third.duplicates) == (2, 1, 1)
    assert third.files == ["orders_2.csv"]
    assert wh.count("raw_orders") == 4


def _files(wh: Warehouse) -> pd.DataFrame:
    return wh.to_pandas(wh.table("ingested_files").order_by("loaded_at", "file"))


def _no_hashing(path: Path) -> str:
    raise AssertionError(f"{path.name} was hashed before it was read")


def _no_reading(*args: object, **kwargs: object) -> None:
    raise AssertionError("a file was read")


def test_a_first_load_hashes_files_as_it_reads_them(tmp_path, monkeypatch):
    """New files of distinct sizes cannot have been loaded, so none is hashed up front (that
    read the whole input twice); the fingerprint computed on the way is the file's own."""
    (tmp_path / "orders_1.csv").write_text(ORDERS_CSV)
    (tmp_path / "orders_2.csv").write_text(ORDERS_CSV + "O7,U7,2024-03-08 09:00,70,CNY\n")
    wh = _project(tmp_path, [_orders_source()])
    with monkeypatch.context() as mp:
        mp.setattr(load_module.readers, "fingerprint", _no_hashing)
        rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates) == (15, 4, 6, 5)
    files = _files(wh)
    assert list(files["file"]) == ["orders_1.csv", "orders_2.csv"]
    for name, fp, size, mtime in zip(
        files["file"], files["fingerprint"], files["size"], files["modified_ns"], strict=True
    ):
        path = tmp_path / name
        assert fp == load_module.readers.fingerprint(path)
        assert (size, mtime) == (path.stat().st_size, path.stat().st_mtime_ns)


def test_a_rerun_skips_unchanged_files_without_reading_or_hashing_them(tmp_path, monkeypatch):
    (tmp_path / "orders_1.csv").write_text(ORDERS_CSV)
    wh = _project(tmp_path, [_orders_source()])
    ingest(wh)
    with monkeypatch.context() as mp:
        mp.setattr(load_module.readers, "fingerprint", _no_hashing)
        mp.setattr(load_module.readers, "_blocks", _no_reading)
        again = ingest(wh).sources["shop"]
    assert (again.read, again.loaded, again.skipped_files) == (0, 0, ["orders_1.csv"])


def test_a_touched_file_is_known_by_its_content_and_a_rewritten_one_is_read(tmp_path):
    path = tmp_path / "orders_1.csv"
    path.write_text(ORDERS_CSV)
    wh = _project(tmp_path, [_orders_source()])
    ingest(wh)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, new time
    touched = ingest(wh).sources["shop"]
    assert (touched.read, touched.skipped_files) == (0, ["orders_1.csv"])
    path.write_text(ORDERS_CSV.replace("O6,U6", "O9,U9"))  # same size, other content
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
    assert path.stat().st_size == stat.st_size
    rewritten = ingest(wh).sources["shop"]
    assert (rewritten.read, rewritten.loaded, rewritten.files) == (7, 1, ["orders_1.csv"])
    assert "O9" in set(wh.to_pandas(wh.table("raw_orders"))["order_id"])


def test_the_same_content_under_two_names_loads_once(tmp_path):
    (tmp_path / "orders_1.csv").write_text(ORDERS_CSV)
    (tmp_path / "orders_2.csv").write_text(ORDERS_CSV)
    wh = _project(tmp_path, [_orders_source()])
    rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded, rep.skipped_files) == (7, 3, ["orders_2.csv"])
    (tmp_path / "orders_3.csv").write_text(ORDERS_CSV)  # a third copy, in a later run
    later = ingest(wh).sources["shop"]
    assert (later.read, later.skipped_files) == (
        0,
        ["orders_1.csv", "orders_2.csv", "orders_3.csv"],
    )


def test_files_recorded_before_sizes_are_known_by_content(tmp_path, monkeypatch):
    """Rows of ``ingested_files`` written before migration 7 have no size: every file is
    then hashed before it is read, as before, and nothing loaded is read again; a file
    found unchanged that way gets its size and time recorded."""
    path = tmp_path / "orders_1.csv"
    path.write_text(ORDERS_CSV)
    wh = _project(tmp_path, [_orders_source()])
    ingest(wh)
    wh.con.raw_sql("UPDATE ingested_files SET size = NULL, modified_ns = NULL")
    hashed: list[str] = []
    real = load_module.readers.fingerprint

    def spy(p: Path) -> str:
        hashed.append(p.name)
        return real(p)

    monkeypatch.setattr(load_module.readers, "fingerprint", spy)
    again = ingest(wh).sources["shop"]
    assert (again.read, again.skipped_files, hashed) == (0, ["orders_1.csv"], ["orders_1.csv"])
    # Found unchanged by content, the file's row got its size and time: the next run skips
    # it unopened, and ingested_files still has one row per loaded file.
    files = _files(wh)
    assert len(files) == 1
    assert (files["size"][0], files["modified_ns"][0]) == (
        path.stat().st_size,
        path.stat().st_mtime_ns,
    )
    hashed.clear()
    third = ingest(wh).sources["shop"]
    assert (third.read, third.skipped_files, hashed) == (0, ["orders_1.csv"], [])


def test_files_of_one_name_in_two_folders_are_both_recorded(tmp_path):
    """``data/*/orders.csv``: two files of one name are two records of ``ingested_files``
    (they were one, by name, so a re-run read one of them again)."""
    header = "order_no,account_id,order_time,total_amount,currency\n"
    for month, rows in (("2024-03", ["O1,U1,2024-03-05 10:00,10,CNY"]), ("2024-04", [])):
        (tmp_path / "data" / month).mkdir(parents=True)
        extra = [f"O{k},U{k},2024-04-0{k} 10:00,{k},CNY" for k in range(2, 5)] if not rows else []
        (tmp_path / "data" / month / "orders.csv").write_text(header + "\n".join(rows + extra))
    wh = _project(tmp_path, [_orders_source("data/*/orders.csv")])
    first = ingest(wh).sources["shop"]
    assert (first.read, first.loaded, first.files) == (4, 4, ["orders.csv", "orders.csv"])
    assert list(_files(wh).sort_values("rows")["rows"]) == [1, 3]
    again = ingest(wh).sources["shop"]
    assert (again.read, again.skipped_files) == (0, ["orders.csv", "orders.csv"])


def test_a_csv_export_with_only_its_header_loads_nothing(tmp_path):
    (tmp_path / "orders_1.csv").write_text(ORDERS_CSV.splitlines()[0] + "\n")
    wh = _project(tmp_path, [_orders_source()])
    rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded, rep.files, rep.reconciled) == (0, 0, ["orders_1.csv"], True)
    assert list(_files(wh)["rows"]) == [0]


def test_gbk_file_with_negative_quantity(tmp_path):
    (tmp_path / "lines.csv").write_bytes(LINES_CSV.encode("gbk"))
    wh = _project(
        tmp_path,
        [
            {
                "name": "pos_lines",
                "table": "order_items",
                "format": "csv",
                "path": "lines.csv",
                "encoding": "gbk",
                "columns": {
                    "order_id": "小票号",
                    "line_no": "行号",
                    "product_id": "商品编码",
                    "quantity": "数量",
                    "unit_price": "单价",
                },
            }
        ],
    )
    rep = ingest(wh).sources["pos_lines"]
    assert (rep.read, rep.loaded, rep.quarantined) == (3, 2, 1)
    q = _quarantine(wh)
    assert list(q["location"]) == ["lines.csv:3"]
    assert q["reason"][0] == "negative quantity"
    assert "SKU2" in q["raw"][0]


def test_segment_events_and_profiles(tmp_path):
    lines = [json.dumps(e, ensure_ascii=False) for e in EVENTS]
    lines.insert(2, '{"type": "track", "messageId": "m9", "event": "Broken"')
    lines.append(lines[1])  # an exact duplicate delivery
    (tmp_path / "web_2024-03.jsonl").write_text("\n".join(lines) + "\n")
    wh = _project(tmp_path, [{"name": "web", "format": "segment", "path": "web_*.jsonl"}])
    rep = ingest(wh).sources["web"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates) == (5, 3, 1, 1)
    assert rep.profiles == 1
    assert list(_quarantine(wh)["location"]) == ["web_2024-03.jsonl:3"]
    ev = wh.to_pandas(wh.table("raw_events").order_by("event_id")).set_index("event_id")
    assert ev.loc["m2", "event"] == "Product Viewed"
    assert ev.loc["m2", "product_id"] == "SKU1"
    assert ev.loc["m2", "utm_source"] == "douyin"
    assert ev.loc["m3", "event"] == "Page Viewed"
    assert str(ev.loc["m3", "ts"]) == "2024-03-05 02:02:00"
    prof = wh.to_pandas(wh.table("raw_contacts"))
    assert prof.loc[0, "source"] == "web"
    assert prof.loc[0, "source_key"] == "U1"
    assert prof.loc[0, "email"] == "Wang@QQ.com"
    assert prof.loc[0, "name"] == "王伟"

    # Read again: its events, its profile version and its quarantined line go first
    rep = ingest(wh, reload=True).sources["web"]
    assert rep.forgotten == 3 + 1
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates, rep.profiles) == (5, 3, 1, 1, 1)
    assert (wh.count("raw_events"), wh.count("raw_contacts"), wh.count("quarantine")) == (3, 1, 1)


def _identify(n: int, user: str, ts: str, **traits: str) -> str:
    doc = {"type": "identify", "messageId": f"i{n}", "anonymousId": f"a-{user}", "userId": user}
    return json.dumps({**doc, "traits": traits, "timestamp": ts}, ensure_ascii=False)


def _versions(wh: Warehouse) -> list[tuple[str, str, str]]:
    t = wh.table("raw_contacts")
    got = wh.to_pandas(t.order_by(["source_key", "updated_at"]))
    return [
        (k, e, str(u)[11:16])
        for k, e, u in zip(got.source_key, got.email, got.updated_at, strict=True)
    ]


@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30])
def test_identify_calls_repeating_a_profile_add_no_version(tmp_path, monkeypatch, chunk_bytes):
    """A profile version per change, not per call: a call giving the profile of the user's
    previous call (same traits, or the same values written differently) adds nothing, in the
    same chunk or a later one, in the same run or a later one; a change, and a change back,
    each add one, so the latest version is the one in force."""
    monkeypatch.setattr(load_module, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(load_module.readers, "BLOCK_BYTES", 64)
    a, b = {"email": "a@x.cn", "name": "王伟"}, {"email": "b@x.cn", "name": "王伟"}
    (tmp_path / "web_2024-03.jsonl").write_text(
        "\n".join(
            [
                _identify(1, "U1", "2024-03-01T01:00:00Z", **a),
                _identify(2, "U2", "2024-03-01T01:30:00Z", **a),
                _identify(3, "U1", "2024-03-01T02:00:00Z", **a),
                _identify(4, "U1", "2024-03-01T03:00:00Z", **b),
                # the same values, keys in another order: the same profile
                _identify(5, "U1", "2024-03-01T04:00:00Z", name="王伟", email="b@x.cn"),
                _identify(6, "U1", "2024-03-01T05:00:00Z", **a),
            ]
        )
        + "\n"
    )
    (tmp_path / "web_2024-04.jsonl").write_text(
        _identify(7, "U1", "2024-04-01T06:00:00Z", **a)
        + "\n"
        + _identify(8, "U2", "2024-04-01T07:00:00Z", **b)
        + "\n"
    )
    wh = _project(tmp_path, [{"name": "web", "format": "segment", "path": "web_*.jsonl"}])
    rep = ingest(wh).sources["web"]
    assert (rep.read, rep.loaded, rep.profiles) == (8, 8, 5)
    assert _versions(wh) == [
        ("U1", "a@x.cn", "01:00"),
        ("U1", "b@x.cn", "03:00"),
        ("U1", "a@x.cn", "05:00"),
        ("U2", "a@x.cn", "01:30"),
        ("U2", "b@x.cn", "07:00"),
    ]
    # A later run: a repeat of the version in force adds nothing, a change adds one.
    (tmp_path / "web_2024-05.jsonl").write_text(
        _identify(9, "U1", "2024-05-01T08:00:00Z", **a)
        + "\n"
        + _identify(10, "U2", "2024-05-01T09:00:00Z", **a)
        + "\n"
    )
    rep = ingest(wh).sources["web"]
    assert (rep.read, rep.loaded, rep.profiles) == (2, 2, 1)
    assert _versions(wh)[-1] == ("U2", "a@x.cn", "09:00")
    assert len(_versions(wh)) == 6


@pytest.mark.parametrize(
    ("chunk_bytes", "block_bytes"), [(1, 1 << 26), (1, 64), (1 << 30, 1 << 26), (1 << 30, 64)]
)
def test_a_source_in_chunks_loads_as_in_one_pass(tmp_path, monkeypatch, chunk_bytes, block_bytes):
    """One block per chunk (chunk_bytes=1) gives the report and rows of one pass: a line
    repeated from an earlier file is a duplicate, the earlier file's copy is the one kept.
    With 64-byte blocks (one line each) the chunks end inside files, and each file is still
    recorded once, with all its rows."""
    monkeypatch.setattr(load_module, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(load_module.readers, "BLOCK_BYTES", block_bytes)
    lines = [json.dumps(e, ensure_ascii=False) for e in EVENTS]
    (tmp_path / "web_2024-03.jsonl").write_text("\n".join(lines[:2]) + "\n")
    (tmp_path / "web_2024-04.jsonl").write_text("\n".join([lines[1], "{broken", lines[2]]) + "\n")
    wh = _project(tmp_path, [{"name": "web", "format": "segment", "path": "web_*.jsonl"}])
    rep = ingest(wh).sources["web"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates) == (5, 3, 1, 1)
    assert rep.profiles == 1
    assert rep.files == ["web_2024-03.jsonl", "web_2024-04.jsonl"]
    ev = wh.to_pandas(wh.table("raw_events").order_by("event_id"))
    assert list(zip(ev["event_id"], ev["_file"], strict=True)) == [
        ("m1", "web_2024-03.jsonl"),
        ("m2", "web_2024-03.jsonl"),
        ("m3", "web_2024-04.jsonl"),
    ]
    files = wh.to_pandas(wh.table("ingested_files").order_by("file"))
    assert list(files["rows"]) == [2, 3]
    assert not {"_ingest_stage", "_ingest_parsed", "_ingest_typed"} & set(wh.con.list_tables())


def test_read_ahead_reads_one_chunk_ahead_in_another_thread():
    """While the caller holds chunk k, the reader has started on chunk k + 1 and no further
    (memory holds two chunks), in a thread of its own; the reader's error reaches the caller
    after the chunks read before it."""
    started: list[int] = []
    threads: set[str] = set()

    def chunks():
        for k in range(4):
            started.append(k)
            threads.add(threading.current_thread().name)
            yield load_module.Chunk(None, [(f"f{k}", load_module.ReadFile("fp", k))], [])
        raise SourceError("bad header", where="f4", fix="fix it")

    got = []
    with pytest.raises(SourceError, match="bad header"):
        for chunk in load_module._read_ahead(chunks()):
            time.sleep(0.05)  # the reader has had time to run further, if it would
            got.append([name for name, _ in chunk.files])
            assert started == list(range(min(len(got) + 1, 4)))
    assert got == [["f0"], ["f1"], ["f2"], ["f3"]]
    assert threading.current_thread().name not in threads


def test_parquet_and_sql_sources(tmp_path):
    df = pd.DataFrame({"sku": ["A", "B"], "title": ["杯子", "Mug"], "price": [12.5, -3.0]})
    df.to_parquet(tmp_path / "products.parquet")
    db = tmp_path / "erp.duckdb"
    con = ibis.duckdb.connect(str(db))
    con.create_table("items", ibis.memtable(df))
    con.disconnect()
    wh = _project(
        tmp_path,
        [
            {
                "name": "pq",
                "table": "products",
                "format": "parquet",
                "path": "products.parquet",
                "columns": {"product_id": "sku", "name": "title", "price": "price"},
            },
            {
                "name": "erp",
                "table": "products",
                "format": "sql",
                "connection": f"duckdb://{db}",
                "sql_table": "items",
                "columns": {"product_id": "sku", "name": "title", "price": "price"},
            },
        ],
    )
    rep = ingest(wh).to_dict()["sources"]
    for name in ("pq", "erp"):
        assert (rep[name]["read"], rep[name]["loaded"], rep[name]["quarantined"]) == (2, 1, 1)
    assert set(_quarantine(wh)["location"]) == {"products.parquet:2", "items:2"}


#: A JSONL export of orders: nested keys, numbers, arrays, and lines that are not objects.
ORDERS_JSONL = [
    '{"no": "J1", "buyer": {"email": "a@x.com", "id": "U1"}, "total": 12.50, "at": "2024-03-05 10:00"}',
    '{"no": "J2", "buyer": null, "total": "3", "at": "2024-03-05T02:00:00Z", "coupons": ["A", 1]}',
    "[1, 2]",
    '  {"no": "J3", "buyer": {"id": "U3", "tier": {"x": 1}}, "total": 7, "at": "2024-03-06"}',
    '{"no": "J4", "total": 1',
    "null",
    '{"no": "J5", "total": 2}',
    '{"no": "J1", "buyer": {"email": "a@x.com", "id": "U1"}, "total": 12.5, "at": "2024-03-05 10:00"}',
]


def test_jsonl_source_maps_keys_and_dotted_paths(tmp_path):
    """A ``jsonl`` source maps keys, or paths of keys joined by dots, onto canonical columns.
    Until 2026-12-07 any mapped jsonl source stopped the ingest with an Ibis traceback (the
    mapping looked for the keys as columns of the staged lines)."""
    (tmp_path / "orders.jsonl").write_text("\n".join(ORDERS_JSONL) + "\n")
    columns = {
        "order_id": "no",
        "email": "buyer.email",
        "user_id": "buyer.id",
        "amount": "total",
        "ordered_at": "at",
        "coupon_code": "coupons",
        "channel": "buyer.tier",
    }
    source = {"name": "shop", "table": "orders", "format": "jsonl", "path": "orders.jsonl"}
    wh = _project(tmp_path, [{**source, "columns": columns}])
    rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates) == (8, 3, 4, 1)
    q = _quarantine(wh)
    assert list(zip(q["location"], q["reason"], strict=True)) == [
        ("orders.jsonl:3", "not a JSON object"),
        ("orders.jsonl:5", "broken JSON"),
        ("orders.jsonl:6", "not a JSON object"),
        ("orders.jsonl:7", "missing required ordered_at"),
    ]
    assert q["raw"].iloc[1] == '{"no": "J4", "total": 1'
    got = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(got["order_id"]) == ["J1", "J2", "J3"]
    assert list(got["email"].fillna("-")) == ["a@x.com", "-", "-"]
    assert list(got["user_id"].fillna("-")) == ["U1", "-", "U3"]
    assert list(got["amount"]) == [12.5, 3.0, 7.0]
    assert list(got["ordered_at"].astype(str)) == [  # project zone Asia/Shanghai, unless Z
        "2024-03-05 02:00:00",
        "2024-03-05 02:00:00",
        "2024-03-05 16:00:00",
    ]
    assert list(got["coupon_code"].fillna("-")) == ["-", '["A",1]', "-"]
    assert list(got["channel"].fillna("-")) == ["-", "-", '{"x":1}']
    assert list(got["_line"]) == [1, 2, 4]


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("pyspark", marks=pytest.mark.spark)])
def test_a_json_array_file_loads_like_its_lines_would(tmp_path, backend):
    """The orders above as one pretty-printed JSON array (the broken one left out: an array
    cannot be read past it) load the same rows; each at the line it starts on.  Until
    2026-12-08 every line of such a file was quarantined as broken JSON.  Loading it again
    loads nothing.  The same on Spark, whose JSON reader gets elements of several lines."""
    elements = [json.loads(line) for line in ORDERS_JSONL if line != '{"no": "J4", "total": 1']
    (tmp_path / "orders.json").write_text(json.dumps(elements, indent=2, ensure_ascii=False))
    columns = {"order_id": "no", "user_id": "buyer.id", "amount": "total", "ordered_at": "at"}
    source = {"name": "shop", "table": "orders", "format": "jsonl", "path": "orders.json"}
    settings = make_settings(
        tmp_path, sources=[{**source, "columns": columns}], warehouse={"backend": backend}
    )
    wh = Warehouse.open(settings)
    rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates) == (7, 3, 3, 1)
    q = _quarantine(wh)
    assert list(q["reason"]) == [
        "not a JSON object",
        "not a JSON object",
        "missing required ordered_at",
    ]
    assert q["raw"].iloc[2] == '{\n    "no": "J5",\n    "total": 2\n  }'
    got = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(got["order_id"]) == ["J1", "J2", "J3"]
    assert list(got["user_id"].fillna("-")) == ["U1", "-", "U3"]
    lines = (tmp_path / "orders.json").read_text().splitlines()
    assert [lines[n - 1] for n in got["_line"]] == ["  {"] * 3  # where each element starts
    starts = [lines[int(loc.split(":")[1]) - 1].strip() for loc in q["location"]]
    assert starts == ["[", "null,", "{"]  # [1, 2], null, and J5 without its time
    assert ingest(wh).sources["shop"].read == 0


def test_jsonl_mapping_errors_name_the_source(tmp_path):
    (tmp_path / "orders.jsonl").write_text(ORDERS_JSONL[0] + "\n")
    source = {"name": "shop", "table": "orders", "format": "jsonl", "path": "orders.jsonl"}
    required = {"order_id": "no", "ordered_at": "at"}
    wh = _project(tmp_path, [{**source, "columns": {**required, "emial": "buyer.email"}}])
    with pytest.raises(
        SourceError, match="maps unknown orders column 'emial'; did you mean 'email'"
    ):
        ingest(wh)
    for clash in (
        {**required, "email": "buyer.email", "user_id": "buyer"},
        {**required, "user_id": "buyer", "email": "buyer.email"},
    ):
        wh = _project(tmp_path / "b", [{**source, "path": "../orders.jsonl", "columns": clash}])
        with pytest.raises(SourceError, match="'buyer' is mapped both as a value and as an obj"):
            ingest(wh)
        assert wh.count("raw_orders") == 0
    wh = _project(
        tmp_path / "c",
        [{**source, "path": "../orders.jsonl", "columns": {**required, "email": "buyer..email"}}],
    )
    with pytest.raises(SourceError, match=r"'buyer\.\.email' \(mapped to email\) has an empty key"):
        ingest(wh)


def test_typed_parquet_columns_are_read_as_their_text(tmp_path):
    """Until 2026-12-07 a Parquet timestamp with a zone other than UTC was written as its wall
    time followed by Z (eight hours late for Shanghai), a list or struct column stopped the
    ingest (PyArrow cannot cast it to text), and a mapped column missing from the file was
    an Ibis traceback.  Only the mapped columns are read."""
    shanghai = pa.timestamp("ms", tz="Asia/Shanghai")
    utc_10h = [datetime(2024, 3, 5, 10, 0, 0, 123000), datetime(2024, 3, 5, 23, 30), None]
    table = pa.table(
        {
            "no": pa.array([1, 2, 3], pa.int64()),
            "at": pa.array(utc_10h, shanghai),  # stored as UTC instants, shown in Shanghai
            "total": pa.array([12.5, None, 3.0]),
            "coupons": pa.array([["A", "B"], None, []], pa.list_(pa.string())),
            "buyer": pa.array(
                [{"tier": 1}, {"tier": None}, None], pa.struct([("tier", pa.int8())])
            ),
            "paid": pa.array([True, False, None]),
            "unread": pa.array([b"\xff", b"\xfe", b"\x00"], pa.binary()),  # not text: not mapped
        }
    )
    pq.write_table(table, tmp_path / "orders.parquet")
    columns = {
        "order_id": "no",
        "ordered_at": "at",
        "amount": "total",
        "coupon_code": "coupons",
        "channel": "buyer",
        "status": "paid",
    }
    source = {"name": "pq", "table": "orders", "format": "parquet", "path": "orders.parquet"}
    wh = _project(tmp_path, [{**source, "columns": columns}])
    rep = ingest(wh).sources["pq"]
    assert (rep.read, rep.loaded, rep.quarantined) == (3, 2, 1)
    q = _quarantine(wh)
    assert list(q["location"]) == ["orders.parquet:3"]
    assert list(q["reason"]) == ["missing required ordered_at"]
    assert list(q["raw"]) == ["3,,3,[],,"]  # the mapped columns, in mapping order
    got = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    # the milliseconds are kept too (dropped from forms with an offset until 2026-12-07)
    assert list(got["ordered_at"]) == [
        pd.Timestamp("2024-03-05 10:00:00.123"),
        pd.Timestamp("2024-03-05 23:30:00"),
    ]
    assert list(got["coupon_code"].fillna("-")) == ['["A","B"]', "-"]
    assert list(got["channel"]) == ['{"tier":1}', '{"tier":null}']
    assert list(got["status"]) == ["true", "false"]
    assert list(got["amount"].fillna(-1)) == [12.5, -1]

    wrong = {**columns, "order_id": "number"}
    wh = _project(tmp_path / "b", [{**source, "path": "../orders.parquet", "columns": wrong}])
    with pytest.raises(SourceError, match="column 'number' \\(mapped to order_id\\) is not in"):
        ingest(wh)


def test_a_repeated_csv_column_name_is_numbered_and_refused_when_mapped(tmp_path):
    """A header naming a column twice is read as pandas reads it (``note``, ``note.1``);
    mapping the repeated name is an error, since which column is meant cannot be known.
    Until 2026-12-07 any repeated name stopped the ingest with a PyArrow traceback."""
    header = "order_no,note,account_id,order_time,note,total_amount,currency,note.1\n"
    (tmp_path / "orders.csv").write_text(header + "O1,a,U1,2024-03-05 10:00:00,b,1,CNY,c\n")
    shop = _orders_source("orders.csv")
    wh = _project(tmp_path, [shop])
    rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded) == (1, 1)
    wh = _project(
        tmp_path / "b",
        [
            {
                **shop,
                "path": "../orders.csv",
                "columns": {**shop["columns"], "coupon_code": "note.2"},
            }
        ],
    )
    ingest(wh)
    assert list(wh.to_pandas(wh.table("raw_orders"))["coupon_code"]) == ["b"]
    wh = _project(
        tmp_path / "c",
        [{**shop, "path": "../orders.csv", "columns": {**shop["columns"], "coupon_code": "note"}}],
    )
    with pytest.raises(SourceError, match="column 'note' appears 2 times in the header of orders"):
        ingest(wh)


@pytest.mark.parametrize("block_bytes", [1 << 26, 40])
def test_compressed_files_are_read_as_their_content(tmp_path, monkeypatch, block_bytes):
    """``.gz``, ``.bz2`` and ``.xz`` files are read through a decompressor, with the same
    line numbers, quarantine and reconciliation as plain ones; their fingerprint is that of
    their bytes on disk, so a second run loads nothing.  Small blocks cut lines across reads
    and make a line longer than a block.  Until 2026-12-07 a compressed file was read as its
    compressed bytes (a CSV header of binary noise)."""
    import bz2
    import gzip
    import lzma

    monkeypatch.setattr(load_module.readers, "BLOCK_BYTES", block_bytes)
    (tmp_path / "orders.csv.gz").write_bytes(gzip.compress(ORDERS_CSV.encode()))
    gbk = (
        "order_no,account_id,order_time,total_amount,currency\nG1,王伟,2024-03-05 10:00:00,5,CNY\n"
    )
    (tmp_path / "pos.csv.bz2").write_bytes(bz2.compress(gbk.encode("gbk")))
    lines = [json.dumps(e, ensure_ascii=False) for e in EVENTS]
    lines.insert(1, '{"type": "track", "messageId": "m9", "event": "Broken"')
    (tmp_path / "web.jsonl.xz").write_bytes(lzma.compress("\n".join(lines).encode()))  # no final \n
    pos = {**_orders_source("pos.csv.bz2"), "name": "pos", "encoding": "gbk"}
    web = {"name": "web", "format": "segment", "path": "web.jsonl.xz"}
    wh = _project(tmp_path, [_orders_source("orders.csv.gz"), pos, web])
    rep = ingest(wh).sources
    # as test_csv_quarantine_reconciles_and_locations reads the same rows uncompressed
    assert (rep["shop"].read, rep["shop"].loaded, rep["shop"].quarantined) == (7, 3, 3)
    assert rep["shop"].duplicates == 1
    assert (rep["pos"].read, rep["pos"].loaded) == (1, 1)
    assert (rep["web"].read, rep["web"].loaded, rep["web"].quarantined) == (4, 3, 1)
    assert list(_quarantine(wh)["location"]) == [
        "orders.csv.gz:4",
        "orders.csv.gz:5",
        "orders.csv.gz:8",
        "web.jsonl.xz:2",
    ]
    orders = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(orders["order_id"]) == ["G1", "O1", "O2", "O6"]
    assert list(orders["user_id"]) == ["王伟", "U1", "U2", "U6"]
    assert sorted(wh.to_pandas(wh.table("raw_events"))["event_id"]) == ["m1", "m2", "m3"]
    files = wh.to_pandas(wh.table("ingested_files")).set_index("file")["fingerprint"]
    for name in ("orders.csv.gz", "pos.csv.bz2", "web.jsonl.xz"):  # the bytes on disk
        on_disk = hashlib.blake2b((tmp_path / name).read_bytes(), digest_size=16).hexdigest()
        assert files[name] == on_disk
    again = ingest(wh).to_dict()["total"]
    assert (again["read"], again["loaded"]) == (0, 0)


def test_a_compressed_file_cut_short_is_a_clear_error(tmp_path):
    import gzip

    whole = gzip.compress((ORDERS_CSV * 50).encode())
    (tmp_path / "orders.csv.gz").write_bytes(whole[: len(whole) // 2])
    wh = _project(tmp_path, [_orders_source("orders.csv.gz")])
    with pytest.raises(SourceError, match=r"cannot read orders\.csv\.gz: Compressed file ended"):
        ingest(wh)
    assert wh.count("ingested_files") == 0


#: The members workbook, by 1-based sheet row: a first sheet that is not the data (as exports
#: often have), then a title row and a blank one before the header (row 3).
MEMBER_SHEETS: dict[str, dict[int, list]] = {
    "说明": {1: ["exported 2024-03-07"]},
    "会员": {
        1: ["会员名单 2024-03"],
        3: ["会员卡号", "姓名", "手机号", "开卡时间", "积分", "VIP"],
        4: ["M001", "王伟", 13800138000, datetime(2024, 3, 5, 10, 0), 12.5, True],
        # row 5: blank, not a row
        6: ["M002", "Li", "+86 139-0000-0000", date(2024, 3, 6), 100.0, False],
        7: ["M003", "Extra", None, None, None, None, "stray"],  # beyond the header
        8: ["M004"],  # a short row
        9: ["M005", "Bad", None, "someday"],  # unparseable signup_at
    },
}
#: The same workbook in Excel 97-2003 form, written once by xlwt 1.3.0 (no library here
#: writes .xls): tests/data/excel/members.xls.
MEMBERS_XLS = Path(__file__).resolve().parents[1] / "data" / "excel" / "members.xls"


def _workbook(path: Path, sheets: dict[str, dict[int, list]], xls: Path) -> None:
    """``sheets`` as ``.xlsx`` (openpyxl, which stores a text such as ``#N/A`` as an error
    cell), ``.xlsm`` (the same package declared macro-enabled, as Excel saves one), ``.ods``,
    or ``.xls`` (the stored copy ``xls``)."""
    if path.suffix == ".xls":
        path.write_bytes(xls.read_bytes())
    elif path.suffix == ".ods":
        _ods_workbook(path, sheets)
    else:
        import openpyxl

        book = openpyxl.Workbook()
        book.remove(book.active)
        for title, rows in sheets.items():
            sheet = book.create_sheet(title)
            for r, values in rows.items():
                for c, value in enumerate(values, start=1):
                    sheet.cell(r, c, value)
        book.save(path)
        if path.suffix == ".xlsm":
            import zipfile

            with zipfile.ZipFile(path) as package:
                parts = {n: package.read(n) for n in package.namelist()}
            types = parts["[Content_Types].xml"]
            macro = b"application/vnd.ms-excel.sheet.macroEnabled.main+xml"
            parts["[Content_Types].xml"] = types.replace(
                b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                macro,
            )
            assert macro in parts["[Content_Types].xml"]
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
                for name, data in parts.items():
                    package.writestr(name, data)


def _ods_workbook(path: Path, sheets: dict[str, dict[int, list]]) -> None:
    """An OpenDocument spreadsheet with typed cells, written as its zip of XML (no library
    here writes .ods): strings, floats, booleans, dates and date-times, and formula errors
    (:data:`FORMULA_ERRORS`)."""
    import zipfile
    from xml.sax.saxutils import escape, quoteattr

    def cell(value: object) -> str:
        if value is None:
            return "<table:table-cell/>"
        if isinstance(value, str) and value in FORMULA_ERRORS:  # as LibreOffice stores one
            kind = 'office:value-type="float" office:value="0" calcext:value-type="error"'
        elif isinstance(value, bool):
            kind = f'office:value-type="boolean" office:boolean-value="{str(value).lower()}"'
        elif isinstance(value, int | float):
            kind = f'office:value-type="float" office:value="{value}"'
        elif isinstance(value, date):  # a datetime is a date too
            kind = f'office:value-type="date" office:date-value="{value.isoformat()}"'
        else:
            kind = 'office:value-type="string"'
        return f"<table:table-cell {kind}><text:p>{escape(str(value))}</text:p></table:table-cell>"

    tables = []
    for title, rows in sheets.items():
        xml_rows = [
            "<table:table-row>"
            + "".join(cell(v) for v in rows.get(r, [None]))
            + "</table:table-row>"
            for r in range(1, max(rows) + 1)
        ]
        tables.append(
            f"<table:table table:name={quoteattr(title)}>{''.join(xml_rows)}</table:table>"
        )
    ns = {
        "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
        "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
        "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
        "calcext": "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0",
    }
    xmlns = " ".join(f'xmlns:{k}="{v}"' for k, v in ns.items())
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {xmlns} '
        f'office:version="1.2"><office:body><office:spreadsheet>{"".join(tables)}'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    mime = "application/vnd.oasis.opendocument.spreadsheet"
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
        '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mime}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", mime)  # first and stored, as the format asks
        z.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)


@pytest.mark.parametrize("suffix", ["xlsx", "xlsm", "xls", "ods"])
def test_an_excel_sheet_is_a_source(tmp_path, suffix):
    """A sheet of a workbook (``.xlsx``, macro-enabled ``.xlsm``, Excel 97-2003's ``.xls``,
    OpenDocument's ``.ods``) is read like a CSV file: its first row with a value names the
    columns, a row is located by its row number in the sheet, and numbers, dates and
    booleans become the text the typing reads.  (Until 2026-12-07 only ``.xlsx`` was
    tested, and until 2026-12-08 not ``.xlsm``.)"""
    name = f"members.{suffix}"
    _workbook(tmp_path / name, MEMBER_SHEETS, MEMBERS_XLS)
    columns = {"source_key": "会员卡号", "name": "姓名", "phone": "手机号", "signup_at": "开卡时间"}
    source = {"name": "pos", "table": "contacts", "format": "excel", "path": name}
    wh = _project(tmp_path, [{**source, "sheet": "会员", "header_row": 3, "columns": columns}])
    rep = ingest(wh).sources["pos"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.reconciled) == (5, 3, 2, True)
    q = _quarantine(wh)
    assert list(zip(q["location"], q["reason"], strict=True)) == [
        (f"{name}:7", "wrong number of fields: expected 6, found 7"),
        (f"{name}:9", "unparseable signup_at: 'someday'"),
    ]
    got = wh.to_pandas(wh.table("raw_contacts").order_by("source_key"))
    assert list(got["source_key"]) == ["M001", "M002", "M004"]
    assert list(got["phone"].fillna("-")) == ["13800138000", "+86 139-0000-0000", "-"]
    assert list(got["signup_at"].astype(str)) == [  # wall-clock time in Asia/Shanghai
        "2024-03-05 02:00:00",
        "2024-03-05 16:00:00",
        "NaT",
    ]
    assert list(got["_line"]) == [4, 6, 8]
    assert ingest(wh).sources["pos"].read == 0  # the same workbook is not read again

    for other in ({}, {"sheet": "会员"}):  # the first sheet by default; the title row
        wh = _project(
            tmp_path / "b", [{**source, **other, "path": f"../{name}", "columns": columns}]
        )
        with pytest.raises(
            SourceError, match="column '会员卡号' \\(mapped to source_key\\) is not in"
        ):
            ingest(wh)
    wh = _project(tmp_path / "c", [{**source, "path": f"../{name}", "sheet": "Members"}])
    with pytest.raises(SourceError, match=rf"members\.{suffix} has no sheet 'Members'"):
        ingest(wh)


#: Cell texts that stand for a formula error in the workbooks these tests write.
FORMULA_ERRORS = ("#DIV/0!", "#N/A", "#REF!", "#VALUE!")
#: A price list by 1-based sheet row: column A left blank, a title row, the header on row 3,
#: formula errors in mapped and unmapped columns, and one on another sheet.
PRICE_SHEETS: dict[str, dict[int, list]] = {
    "价格": {
        1: [None, "价格表 2024-03"],
        3: [None, "sku", "price", "note"],
        4: [None, "A", 9.5, "ok"],
        5: [None, "B", "#DIV/0!", "x"],
        6: [None, "C", 5, "#N/A"],
        7: [None, "D", "#N/A", "#REF!"],
        8: [None, "E", 7, None],
    },
    "notes": {1: ["#VALUE!"]},
}
#: The same workbook in Excel 97-2003 form, written once by xlwt 1.3.0 (its error cells as
#: constants): tests/data/excel/prices.xls.
PRICES_XLS = MEMBERS_XLS.with_name("prices.xls")


@pytest.mark.parametrize("suffix", ["xlsx", "xlsm", "xls", "ods"])
def test_formula_errors_in_mapped_cells_are_quarantined(tmp_path, suffix):
    """A cell holding a formula error (``#N/A`` from a lookup, ``#DIV/0!``) in a mapped
    column quarantines its row, named; python-calamine reads such a cell as empty (as the
    number LibreOffice stored with it, in an ``.ods``), so until 2026-12-07 a ``#DIV/0!``
    price loaded as a missing price.  An error in a column that is not mapped, or on another
    sheet, does not matter.  Column A is blank, which calamine leaves out of its rows: until
    2026-12-08 the errors of such an ``.xlsx`` sheet were taken one column to the right.
    (Until then ``.xls`` and ``.ods`` were not searched.)"""
    name = f"prices.{suffix}"
    _workbook(tmp_path / name, PRICE_SHEETS, PRICES_XLS)
    columns = {"product_id": "sku", "price": "price"}
    source = {"name": "prices", "table": "products", "format": "excel", "path": name}
    wh = _project(tmp_path, [{**source, "header_row": 3, "columns": columns}])
    rep = ingest(wh).sources["prices"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.reconciled) == (5, 3, 2, True)
    q = _quarantine(wh)
    assert list(zip(q["location"], q["reason"], q["raw"], strict=True)) == [
        (f"{name}:5", "cell error #DIV/0! in price", "B,#DIV/0!,x"),
        (f"{name}:7", "cell error #N/A in price", "D,#N/A,#REF!"),
    ]
    got = wh.to_pandas(wh.table("raw_products").order_by("product_id"))
    assert list(got["product_id"]) == ["A", "C", "E"] and list(got["price"]) == [9.5, 5, 7]


def test_wrong_mapping_and_missing_file_are_clear_errors(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    bad = _orders_source()
    bad["columns"] = {**bad["columns"], "amount": "total_amt"}
    wh = _project(tmp_path, [bad])
    with pytest.raises(SourceError) as err:
        ingest(wh)
    assert "total_amt" in str(err.value) and "total_amount" in str(err.value)
    assert "shop" in str(err.value)

    wh2 = _project(tmp_path / "p2", [_orders_source("nowhere/*.csv")])
    with pytest.raises(SourceError) as err2:
        ingest(wh2)
    assert "nowhere" in str(err2.value)

    typo = _orders_source()
    typo["columns"] = {**typo["columns"], "amout": "total_amount"}
    wh3 = _project(tmp_path, [typo])
    with pytest.raises(SourceError, match="did you mean 'amount'"):
        ingest(wh3)


def test_progress_counts_the_files_as_they_land(tmp_path):
    """The bar moves per file (a SQL table counts as one), not per source: it stood still
    through the events, most of a large run.  A run with nothing new still completes it."""
    for n in (1, 2, 3):  # three contents: a copy of a file is loaded once
        (tmp_path / f"orders_{n}.csv").write_text(ORDERS_CSV + f"O9{n},U9,2024-03-05,9,CNY\n")
    (tmp_path / "lines.csv").write_text(LINES_CSV)
    lines = {"name": "pos", "table": "order_items", "format": "csv", "path": "lines.csv"}
    lines["columns"] = {"order_id": "小票号", "product_id": "商品编码", "quantity": "数量"}
    wh = _project(tmp_path, [_orders_source("orders_*.csv"), lines])
    calls: list[tuple[str, int, int]] = []
    ingest(wh, progress=lambda *call: calls.append(call))
    assert calls[0] == ("ingest", 0, 4) and calls[-1] == ("ingest", 4, 4)
    # the three order files are read in one chunk, and land together
    assert [done for _, done, _ in calls[1:-1]] == [3, 4]
    calls.clear()
    ingest(wh, progress=lambda *call: calls.append(call))
    assert calls == [("ingest", 0, 0), ("ingest", 1, 1)]


def test_sources_are_listed_before_any_loads_and_read_one_after_another(tmp_path, monkeypatch):
    """Every source's files are listed before the first chunk loads, so a later source
    without files stops ingest with nothing loaded; a later source's bad header, found by
    the reader while the chunk before it loads, stops it with the earlier sources committed
    and recorded, and a re-run loads only what is left."""
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    lines = [json.dumps(e, ensure_ascii=False) for e in EVENTS]
    (tmp_path / "web_2024-03.jsonl").write_text("\n".join(lines) + "\n")
    web = {"name": "web", "format": "segment", "path": "web_*.jsonl"}
    late = {**_orders_source("late*.csv"), "name": "late"}
    monkeypatch.setattr(load_module, "CHUNK_BYTES", 1)  # a chunk per file
    wh = _project(tmp_path, [_orders_source("orders.csv"), web, late])
    with pytest.raises(SourceError, match=r"'late': no file matches 'late\*\.csv'"):
        ingest(wh)
    assert wh.count("raw_orders") == 0 and wh.count("raw_events") == 0
    assert wh.count("ingested_files") == 0

    (tmp_path / "late.csv").write_text(ORDERS_CSV.replace("total_amount", "total"))
    with pytest.raises(SourceError, match=r"'late'.*'total_amount'"):
        ingest(wh)
    assert sorted(_files(wh)["file"]) == ["orders.csv", "web_2024-03.jsonl"]
    assert wh.count("raw_events") == len(EVENTS)

    (tmp_path / "late.csv").write_text(ORDERS_CSV)
    rep = ingest(wh).sources
    assert [(s.source, s.files, s.skipped_files) for s in rep.values()] == [
        ("shop", [], ["orders.csv"]),
        ("web", [], ["web_2024-03.jsonl"]),
        ("late", ["late.csv"], []),
    ]
    late_counts = (rep["late"].read, rep["late"].loaded, rep["late"].quarantined)
    assert late_counts == (7, 3, 3) and rep["late"].reconciled


def test_a_file_gone_after_listing_is_a_clear_error_and_the_rerun_recovers(tmp_path, monkeypatch):
    """A file removed between the listing and the reading (an export job rotating its
    files) stops ingest with a SourceError naming the source and the file, from the reader
    thread as from the listing; the files loaded before it stay loaded, and a re-run once
    the file is back loads it and reconciles."""
    lines = [json.dumps(e, ensure_ascii=False) for e in EVENTS]
    (tmp_path / "web_2024-03.jsonl").write_text("\n".join(lines[:2]) + "\n")
    (tmp_path / "web_2024-04.jsonl").write_text(lines[2] + "\n")
    wh = _project(tmp_path, [{"name": "web", "format": "segment", "path": "web_*.jsonl"}])
    gone = tmp_path / "web_2024-04.jsonl"
    kept = gone.read_bytes()
    new_files = load_module._new_files

    def listed_then_removed(*args: object) -> list:
        found = new_files(*args)  # type: ignore[arg-type]
        gone.unlink()
        return found

    monkeypatch.setattr(load_module, "_new_files", listed_then_removed)
    monkeypatch.setattr(load_module, "CHUNK_BYTES", 1)  # a chunk per file
    with pytest.raises(SourceError) as err:
        ingest(wh)
    message = str(err.value)
    assert "'web'" in message and "web_2024-04.jsonl" in message
    assert "No such file" in message and str(gone) in message
    assert list(_files(wh)["file"]) == ["web_2024-03.jsonl"]
    assert wh.count("raw_events") == 2

    monkeypatch.setattr(load_module, "_new_files", new_files)
    listed = load_module.readers.find_files
    monkeypatch.setattr(load_module.readers, "find_files", lambda *a: [*listed(*a), gone])
    with pytest.raises(SourceError, match=r"cannot read web_2024-04\.jsonl"):
        ingest(wh)  # listed, gone before its size is taken

    monkeypatch.setattr(load_module.readers, "find_files", listed)
    gone.write_bytes(kept)
    rep = ingest(wh).sources["web"]
    assert (rep.read, rep.loaded, rep.files, rep.skipped_files) == (
        1,
        1,
        ["web_2024-04.jsonl"],
        ["web_2024-03.jsonl"],
    )
    assert wh.count("raw_events") == 3


@pytest.mark.parametrize("block_bytes", [1 << 26, 48])
def test_bytes_not_valid_utf8_are_quarantined_line_by_line(tmp_path, monkeypatch, block_bytes):
    """A UTF-8 source with bytes that are not UTF-8 (a Latin-1 or GBK export declared as
    UTF-8, a character cut in two) loads its good lines and quarantines each broken one
    with its location and text; until 2026-12-06 PyArrow (CSV) or DuckDB (JSONL) stopped
    the whole ingest with a traceback.  Small blocks put a broken line alone in a block."""
    monkeypatch.setattr(load_module.readers, "BLOCK_BYTES", block_bytes)
    header = b"order_no,account_id,order_time,total_amount,currency\n"
    lines = [
        b"O1,U1,2024-03-05 10:00:00,1,CNY\n",
        b"O2,U\xff2,2024-03-05 10:00:00,2,CNY\n",  # line 3: Latin-1 byte
        "O3,王3,2024-03-05 10:00:00,3,CNY\r\n".encode(),
        b"O4,U\xe4\xbd,2024-03-05 10:00:00,4,CNY\n",  # line 5: a character cut short
        b"\n",
        b"O6,U6,2024-03-05 10:00:00,6,CNY",  # no final line break
    ]
    (tmp_path / "orders.csv").write_bytes(header + b"".join(lines))
    events = [json.dumps(e, ensure_ascii=False).encode() for e in EVENTS]
    events[1] = events[1].replace(b"Product Viewed", b"Product \xc3Viewed")
    (tmp_path / "web.jsonl").write_bytes(b"\n".join(events) + b"\n")
    wh = _project(
        tmp_path,
        [_orders_source("orders.csv"), {"name": "web", "format": "segment", "path": "web.jsonl"}],
    )
    rep = ingest(wh).sources
    shop, web = rep["shop"], rep["web"]
    assert (shop.read, shop.loaded, shop.quarantined, shop.reconciled) == (5, 3, 2, True)
    assert (web.read, web.loaded, web.quarantined, web.reconciled) == (3, 2, 1, True)
    q = _quarantine(wh)
    # with the encoding each line reads in (readers.reads_as): a character cut in two reads
    # as one GBK character, and a lone UTF-8 lead byte as a Latin-1 letter
    assert list(zip(q["location"], q["reason"], strict=True)) == [
        ("orders.csv:3", "bytes not valid utf-8: reads as cp1252"),
        ("orders.csv:5", "bytes not valid utf-8: reads as gbk"),
        ("web.jsonl:2", "bytes not valid utf-8: reads as cp1252"),
    ]
    assert q["raw"].iloc[0] == "O2,U\ufffd2,2024-03-05 10:00:00,2,CNY"
    orders = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(orders["order_id"]) == ["O1", "O3", "O6"]
    assert list(orders["user_id"]) == ["U1", "王3", "U6"]
    assert sorted(wh.to_pandas(wh.table("raw_events"))["event_id"]) == ["m1", "m3"]


@pytest.mark.parametrize("block_bytes", [1 << 26, 48])
def test_bytes_beyond_ascii_in_an_ascii_source_are_quarantined(tmp_path, monkeypatch, block_bytes):
    """An ASCII source is read as it is, like UTF-8, but a byte above 127 is not ASCII: the
    line holding it is quarantined, its text shown as UTF-8.  Until 2026-12-07 such a source
    was checked as UTF-8 only, so a UTF-8 name passed into an "ascii" source unseen."""
    monkeypatch.setattr(load_module.readers, "BLOCK_BYTES", block_bytes)
    header = b"order_no,account_id,order_time,total_amount,currency\n"
    lines = [
        b"O1,U1,2024-03-05 10:00:00,1,CNY\n",
        "O2,Zo\u00eb,2024-03-05 10:00:00,2,CNY\n".encode(),  # line 3: valid UTF-8, not ASCII
        b"O3,U\xff3,2024-03-05 10:00:00,3,CNY\n",  # line 4: not even UTF-8
        b"O4,U4,2024-03-05 10:00:00,4,CNY\n",
    ]
    (tmp_path / "orders.csv").write_bytes(header + b"".join(lines))
    events = [json.dumps(e).encode() for e in EVENTS]  # non-ASCII escaped as \u738b\u4f1f
    events[1] = events[1].replace(b"Product Viewed", "Product Viewed \u2728".encode())
    (tmp_path / "web.jsonl").write_bytes(b"\n".join(events) + b"\n")
    web = {"name": "web", "format": "segment", "path": "web.jsonl", "encoding": "ascii"}
    wh = _project(tmp_path, [{**_orders_source("orders.csv"), "encoding": "ascii"}, web])
    rep = ingest(wh).sources
    shop, web_rep = rep["shop"], rep["web"]
    assert (shop.read, shop.loaded, shop.quarantined, shop.reconciled) == (4, 2, 2, True)
    assert (web_rep.read, web_rep.loaded, web_rep.quarantined) == (3, 2, 1)
    q = _quarantine(wh)
    assert list(zip(q["location"], q["reason"], strict=True)) == [
        ("orders.csv:3", "bytes not valid ascii: reads as utf-8"),
        ("orders.csv:4", "bytes not valid ascii: reads as cp1252"),
        ("web.jsonl:2", "bytes not valid ascii: reads as utf-8"),
    ]
    assert list(q["raw"].iloc[:2]) == [
        "O2,Zo\u00eb,2024-03-05 10:00:00,2,CNY",
        "O3,U\ufffd3,2024-03-05 10:00:00,3,CNY",
    ]
    orders = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(orders["order_id"]) == ["O1", "O4"]
    assert sorted(wh.to_pandas(wh.table("raw_events"))["event_id"]) == ["m1", "m3"]
    assert list(wh.to_pandas(wh.table("raw_contacts"))["name"]) == ["王伟"]


def test_a_file_that_is_not_parquet_is_a_clear_error(tmp_path):
    (tmp_path / "products.parquet").write_text("sku,title\nA,Mug\n")
    source = {
        "name": "pq",
        "table": "products",
        "format": "parquet",
        "path": "products.parquet",
        "columns": {"product_id": "sku", "name": "title"},
    }
    wh = _project(tmp_path, [source])
    with pytest.raises(SourceError, match=r"products\.parquet is not a readable parquet file"):
        ingest(wh)
    assert wh.count("ingested_files") == 0


def test_a_repeated_row_keeps_the_first_read_and_rejects_keep_their_text(tmp_path, monkeypatch):
    """Files are read in name order, lines in number order (line 9 before line 10, not as
    text); the staged rows are cut into small batches, so the row kept and a rejected row's
    text are found across batches by position."""
    monkeypatch.setattr(load_module, "STAGE_BATCH_ROWS", 3)
    header = "order_no,account_id,order_time,total_amount,currency\n"
    filler = "".join(f"O{i},U{i},2024-03-05 10:00:00,{i},CNY\n" for i in range(10, 17))
    repeated = "R1,U9,2024-03-06 10:00:00,9.90,CNY\n"
    (tmp_path / "orders_a.csv").write_text(header + filler + repeated + repeated)
    (tmp_path / "orders_b.csv").write_text(header + repeated + "B2,U8,someday,8,CNY\n")
    wh = _project(tmp_path, [_orders_source()])
    rep = ingest(wh).sources["shop"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates) == (11, 8, 1, 2)
    kept = wh.to_pandas(wh.table("raw_orders").filter(ibis._.order_id == "R1"))
    assert list(zip(kept["_file"], kept["_line"], strict=True)) == [("orders_a.csv", 9)]
    q = _quarantine(wh)
    assert list(q["location"]) == ["orders_b.csv:3"]
    assert list(q["raw"]) == ["B2,U8,someday,8,CNY"]
    assert q["reason"][0].startswith("unparseable ordered_at")
    wh.close()


def test_an_empty_export_loads_nothing_and_is_not_read_again(tmp_path):
    """A day's export with nothing in it, not even its header (a 0-byte file), is read as
    no rows beside the files that have some, and recorded, so a re-run skips it.  Until
    2026-12-07 it stopped the source: the mapped columns were "not in the file"."""
    (tmp_path / "orders_1.csv").write_text(ORDERS_CSV)
    (tmp_path / "orders_2.csv").write_bytes(b"")
    wh = _project(tmp_path, [_orders_source()])
    first = ingest(wh).sources["shop"]
    assert first.reconciled and first.files == ["orders_1.csv", "orders_2.csv"]
    assert first.read == 7  # the rows of orders_1.csv (its blank line is not a row)
    files = wh.to_pandas(wh.table("ingested_files").order_by("file"))
    assert list(zip(files["file"], files["rows"], strict=True))[1] == ("orders_2.csv", 0)
    again = ingest(wh).sources["shop"]
    assert (again.read, again.skipped_files) == (0, ["orders_1.csv", "orders_2.csv"])


def test_parquet_byte_strings_are_read_as_text_and_uuids_as_their_text(tmp_path):
    """Hive and Impala store text as byte strings without saying so; they are read as UTF-8
    (as Spark's ``binaryAsString``), and a row whose bytes are not UTF-8 goes to quarantine
    at its row number; a UUID column becomes the usual text, and large strings load as any
    other.  Until 2026-12-07 a byte string that was not UTF-8 stopped the source ("not a
    readable parquet file"), and a large-string column a traceback when a row was
    quarantined."""
    import uuid

    ids = [uuid.UUID(int=(7 << 120) + i) for i in range(3)]
    table = pa.table(
        {
            "id": pa.array([u.bytes for u in ids], pa.uuid()),
            "at": pa.array(["2024-03-05 10:00:00", "2024-03-05 11:00:00", None], pa.large_string()),
            "mail": pa.array([b"a@x.cn", b"b\xff@x.cn", "王@x.cn".encode()], pa.binary()),
        }
    )
    pq.write_table(table, tmp_path / "orders.parquet")
    columns = {"order_id": "id", "ordered_at": "at", "email": "mail"}
    source = {"name": "pq", "table": "orders", "format": "parquet", "path": "orders.parquet"}
    wh = _project(tmp_path, [{**source, "columns": columns}])
    rep = ingest(wh).sources["pq"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.reconciled) == (3, 1, 2, True)
    q = _quarantine(wh)
    assert list(zip(q["location"], q["reason"], q["raw"], strict=True)) == [
        (
            "orders.parquet:2",
            "bytes not valid utf-8 in mail",
            f"{ids[1]},2024-03-05 11:00:00,b\ufffd@x.cn",
        ),
        ("orders.parquet:3", "missing required ordered_at", f"{ids[2]},,王@x.cn"),
    ]
    got = wh.to_pandas(wh.table("raw_orders"))
    assert list(got["order_id"]) == ["07000000-0000-0000-0000-000000000000"]
    assert list(got["email"]) == ["a@x.cn"]


@pytest.mark.parametrize(("sep", "shown"), [(";", ";"), ("\t", "\\t"), ("|", "|")])
def test_a_csv_file_with_another_delimiter_names_it_in_the_error(tmp_path, sep, shown):
    """Excel in a locale with a decimal comma writes ';' between columns.  Read with ',', the
    header is one column; the error names the delimiter to set instead of listing the whole
    header as the one column the file has."""
    (tmp_path / "orders.csv").write_text(ORDERS_CSV.replace(",", sep))
    wh = _project(tmp_path, [_orders_source("orders.csv")])
    with pytest.raises(SourceError, match=f'look separated by "{re.escape(shown)}"') as err:
        ingest(wh)
    assert f'delimiter = "{shown}"' in err.value.fix
    assert ('decimal = ","' in err.value.fix) == (sep == ";")
    right = {**_orders_source("orders.csv"), "delimiter": sep}
    rep = ingest(_project(tmp_path / "b", [{**right, "path": "../orders.csv"}])).sources["shop"]
    assert (rep.read, rep.reconciled) == (7, True)


#: An order export as Excel writes it in a German locale: ';' between columns, cp1252, a
#: decimal comma with points grouping thousands, and dates day first.
EXPORT_DE = """Bestellnr;Kunde;Bestelldatum;Betrag;Währung
B1;K1;05.03.2024 10:00;1.234,50;EUR
B2;K2;13.03.2024 09:30:15;12,5;EUR
B3;K3;31.02.2024 10:00;10,00;EUR
B4;K4;2024-03-06T08:00:00Z;7;EUR
B5;K5;06.03.2024 11:00;12.5;EUR
B6;K6;07.03.24 11:00;3,00;EUR
"""


def _export_de(tmp_path: Path, **options: str) -> Warehouse:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "bestellungen.csv").write_bytes(EXPORT_DE.encode("cp1252"))
    columns = {
        "order_id": "Bestellnr",
        "user_id": "Kunde",
        "ordered_at": "Bestelldatum",
        "amount": "Betrag",
        "currency": "Währung",
    }
    source = {"name": "shop_de", "table": "orders", "format": "csv", "path": "bestellungen.csv"}
    source |= {"encoding": "cp1252", "delimiter": ";", "timezone": "Europe/Berlin", **options}
    return _project(tmp_path, [{**source, "columns": columns}])


def test_a_source_with_decimal_commas_and_dates_day_first_loads_them(tmp_path):
    """``decimal = ","`` and ``date_order = "dmy"`` read a German export as it is meant: a
    point groups thousands, and 05.03.2024 is 5 March.  A year-first timestamp still reads,
    and a two-digit year in Excel's window (until 2026-12-08 it was quarantined); an
    impossible date and a point that groups nothing are quarantined."""
    wh = _export_de(tmp_path, decimal=",", date_order="dmy")
    rep = ingest(wh).sources["shop_de"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.reconciled) == (6, 4, 2, True)
    got = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(got["order_id"]) == ["B1", "B2", "B4", "B6"]
    assert list(got["amount"]) == [1234.5, 12.5, 7.0, 3.0]
    assert [str(t) for t in got["ordered_at"]] == [  # UTC: Berlin is UTC+1 in March
        "2024-03-05 09:00:00",
        "2024-03-13 08:30:15",
        "2024-03-06 08:00:00",
        "2024-03-07 10:00:00",
    ]
    q = _quarantine(wh)
    assert list(zip(q["location"], q["reason"], strict=True)) == [
        ("bestellungen.csv:4", "unparseable ordered_at: '31.02.2024 10:00'"),
        ("bestellungen.csv:6", "unparseable amount: '12.5'"),
    ]


def test_date_order_mdy_reads_the_month_first_and_the_default_reads_neither(tmp_path):
    """The same export read month first: 05.03.2024 is 3 May (summer time in Berlin), and
    13.03.2024 has no month 13.  Without the two settings, every day-first date and every
    decimal comma is quarantined rather than guessed at."""
    wh = _export_de(tmp_path / "mdy", decimal=",", date_order="MDY")
    rep = ingest(wh).sources["shop_de"]
    assert (rep.loaded, rep.quarantined) == (3, 3)
    got = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(got["order_id"]) == ["B1", "B4", "B6"]
    assert str(got["ordered_at"][0]) == "2024-05-03 08:00:00"
    assert str(got["ordered_at"][2]) == "2024-07-03 09:00:00"  # 07.03.24: 3 July, summer time
    reasons = dict(zip(*_quarantine(wh)[["location", "reason"]].T.values, strict=True))
    assert reasons["bestellungen.csv:3"] == "unparseable ordered_at: '13.03.2024 09:30:15'"

    wh = _export_de(tmp_path / "default")
    rep = ingest(wh).sources["shop_de"]
    assert (rep.loaded, rep.quarantined) == (1, 5)  # B4, year first and a whole amount
    reasons = dict(zip(*_quarantine(wh)[["location", "reason"]].T.values, strict=True))
    assert reasons["bestellungen.csv:2"] == "unparseable ordered_at: '05.03.2024 10:00'"


def test_the_quarantine_names_date_order_for_two_digit_years_too(tmp_path):
    from loupe.ingest.quarantine import quarantine_view

    (tmp_path / "p.csv").write_text("no,amount,day\nA,1,05/03/24\nB,2,06/03/24 10:00\n")
    columns = {"order_id": "no", "amount": "amount", "ordered_at": "day"}
    source = {"name": "p", "table": "orders", "format": "csv", "path": "p.csv"}
    wh = _project(tmp_path, [{**source, "columns": columns}])
    assert ingest(wh).sources["p"].quarantined == 2
    (reason,) = quarantine_view(wh)["by_reason"]
    assert reason["hint"].startswith("2 look written day or month first")
    wh = _project(tmp_path, [{**source, "columns": columns, "date_order": "dmy"}])
    rep = ingest(wh, reload=True).sources["p"]
    assert (rep.loaded, rep.quarantined) == (2, 0)


def test_dates_with_a_month_name_load_whatever_the_date_order(tmp_path):
    """A US export writes ``Mar 5, 2024, 2:30 PM``; e-mail headers ``Tue, 05 Mar 2024 …``.
    The month's name says which part it is, so no setting is needed; a two-digit year is
    read in Excel's window (5-Mar-24, Excel's d-mmm-yy).  A birth date with a month name
    reaches the contacts year first."""
    (tmp_path / "orders.csv").write_text(
        "no,placed,amount\n"
        'A1,"Mar 5, 2024, 2:30 PM",1\n'
        "A2,5 March 2024,2\n"
        'A3,"Tue, 05 Mar 2024 10:00:00 +0000",3\n'
        "A4,5-Mar-24,4\n"
        "A5,2024-03-05 10:00,5\n"
    )
    columns = {"order_id": "no", "ordered_at": "placed", "amount": "amount"}
    source = {"name": "us", "table": "orders", "format": "csv", "path": "orders.csv"}
    (tmp_path / "people.csv").write_text("id,born\nP1,5 March 1990\nP2,1990-03-06\nP3,n/a\n")
    people = {"name": "crm", "table": "contacts", "format": "csv", "path": "people.csv"}
    people["columns"] = {"source_key": "id", "birth_date": "born"}
    us = {**source, "timezone": "America/New_York", "columns": columns}
    wh = _project(tmp_path, [us, people])
    rep = ingest(wh).sources["us"]
    assert (rep.read, rep.loaded, rep.quarantined) == (5, 5, 0)
    got = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert [str(t) for t in got["ordered_at"]] == [  # UTC: New York is UTC-5 in early March
        "2024-03-05 19:30:00",
        "2024-03-05 05:00:00",
        "2024-03-05 10:00:00",
        "2024-03-05 05:00:00",
        "2024-03-05 15:00:00",
    ]
    born = wh.to_pandas(wh.table("raw_contacts").order_by("source_key"))["birth_date"]
    assert list(born) == ["1990-3-5", "1990-03-06", "n/a"]


def test_a_birth_date_written_day_first_reaches_the_contacts(tmp_path):
    """A birth date is text in ``raw_contacts`` (quality parses and flags it); a source's
    ``date_order`` writes it year first at load, so quality reads it."""
    from loupe.quality import run_quality

    (tmp_path / "kunden.csv").write_text(
        "Kundennr;Name;Geburtsdatum\nK1;Anna Müller;05.03.1990\nK2;Jan Weiß;1985-12-01\n"
        "K3;Eva Roth;31.04.1990\n"
    )
    source = {"name": "crm_de", "table": "contacts", "format": "csv", "path": "kunden.csv"}
    source |= {"delimiter": ";", "date_order": "dmy"}
    columns = {"source_key": "Kundennr", "name": "Name", "birth_date": "Geburtsdatum"}
    wh = _project(tmp_path, [{**source, "columns": columns}])
    assert ingest(wh).sources["crm_de"].loaded == 3
    run_quality(wh)
    got = wh.to_pandas(wh.table("contacts").order_by("source_key"))
    assert [
        None if pd.isna(d) else pd.Timestamp(d).date().isoformat() for d in got["birth_date"]
    ] == [
        "1990-03-05",
        "1985-12-01",
        None,  # 31 April: flagged by quality, not guessed at
    ]
    assert "invalid_birth_date" in list(got["quality_flags"][2])


def test_quarantine_hints_at_the_setting_and_reload_reads_the_files_again(tmp_path):
    """Loaded with the defaults, the export's day-first dates are quarantined, and the
    quarantine says which setting reads them.  A second run with the settings fixed reads
    nothing (the file has not changed); ``reload`` forgets what the source loaded and reads
    it again, without touching the other sources."""
    from loupe.ingest.quarantine import quarantine_view

    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    others = [_orders_source("orders.csv")]
    wh = _export_de(tmp_path)  # written before the project is opened with both sources
    wh.close()
    de = {"name": "shop_de", "table": "orders", "format": "csv", "path": "bestellungen.csv"}
    de |= {"encoding": "cp1252", "delimiter": ";", "timezone": "Europe/Berlin"}
    de["columns"] = {"order_id": "Bestellnr", "user_id": "Kunde", "ordered_at": "Bestelldatum"}
    de["columns"] |= {"amount": "Betrag", "currency": "Währung"}
    wh = _project(tmp_path, [de, *others])
    first = ingest(wh).sources
    assert (first["shop_de"].loaded, first["shop_de"].quarantined) == (1, 5)
    (dates,) = [r for r in quarantine_view(wh)["by_reason"] if r["source"] == "shop_de"]
    assert (dates["reason"], dates["rows"]) == ("unparseable ordered_at", 5)
    assert dates["hint"].startswith("5 look written day or month first")  # 07.03.24 too
    assert 'date_order = "dmy"' in dates["hint"]
    others_view = [r for r in quarantine_view(wh)["by_reason"] if r["source"] != "shop_de"]
    assert len(others_view) == 2 and all(r["hint"] is None for r in others_view)
    wh.close()

    fixed = {**de, "decimal": ",", "date_order": "dmy"}
    wh = _project(tmp_path, [fixed, *others])
    assert ingest(wh, ["shop_de"]).sources["shop_de"].read == 0  # the file is known
    rep = ingest(wh, ["shop_de"], reload=True).sources["shop_de"]
    assert rep.forgotten == 1
    assert (rep.read, rep.loaded, rep.quarantined, rep.duplicates) == (6, 4, 2, 0)
    raw = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))
    assert list(raw["order_id"]) == ["B1", "B2", "B4", "B6", "O1", "O2", "O6"]  # B4 once
    q = _quarantine(wh)
    assert list(q["location"]) == [
        "bestellungen.csv:4",
        "bestellungen.csv:6",
        "orders.csv:4",
        "orders.csv:5",
        "orders.csv:8",
    ]
    assert all(r["hint"] is None for r in quarantine_view(wh)["by_reason"])
    files = wh.to_pandas(wh.table("ingested_files").order_by("file"))
    assert list(files["file"]) == ["bestellungen.csv", "orders.csv"]
    assert ingest(wh).sources["shop_de"].read == 0  # and known again


def test_quarantine_hints_at_decimal_commas(tmp_path):
    (tmp_path / "orders.csv").write_text(
        "order_no;account_id;order_time;total_amount;currency\n"
        "O1;U1;2024-03-05 10:00:00;12,50;EUR\nO2;U2;2024-03-05 11:00:00;€ 1.234,5;EUR\n"
        "O3;U3;2024-03-05 12:00:00;7;EUR\n"
    )
    from loupe.ingest.quarantine import quarantine_view

    wh = _project(tmp_path, [{**_orders_source("orders.csv"), "delimiter": ";"}])
    assert ingest(wh).sources["shop"].quarantined == 2
    (amounts,) = quarantine_view(wh)["by_reason"]
    assert amounts["hint"] == '2 look written with a decimal comma (12,50): set `decimal = ","`'
    from loupe.config import SourceSettings
    from loupe.ingest.quarantine import _hint

    one = _hint(SourceSettings(name="s", format="csv", path="a.csv"), 1, 1, 0)
    assert one is not None and one.startswith("1 looks written with a decimal comma")


def test_quarantine_hints_at_the_encoding_most_undecodable_rows_read_in(tmp_path):
    """A GBK export with an English header, declared (by default) as UTF-8: its rows with
    Chinese text are quarantined, and the hint names GBK when most of them read as GBK; one
    row of three (a character cut in two) is not enough.  Set, the reload loads them all."""
    from loupe.ingest.quarantine import quarantine_view

    rows = ["O1,王伟,2024-03-05 10:00:00,1,CNY", "O2,U2,2024-03-05 11:00:00,2,CNY"]
    rows += ["O3,张强,2024-03-05 12:00:00,3,CNY", "O4,李芳,2024-03-06 12:00:00,4,CNY"]
    header = "order_no,account_id,order_time,total_amount,currency\n"
    (tmp_path / "orders.csv").write_bytes((header + "\n".join(rows) + "\n").encode("gbk"))
    wh = _project(tmp_path, [_orders_source("orders.csv")])
    assert ingest(wh).sources["shop"].quarantined == 3
    (undecodable,) = quarantine_view(wh)["by_reason"]
    assert (undecodable["reason"], undecodable["rows"]) == ("bytes not valid utf-8", 3)
    assert undecodable["hint"] == '3 read as gbk text: set `encoding = "gbk"`'
    from loupe.config import SourceSettings
    from loupe.ingest.quarantine import _hint

    source = SourceSettings(name="s", format="csv", path="a.csv")
    assert _hint(source, 3, 0, 0, ("gbk", 1)) is None
    assert _hint(source.model_copy(update={"encoding": "gbk"}), 3, 0, 0, ("gbk", 3)) is None

    wh = _project(tmp_path, [{**_orders_source("orders.csv"), "encoding": "gbk"}])
    rep = ingest(wh, reload=True).sources["shop"]
    assert (rep.read, rep.loaded, rep.quarantined) == (4, 4, 0)
    names = wh.to_pandas(wh.table("raw_orders").order_by("order_id"))["user_id"]
    assert list(names) == ["王伟", "U2", "张强", "李芳"]


def test_reload_stops_before_forgetting_when_a_source_has_no_file(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    wh = _project(tmp_path, [_orders_source("orders.csv")])
    ingest(wh)
    (tmp_path / "orders.csv").unlink()
    with pytest.raises(SourceError, match="no file matches"):
        ingest(wh, reload=True)
    assert wh.count("raw_orders") == 3 and wh.count("quarantine") == 3


def test_decimal_comma_is_refused_where_numbers_are_typed():
    """A JSON, Parquet, Excel or SQL source's numbers come typed, written with a point."""
    from pydantic import ValidationError

    from loupe.config import SourceSettings

    with pytest.raises(ValidationError, match="is for csv and tsv sources"):
        SourceSettings(name="app", format="jsonl", path="a.jsonl", decimal=",")
    assert SourceSettings(name="pos", format="csv", path="a.csv", decimal=",").decimal == ","


def test_a_profile_without_a_name_takes_it_from_first_and_last_name(tmp_path):
    """Segment fills ``name`` from ``firstName`` and ``lastName`` when only those are sent; so
    does the profile, with the family name first and no space for a Chinese name.  Until
    2026-12-07 such a profile had no name, and could not be matched on it."""
    calls = [
        _identify(1, "U1", "2024-03-05T02:00:00Z", firstName="Wei", lastName="Wang"),
        _identify(2, "U2", "2024-03-05T02:00:00Z", firstName="伟", lastName="王"),
        _identify(3, "U3", "2024-03-05T02:00:00Z", first_name=" Li ", email="li@x.cn"),
        _identify(4, "U4", "2024-03-05T02:00:00Z", name="Full Name", firstName="F", lastName="L"),
    ]
    (tmp_path / "web.jsonl").write_text("\n".join(calls) + "\n")
    wh = _project(tmp_path, [{"name": "web", "format": "segment", "path": "web.jsonl"}])
    assert ingest(wh).sources["web"].profiles == 4
    got = wh.to_pandas(wh.table("raw_contacts").order_by("source_key"))
    assert list(got["name"]) == ["Wei Wang", "王伟", "Li", "Full Name"]


@pytest.mark.parametrize(("written", "declared"), [("gbk", "utf-8"), ("gbk", "big5")])
def test_a_csv_file_in_another_encoding_names_it_in_the_error(tmp_path, written, declared):
    """A store system's GBK export declared UTF-8 (or Big5) has a header the mapping cannot
    find; the
    error names the encoding in which it can, instead of listing the header as mojibake.
    (A UTF-8 file declared GBK is read as UTF-8: see the test after this one.)"""
    (tmp_path / "lines.csv").write_bytes(LINES_CSV.encode(written))
    columns = {"order_id": "小票号", "product_id": "商品编码", "quantity": "数量"}
    source = {"name": "pos", "table": "order_items", "format": "csv", "path": "lines.csv"}
    wh = _project(tmp_path, [{**source, "encoding": declared, "columns": columns}])
    with pytest.raises(SourceError, match=f"but are when it is read as {written}") as err:
        ingest(wh)
    assert err.value.fix == f'set `encoding = "{written}"` on the source in loupe.toml'
    right = {**source, "encoding": written, "columns": columns, "path": "../lines.csv"}
    assert ingest(_project(tmp_path / "b", [right])).sources["pos"].reconciled


def test_a_gbk_source_whose_new_file_is_utf8_loads_it_as_utf8(tmp_path):
    """POS members declared GBK whose new export is UTF-8 load their names as written, beside
    the older GBK file, and the report names the file.  Until 2026-12-08 it was read as GBK:
    张伟 loaded as 寮犱紵 and 上海 as 涓婃捣, and only the lines whose bytes did not pair up
    as GBK were quarantined (two of the three here)."""
    header = "会员卡号,姓名,城市\n"
    (tmp_path / "members_1.csv").write_bytes((header + "M1,王芳,上海\n").encode("gbk"))
    rows = "M2,张伟,上海\nM3,李娜,北京\nM4,王芳芳,广州\n"
    (tmp_path / "members_2.csv").write_bytes((header + rows).encode("utf-8"))
    columns = {"source_key": "会员卡号", "name": "姓名", "city": "城市"}
    source = {"name": "pos", "table": "contacts", "format": "csv", "path": "members_*.csv"}
    wh = _project(tmp_path, [{**source, "encoding": "gbk", "columns": columns}])
    rep = ingest(wh).sources["pos"]
    assert (rep.read, rep.loaded, rep.quarantined) == (4, 4, 0)
    assert rep.read_as_utf8 == ["members_2.csv"]
    got = wh.to_pandas(wh.table("raw_contacts").order_by("source_key"))
    assert list(got["name"]) == ["王芳", "张伟", "李娜", "王芳芳"]
    assert list(got["city"]) == ["上海", "上海", "北京", "广州"]


def test_a_sqlite_source_is_found_from_the_project_folder_and_never_created(tmp_path):
    """``sqlite://data/erp.db`` is a path relative to the project folder, and a database
    file that is not there is an error naming the path.  Until 2026-12-07 Ibis read
    ``sqlite:///erp.db`` from the root of the file system, created an empty database at a
    path that had none, and the source failed with "cannot read table"."""
    import sqlite3

    (tmp_path / "data").mkdir()
    con = sqlite3.connect(tmp_path / "data" / "erp.db")
    con.execute("CREATE TABLE orders (no INTEGER, at TEXT, amount REAL, note BLOB)")
    rows = [(1, "2024-03-05 10:00:00", 12.5, b"ok"), (2, "1709604000", 3.0, b"\xff\xfe")]
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    columns = {"order_id": "no", "ordered_at": "at", "amount": "amount", "coupon_code": "note"}
    source = {"name": "erp", "table": "orders", "format": "sql", "sql_table": "orders"}
    wh = _project(tmp_path, [{**source, "connection": "sqlite://data/erp.db", "columns": columns}])
    rep = ingest(wh).sources["erp"]
    assert (rep.read, rep.loaded, rep.quarantined, rep.reconciled) == (2, 1, 1, True)
    q = _quarantine(wh)
    assert list(zip(q["location"], q["reason"], strict=True)) == [
        ("orders:2", "bytes not valid utf-8 in note")
    ]
    missing = {**source, "connection": "sqlite://data/missing.db", "columns": columns}
    with pytest.raises(SourceError, match=r"no database file at .*data/missing\.db"):
        ingest(_project(tmp_path / "b", [missing]))
    assert not (tmp_path / "b" / "data" / "missing.db").exists()
