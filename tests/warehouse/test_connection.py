"""Warehouse: migrations, lineage, reopening, and the same behaviour on PySpark."""

from __future__ import annotations

import ibis
import pytest

from loupe.errors import WarehouseError
from loupe.warehouse import Warehouse, migrate, quiet_duckdb, stage_run
from loupe.warehouse.migrations import MIGRATIONS, applied
from loupe.warehouse.schemas import (
    IDENTITY_MATCHES,
    INGESTED_FILES,
    RAW_COLUMNS,
    canonical_schema,
)
from tests.conftest import make_settings


def _kinds(schema) -> dict[str, str]:
    """Column → type name, ignoring precision (DuckDB reports timestamp(6))."""
    return {k: str(v).split("(")[0] for k, v in schema.items()}


def test_migrations_create_canonical_tables_once(wh):
    assert applied(wh) == {v for v, _, _ in MIGRATIONS}
    for table in RAW_COLUMNS:
        assert wh.exists(table) and wh.exists(f"raw_{table}")
        assert _kinds(wh.table(table).schema()) == _kinds(canonical_schema(table))
    for table in ("quarantine", "identity_links", "customers", "stage_runs", "audit_log"):
        assert wh.exists(table)
    assert migrate(wh) == []
    assert wh.count("schema_migrations") == len(MIGRATIONS)


def test_an_older_warehouse_is_brought_forward_and_keeps_its_rows(wh):
    """A warehouse made by a Loupe that knew only migrations 1-3 gets 4-6, and nothing more."""
    with stage_run(wh, "ingest", ["crm"], ["raw_contacts"]):
        pass
    later = {v for v, _, _ in MIGRATIONS if v > 3}
    wh.con.raw_sql("DELETE FROM schema_migrations WHERE version > 3")
    for table in ("quality_metrics", "customer_tags", "model_registry"):
        wh.con.drop_table(table)
    assert not wh.exists("customer_tags")
    assert sorted(migrate(wh)) == sorted(later)
    assert applied(wh) == {v for v, _, _ in MIGRATIONS}
    assert all(wh.exists(t) for t in ("quality_metrics", "customer_tags", "model_registry"))
    assert wh.to_pandas(wh.table("stage_runs"))["stage"].tolist() == ["ingest"]
    assert migrate(wh) == []


def test_ingested_files_of_an_older_warehouse_gain_size_and_time(wh):
    """Migration 7 adds ``size`` and ``modified_ns`` to ``ingested_files``, NULL for the
    files recorded before (ingest then checks those by content), and keeps every row."""
    wh.con.raw_sql("ALTER TABLE ingested_files DROP COLUMN size")
    wh.con.raw_sql("ALTER TABLE ingested_files DROP COLUMN modified_ns")
    wh.con.raw_sql(
        "INSERT INTO ingested_files VALUES ('crm', 'a.csv', 'f1', 3, 'b1', TIMESTAMP '2026-01-01')"
    )
    wh.con.raw_sql("DELETE FROM schema_migrations WHERE version = 7")
    assert migrate(wh) == [7]
    rows = wh.to_pandas(wh.table("ingested_files"))
    assert list(rows.columns) == list(INGESTED_FILES)
    assert rows[["file", "fingerprint", "rows"]].values.tolist() == [["a.csv", "f1", 3]]
    assert rows[["size", "modified_ns"]].isna().all().all()
    assert migrate(wh) == []


def test_identity_matches_of_an_older_warehouse_gain_levels(wh):
    """Migration 9 adds ``levels`` to ``identity_matches``, NULL for the pairs linked
    before, and keeps every row; migration 8 adds ``customer_id_changes``."""
    wh.con.raw_sql("ALTER TABLE identity_matches DROP COLUMN levels")
    wh.con.raw_sql("INSERT INTO identity_matches VALUES ('crm:1', 'pos:2', 0.995, 7.6)")
    wh.con.raw_sql("DROP TABLE customer_id_changes")
    wh.con.raw_sql("DELETE FROM schema_migrations WHERE version >= 8")
    assert migrate(wh) == [8, 9]
    rows = wh.to_pandas(wh.table("identity_matches"))
    assert list(rows.columns) == list(IDENTITY_MATCHES)
    assert rows[["record_l", "match_weight"]].values.tolist() == [["crm:1", 7.6]]
    assert rows.levels.isna().all() and wh.count("customer_id_changes") == 0
    assert migrate(wh) == []


def test_exists_sees_tables_work_tables_and_views_but_not_other_names(wh):
    wh.scratch("_work_t", ibis.memtable({"a": [1]}))
    wh.con.raw_sql("CREATE VIEW v_orders AS SELECT * FROM orders")
    assert wh.exists("orders") and wh.exists("_work_t") and wh.exists("v_orders")
    assert not wh.exists("order") and not wh.exists("ORDERS2")


def test_stage_runs_record_success_and_failure(wh):
    with stage_run(wh, "ingest", ["crm"], ["raw_contacts"]) as run:
        run.rows_in, run.rows_out = 10, 8
    with pytest.raises(RuntimeError), stage_run(wh, "quality", ["raw_contacts"], ["contacts"]):
        raise RuntimeError("boom")
    runs = wh.to_pandas(wh.table("stage_runs").order_by("started_at"))
    assert list(runs["stage"]) == ["ingest", "quality"]
    assert list(runs["status"]) == ["success", "failed"]
    assert runs["rows_in"][0] == 10 and runs["rows_out"][0] == 8
    assert "boom" in runs["error"][1]
    assert list(runs["inputs"][0]) == ["crm"]
    assert (runs["finished_at"] >= runs["started_at"]).all()
    assert runs["loupe_version"][0]


PERSONS = {"event_persons"}
BASKETS = {"order_baskets", "basket_items"}


@pytest.mark.parametrize(
    ("write", "dropped"),
    [
        (lambda wh: wh.replace("events", wh.table("events")), PERSONS),
        (lambda wh: wh.append("events", wh.table("events").limit(0)), PERSONS),
        (lambda wh: wh.replace("identity_links", wh.table("identity_links")), PERSONS),
        (lambda wh: wh.drop("identity_links"), PERSONS),
        (lambda wh: wh.replace("order_items", wh.table("order_items")), BASKETS),
        (lambda wh: wh.append("order_items", wh.table("order_items").limit(0)), BASKETS),
    ],
    ids=[
        "replace events",
        "append to events",
        "replace links",
        "drop links",
        "replace lines",
        "append to lines",
    ],
)
def test_a_derived_table_is_dropped_when_an_input_is_written(wh, write, dropped):
    """``event_persons`` is computed from ``events`` and ``identity_links``, the baskets from
    ``order_items``: any write to an input through the warehouse drops the tables computed
    from it (readers then use the inputs), while writes to other tables leave them."""
    stand_ins = {
        "event_persons": {"event": ["x"], "ts": [None], "pk": [1]},
        "order_baskets": {"bs": ["s"], "bo": ["o1"], "items": [[1, 2]]},
        "basket_items": {"item": ["a"], "code": [1]},
    }
    types = {"ts": "timestamp", "pk": "int64", "items": "array<int32>", "code": "int32"}
    for name, rows in stand_ins.items():
        wh.replace(name, ibis.memtable(rows, schema={c: types.get(c, "string") for c in rows}))
    wh.replace("orders", wh.table("orders"))
    wh.append("contacts", wh.table("contacts").limit(0))
    assert all(wh.exists(name) for name in stand_ins)
    write(wh)
    assert {name for name in stand_ins if not wh.exists(name)} == dropped


def _limit_mib(wh: Warehouse) -> float:
    text = wh.con.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    number, unit = text.split()
    return float(number) * {"MiB": 1, "GiB": 1024}[unit]


@pytest.mark.parametrize(
    ("limit", "kept", "lent"), [("4GB", 953, "2861MiB"), ("1GiB", 256, "768MiB")]
)
def test_lending_memory_splits_the_limit_and_gives_it_back(tmp_path, limit, kept, lent):
    """Inside the block the warehouse keeps a quarter of its limit and lends the rest."""
    wh = Warehouse.open(make_settings(tmp_path, warehouse={"memory_limit": limit}))
    before = _limit_mib(wh)
    with wh.lending_memory() as other:
        assert other == lent
        assert _limit_mib(wh) == pytest.approx(kept, abs=1)
    assert _limit_mib(wh) == before
    wh.close()
    wh = Warehouse.open(make_settings(tmp_path / "none", warehouse={"memory_limit": None}))
    with wh.lending_memory() as other:
        assert other is None
    wh.close()


def test_reopen_keeps_tables_and_missing_table_is_clear(settings):
    wh = Warehouse.open(settings)
    wh.replace("scratch", ibis.memtable({"a": [1, 2]}))
    wh.close()
    wh2 = Warehouse.open(settings)
    assert wh2.count("scratch") == 2
    with pytest.raises(WarehouseError, match="does not exist"):
        wh2.table("nope")


def _exercise(wh: Warehouse) -> list[int]:
    wh.replace("t", ibis.memtable({"a": [1, 2, 3]}))
    assert wh.append("t", ibis.memtable({"a": [4]})) == 1
    t = wh.table("t")
    wh.replace("t", t.mutate(a=t.a * 10))  # rewrite from an expression that reads it
    wh.replace("s", ibis.memtable({"k": ["x", "y", None, "x", "z"], "v": [1, 2, 3, 4, 5]}))
    assert wh.delete_rows("s", "k", ["x", "z"]) == 3
    assert wh.delete_rows("s", "k", ["nothing"]) == 0
    assert wh.delete_rows("absent", "k", ["x"]) == 0
    assert sorted(wh.to_pandas(wh.table("s"))["v"]) == [2, 3]  # a NULL key stays
    return sorted(wh.to_pandas(wh.table("t"))["a"])


@pytest.mark.spark
def test_pyspark_backend_matches_duckdb(tmp_path):
    duck = Warehouse.open(make_settings(tmp_path / "d"))
    spark = Warehouse.open(make_settings(tmp_path / "s", warehouse={"backend": "pyspark"}))
    assert _exercise(duck) == _exercise(spark) == [10, 20, 30, 40]
    again = Warehouse.open(make_settings(tmp_path / "s", warehouse={"backend": "pyspark"}))
    assert again.count("t") == 4
    assert applied(again) == applied(duck)


def test_duckdb_draws_no_progress_bar_on_stdout(tmp_path, capfd):
    """DuckDB draws its own progress bar on file descriptor 1 for a query that runs longer
    than ``progress_bar_time`` (2 s): in ``loupe ingest --json > report.json`` it ended up in
    the JSON.  The warehouse turns it off when it opens."""
    wh = Warehouse.open(make_settings(tmp_path))
    setting = "SELECT current_setting('enable_progress_bar')"
    assert wh.con.raw_sql(setting).fetchall() == [(False,)]
    # With no delay, any query draws it; setting the delay turns the bar back on, so the
    # bar is turned off again after it.
    wh.con.raw_sql("SET progress_bar_time = 0")
    quiet_duckdb(wh.con)
    capfd.readouterr()  # the statement that turned it off drew one, at 100%
    total = wh.con.raw_sql("SELECT sum(i % 7) FROM range(300000000) t(i)").fetchall()
    assert total[0][0] > 0
    out, _err = capfd.readouterr()
    assert out == ""
