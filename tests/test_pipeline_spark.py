"""The same company through DuckDB and PySpark gives the same customers and identity links."""

from __future__ import annotations

import shutil

import ibis
import pandas as pd
import pytest

from loupe.config import load_settings
from loupe.identity import explain, find_customers
from loupe.identity.graph import record_key
from loupe.ingest import ingest
from loupe.ingest.quarantine import quarantine_view
from loupe.names import name_key
from loupe.pipeline import run_pipeline
from loupe.scaffold import demo_toml, write_config
from loupe.synth import generate_company
from loupe.warehouse import Warehouse
from tests.ingest.test_load import ORDERS_JSONL

#: A JSONL source besides the company's files: nested keys, and lines that are not objects.
JSONL_SOURCE = """
[[sources]]
name = "shop_json"
table = "orders"
format = "jsonl"
path = "data/orders_export.jsonl"
[sources.columns]
order_id = "no"
email = "buyer.email"
user_id = "buyer.id"
amount = "total"
ordered_at = "at"
coupon_code = "coupons"
channel = "buyer.tier"
"""


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    df = df.copy()
    for col in df.columns:
        if df[col].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any():
            df[col] = df[col].map(lambda v: tuple(v) if v is not None else None)
    return df.sort_values(keys).reset_index(drop=True)


def _per_event(wh: Warehouse) -> pd.DataFrame:
    t = wh.table("event_persons")
    return wh.to_pandas(t.group_by("event").agg(rows=t.count(), people=t.pk.nunique()))


def _jsonl_rows(wh: Warehouse) -> dict[str, pd.DataFrame]:
    orders = wh.table("raw_orders")
    orders = orders.filter(orders.source == "shop_json").select(
        "order_id", "email", "user_id", "amount", "ordered_at", "coupon_code", "channel", "_line"
    )
    q = wh.table("quarantine")
    q = q.filter(q.source == "shop_json").select("location", "reason", "raw")
    return {
        "orders": _sorted(wh.to_pandas(orders), ["_line"]),
        "quarantine": _sorted(wh.to_pandas(q), ["location"]),
    }


def _pinyin_query(wh: Warehouse) -> str:
    """The pinyin of a three-character name (王伟建: wangweijian), which no e-mail holds."""
    c = wh.table("customers")
    first = wh.to_pandas(
        c.filter(c.name.re_search("^[\u4e00-\u9fff]{3}$")).order_by("customer_id").limit(1)
    )
    return "".join(str(name_key(ch)) for ch in str(first.name.iloc[0]))  # in the name's order


def _typo(wh: Warehouse) -> str:
    """The first customer's e-mail with its last letter wrong."""
    c = wh.table("customers")
    email = str(wh.to_pandas(c.filter(c.email.notnull()).order_by("customer_id").limit(1)).email[0])
    return email[:-1] + ("x" if email[-1] != "x" else "y")


def _explained(wh: Warehouse) -> list[str]:
    c = wh.table("customers")
    most = wh.to_pandas(c.order_by([ibis.desc("record_count"), "customer_id"]).limit(3))
    shared = wh.table("shared_identifiers")
    contacts = wh.table("contacts")
    phones = shared.filter(shared.id_type == "phone").id_value
    carriers = contacts.filter(contacts.phone.isin(phones)).select(record=record_key(contacts))
    links = wh.table("identity_links")
    refused = links.filter((links.id_type == "record") & links.id_value.isin(carriers.record))
    one = wh.to_pandas(refused.select("customer_id").order_by("customer_id").limit(1))
    return [*most.customer_id, *one.customer_id]


@pytest.mark.spark
@pytest.mark.slow
def test_pyspark_gives_the_same_customers_and_links(tmp_path):
    data = tmp_path / "data"
    generate_company(data, customers=120, seed=11)
    results = {}
    for backend in ("duckdb", "pyspark"):
        root = tmp_path / backend
        shutil.copytree(data, root / "data")
        (root / "data" / "orders_export.jsonl").write_text("\n".join(ORDERS_JSONL) + "\n")
        toml = demo_toml("p").replace('backend = "duckdb"', f'backend = "{backend}"')
        write_config(root, toml + JSONL_SOURCE)
        wh = Warehouse.open(load_settings(root))
        # The foundation's stages; profile and analytics parity have their own Spark tests
        # (tests/profile/test_spark.py, tests/analytics/test_spark.py).
        reports = run_pipeline(wh, ["ingest", "quality", "identity"])
        results[backend] = {
            "ingest": reports["ingest"].to_dict()["total"],
            "customers": _sorted(wh.to_pandas(wh.table("customers")), ["customer_id"]),
            "links": _sorted(wh.to_pandas(wh.table("identity_links")), ["id_type", "id_value"]),
            # each backend hashes people its own way: compare rows and people per event name
            "event_persons": _sorted(_per_event(wh), ["event"]),
            "jsonl": _jsonl_rows(wh),
            "quarantine_view": quarantine_view(wh, limit=0),
            # `loupe customers find`: golden records, phone digits, source-record keys and a
            # Chinese name by its pinyin
            "find": [
                [(c["customer_id"], c["matched"]) for c in find_customers(wh, q, 0)["customers"]]
                for q in ("qq.com", "138", "c0000001", "上海 13", _pinyin_query(wh))
            ],
            # a mistyped e-mail: the customers close to it
            "near": [
                (c["customer_id"], c["matched"], c["edits"])
                for c in find_customers(wh, _typo(wh), 0)["near"]
            ],
            # `loupe customers explain`: the customers of most records, and one whose
            # records carry an identifier the guard refused
            "explain": [explain(wh, c) for c in _explained(wh)],
        }
        # Reloading a source deletes its rows (a DELETE on DuckDB, a rewrite on Spark) and
        # reads its file again, to the same rows and quarantine
        again = ingest(wh, ["shop_json"], reload=True).sources["shop_json"]
        results[backend]["reload"] = (again.forgotten, again.read, again.loaded, again.quarantined)
        results[backend]["jsonl_again"] = _jsonl_rows(wh)
    duck, spark = results["duckdb"], results["pyspark"]
    for part in ("orders", "quarantine"):
        assert len(duck["jsonl"][part]) in (3, 4)
        pd.testing.assert_frame_equal(duck["jsonl"][part], spark["jsonl"][part], check_dtype=False)
    assert duck["ingest"] == spark["ingest"]
    assert duck["find"] == spark["find"] and all(duck["find"])
    assert duck["explain"] == spark["explain"]
    assert duck["near"] == spark["near"] and duck["near"]
    assert any(d["refused"] for d in duck["explain"]) and any(d["links"] for d in duck["explain"])
    assert duck["reload"] == spark["reload"]
    assert duck["reload"][0] == duck["reload"][2] == len(duck["jsonl"]["orders"])
    for backend in (duck, spark):
        for part in ("orders", "quarantine"):
            pd.testing.assert_frame_equal(backend["jsonl"][part], backend["jsonl_again"][part])
    # `loupe quarantine`: the same reasons, and the same rows in the same (line) order
    views = [results[b]["quarantine_view"] for b in ("duckdb", "pyspark")]
    assert views[0]["by_reason"] == views[1]["by_reason"] and views[0]["total"] > 20
    duck_rows, spark_rows = (
        [(r["location"], r["reason"], r["raw"]) for r in v["rows"]] for v in views
    )
    assert duck_rows == spark_rows
    assert len(duck["links"]) > 300
    pd.testing.assert_frame_equal(duck["links"], spark["links"], check_dtype=False)
    assert duck["event_persons"]["rows"].sum() > 1000
    pd.testing.assert_frame_equal(duck["event_persons"], spark["event_persons"], check_dtype=False)
    pd.testing.assert_frame_equal(
        duck["customers"], spark["customers"], check_dtype=False, check_exact=False
    )
