"""The whole stage: lineage, idempotence, and the same canonical contacts on PySpark."""

from __future__ import annotations

from datetime import datetime

import pytest

from loupe.quality import run_quality
from loupe.warehouse import Warehouse

from ..conftest import make_settings
from .rawdata import write_raw

CONTACTS = [
    {"source": "crm", "source_key": "1", "email": " Li@QQ.com", "phone": "+86 138-0013-8000",
     "gender": "女", "birth_date": "1990/3/5", "user_id": "u1", "signup_at": datetime(2024, 1, 1),
     "updated_at": datetime(2024, 1, 2)},
    {"source": "crm", "source_key": "1", "email": "li.new@qq.com", "phone": "138 0013 8000",
     "gender": "F", "birth_date": "19900305", "user_id": "u1", "signup_at": datetime(2024, 1, 1),
     "updated_at": datetime(2024, 2, 2)},
    {"source": "app", "source_key": "7", "email": "wang@", "phone": "0086 13912345678",
     "gender": "先生", "birth_date": "1985年12月1日", "signup_at": datetime(2024, 3, 1)},
    {"source": "app", "source_key": "7", "email": "wang@", "phone": "0086 13912345678",
     "gender": "先生", "birth_date": "1985年12月1日", "signup_at": datetime(2024, 3, 1)},
    {"source": "app", "source_key": "8", "email": None, "phone": "12", "gender": "?",
     "birth_date": "2024-02-30"},
]  # fmt: skip


def _contacts(wh):
    df = wh.to_pandas(wh.table("contacts").order_by(["source", "source_key"]))
    df["quality_flags"] = df.quality_flags.map(lambda f: sorted(f))
    df["birth_date"] = df.birth_date.map(lambda d: None if d is None or d != d else str(d)[:10])
    return df.drop(columns=["_file"]).astype(object).where(df.notna(), None).to_dict("records")


def test_stage_run_recorded_and_rerun_is_stable(wh):
    write_raw(wh, "contacts", CONTACTS)
    steps = []
    run_quality(wh, progress=lambda step, done, total: steps.append((step, done, total)))
    first = _contacts(wh)
    assert [r["email"] for r in first] == [None, None, "li.new@qq.com"]
    assert [r["phone"] for r in first] == ["+8613912345678", None, "+8613800138000"]
    assert [r["gender"] for r in first] == ["M", None, "F"]
    assert ("measure", 8, 8) in steps
    runs = wh.to_pandas(wh.table("stage_runs"))
    assert runs.stage.tolist() == ["quality"] and runs.status.tolist() == ["success"]
    assert (runs.rows_in[0], runs.rows_out[0]) == (5, 3)
    run_quality(wh)
    assert _contacts(wh) == first


@pytest.mark.spark
def test_pyspark_gives_the_same_contacts(tmp_path, wh):
    write_raw(wh, "contacts", CONTACTS)
    run_quality(wh)
    expected = _contacts(wh)
    spark_settings = make_settings(tmp_path / "spark", warehouse={"backend": "pyspark"})
    spark = Warehouse.open(spark_settings)
    write_raw(spark, "contacts", CONTACTS)
    report = run_quality(spark)
    assert _contacts(spark) == expected
    assert report.table("contacts").exact_duplicates == 1


PLACES = [  # (source, source_key, city, region, country, and the three after quality)
    ("crm", "1", "上海", "上海", "中国", "上海", "上海", "CN"),
    ("crm", "2", "上海市", "上海市", "China", "上海", "上海", "CN"),
    ("crm", "3", "上海", None, " CN", "上海", None, "CN"),
    ("shop", "1", " Shanghai", None, "PRC", "上海", None, "CN"),
    ("shop", "2", "SHANGHAI", "Shanghai", "Hong Kong", "上海", "上海", "HK"),
    ("crm", "4", "苏州", "江苏", "Mars", "苏州", "江苏", "Mars"),  # kept, flagged
    ("crm", "5", "宿州", "安徽", None, "宿州", "安徽", None),
    ("shop", "3", "Suzhou", "Jiangsu", "", "Suzhou", "江苏", None),  # 苏州 or 宿州: as written
]


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("pyspark", marks=pytest.mark.spark)])
def test_contacts_write_each_place_as_most_records_do(tmp_path, backend):
    """The CRM writes 上海, the e-shop Shanghai: after quality both say 上海, and the report
    lists what it rewrote.  Countries become ISO codes; one that is none is kept and
    flagged.  The same on Spark."""
    wh = Warehouse.open(make_settings(tmp_path, warehouse={"backend": backend}))
    rows = [
        {"source": s, "source_key": k, "city": c, "region": r, "country": n}
        for s, k, c, r, n, *_ in PLACES
    ]
    write_raw(wh, "contacts", rows)
    report = run_quality(wh)
    got = wh.to_pandas(wh.table("contacts").order_by(["source", "source_key"]))
    got = got.astype(object).where(got.notna(), None)
    expected = sorted((s, k, c, r, n) for s, k, *_, c, r, n in PLACES)
    places = zip(got.source, got.source_key, got.city, got.region, got.country, strict=True)
    assert list(places) == expected
    flagged = {
        k
        for k, f in zip(got.source_key, got.quality_flags, strict=True)
        if "unknown_country" in list(f)
    }
    assert flagged == {"4"}
    contacts = report.table("contacts")
    assert contacts.flags["unknown_country"] == 1
    assert contacts.column("country").validity == 5 / 6  # six written, one not a country
    assert [c.to_dict() for c in report.places] == [
        {"from": "Shanghai", "to": "上海", "rows": 2},  # a city and a region
        {"from": "上海市", "to": "上海", "rows": 2},
        {"from": "Jiangsu", "to": "江苏", "rows": 1},  # a tie: the Chinese characters
        {"from": "SHANGHAI", "to": "上海", "rows": 1},
    ]


LINES = [  # (source, order_id, line_no, product_id)
    ("pos", "o1", 1, "tea"), ("pos", "o1", 2, "cup"), ("pos", "o1", 3, "tea"),
    ("pos", "o1", 3, "tea"),  # the same line loaded twice: one line after quality
    ("web", "o1", 1, "pot"),  # another source's order with the same id: its own basket
    ("pos", "o2", 1, None),   # no product: not in a basket
    ("pos", "o3", 1, "pot"), ("pos", "o3", 2, "cup"),
]  # fmt: skip


def test_the_stage_stores_the_baskets_of_the_order_lines(wh):
    rows = [{"source": s, "order_id": o, "line_no": n, "product_id": p, "quantity": 1}
            for s, o, n, p in LINES]  # fmt: skip
    write_raw(wh, "order_items", rows)
    run_quality(wh)
    codes = wh.to_pandas(wh.table("basket_items")).set_index("code")["item"]
    assert list(codes.sort_index()) == ["cup", "pot", "tea"]
    baskets = wh.to_pandas(wh.table("order_baskets"))
    got = {(r.bs, r.bo): [codes[c] for c in r["items"]] for _, r in baskets.iterrows()}
    assert got == {
        ("pos", "o1"): ["cup", "tea"],
        ("web", "o1"): ["pot"],
        ("pos", "o3"): ["cup", "pot"],
    }
