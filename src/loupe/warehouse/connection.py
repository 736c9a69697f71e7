"""The warehouse: one Ibis connection and the only place expressions are executed.

Stages build Ibis expressions; :class:`Warehouse` runs and stores them.  Two backends:

* ``duckdb`` (default): one file, ``<project>/loupe.duckdb``.
* ``pyspark``: Spark in local mode (or ``spark_master``).  Tables are Parquet folders under
  ``<project>/<spark_dir>/<table>/``; every write makes a new version folder and re-points a
  temporary view at it, so a table can be rewritten from an expression that reads it (Spark
  refuses to overwrite a path it is reading) and a new session finds every table again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge

from loupe.errors import WarehouseError
from loupe.warehouse.functions import install_duckdb_macros
from loupe.warehouse.schemas import DERIVED_FROM

if TYPE_CHECKING:
    from loupe.config import Settings

TableLike: TypeAlias = ir.Table | pa.Table | pd.DataFrame


def quiet_duckdb(con: Any) -> None:
    """Turn off DuckDB's own progress bar on an Ibis DuckDB connection.

    DuckDB draws it on the process's standard output for any query that runs over two
    seconds, whatever stdout is: ``loupe ingest --json > report.json`` wrote 32 bars into the
    JSON at 300k customers.  Loupe draws its own progress (on stderr, and never with
    ``--json``), so stdout carries only what a command prints.
    """
    con.raw_sql("SET enable_progress_bar = false")


class Warehouse:
    """An open project warehouse.

    Use :func:`loupe.open` (or :meth:`Warehouse.open`) rather than the constructor.
    """

    def __init__(self, settings: Settings, con: ibis.BaseBackend) -> None:
        self.settings = settings
        self.con = con
        self.backend: str = settings.warehouse.backend

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Warehouse:
        ws = settings.warehouse
        if ws.backend == "duckdb":
            path = settings.resolve(ws.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                con = ibis.duckdb.connect(str(path))
            except Exception as exc:  # duckdb raises IOException for locks and corrupt files
                raise WarehouseError(
                    f"Cannot open the DuckDB warehouse: {exc}",
                    where=str(path),
                    fix="close other programs using this file, or point [warehouse] path elsewhere",
                ) from None
            con.raw_sql("SET TimeZone = 'UTC'")
            con.raw_sql("SET preserve_insertion_order = false")
            quiet_duckdb(con)
            install_duckdb_macros(con)
            if ws.threads:
                con.raw_sql(f"SET threads = {int(ws.threads)}")
            if ws.memory_limit:
                con.raw_sql(f"SET memory_limit = '{ws.memory_limit}'")
            wh: Warehouse = cls(settings, con)
        else:
            wh = _SparkWarehouse.connect(settings)
        if migrate:
            from loupe.warehouse.migrations import migrate as run_migrations

            run_migrations(wh)
        return wh

    def close(self) -> None:
        self.con.disconnect()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        # what ``name in con.list_tables()`` answers, in half the time (2.7 ms against 5.4):
        # Ibis builds that query with sqlglot and fetches every name; stages ask this before
        # most reads and writes
        found = self.con.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
            "AND table_catalog IN (current_database(), 'temp') "
            "AND table_schema = current_schema()",
            [name],
        ).fetchall()
        return found[0][0] > 0

    def table(self, name: str) -> ir.Table:
        if not self.exists(name):
            raise WarehouseError(
                f"Table {name!r} does not exist yet",
                where=self._location(),
                fix="run the stage that writes it first (`loupe run` runs them all)",
            )
        return self.con.table(name)

    def to_pandas(self, expr: ir.Expr) -> Any:
        return self.con.execute(expr)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        return self.con.to_pyarrow(expr)

    def scalar(self, expr: ir.Scalar) -> Any:
        value = self.con.execute(expr)
        return value.item() if hasattr(value, "item") else value

    def count(self, name_or_expr: str | ir.Table) -> int:
        t = self.table(name_or_expr) if isinstance(name_or_expr, str) else name_or_expr
        return int(self.scalar(t.count()))

    # -- writing -------------------------------------------------------------------------------
    def replace(self, name: str, obj: TableLike) -> ir.Table:
        """Create or replace table ``name`` with the rows of ``obj``."""
        self._inputs_changed(name)
        self.con.create_table(name, _as_input(obj), overwrite=True)
        return self.con.table(name)

    def scratch(self, name: str, obj: TableLike) -> ir.Table:
        """Materialise ``obj`` as a work table that lives only for this connection.

        DuckDB keeps it in memory (spilling to disk when needed) and skips the compression
        and checkpointing a stored table costs, which dominate on wide text staging tables.

        Written once under a fresh name, then renamed (``obj`` may read ``name``).  Ibis's
        ``create_table(temp=True, overwrite=True)`` copies the whole table a second time to
        rename it (a workaround for DuckDB 0.9.2): that copy made a scratch of the 5.5M
        events of the 100k-customer company take 10.8 s instead of 4.3 s.
        """
        fresh = f"_loupe_new_{uuid.uuid4().hex[:12]}"
        with self._input(obj) as rows:
            self.con.create_table(fresh, rows, temp=True)
        self.con.raw_sql(f'DROP TABLE IF EXISTS temp.main."{name}"')
        self.con.raw_sql(f'ALTER TABLE temp.main."{fresh}" RENAME TO "{name}"')
        return self.con.table(name)

    def append(self, name: str, obj: TableLike, *, count: bool = True) -> int:
        """Append the rows of ``obj`` to table ``name`` (columns matched by name).

        Returns the number of rows appended (0 when ``count`` is false, which saves a query).
        """
        self._inputs_changed(name)
        target = self.table(name)
        before = self.count(target) if count else 0
        with self._input(obj) as rows:
            self.con.insert(name, rows.select(*target.columns))
        return self.count(name) - before if count else 0

    def delete_rows(self, name: str, column: str, values: Sequence[str]) -> int:
        """Delete the rows of table ``name`` whose ``column`` is one of ``values``; return how
        many went.  A ``DELETE`` on DuckDB; on Spark the table is written again without them."""
        if not values or not self.exists(name):
            return 0
        self._inputs_changed(name)
        marks = ", ".join("?" for _ in values)
        deleted = self.con.con.execute(
            f'DELETE FROM "{name}" WHERE "{column}" IN ({marks})', list(values)
        ).fetchall()
        return int(deleted[0][0])

    @contextlib.contextmanager
    def lending_memory(self, share: float = 0.75) -> Iterator[str | None]:
        """Hold this warehouse's DuckDB to ``1 - share`` of ``[warehouse] memory_limit``
        inside the block, and yield the rest as a limit for another engine in this process
        (Splink's DuckDB).  ``None`` when no limit is set.

        DuckDB keeps cached pages and work tables up to its limit; lowering it makes it write
        them out, so the two engines together stay within the project's limit.  If DuckDB
        cannot lower it (it can free too little), both keep the whole limit, as before.
        """
        import duckdb

        limit = self.settings.warehouse.memory_limit
        total = _size_bytes(limit) if limit else None
        if total is None:
            yield limit
            return
        lent = int(total * share)
        try:
            self.con.raw_sql(f"SET memory_limit = '{(total - lent) >> 20}MiB'")
        except duckdb.Error:  # OutOfMemoryException: not enough could be freed
            yield limit
            return
        try:
            yield f"{lent >> 20}MiB"
        finally:
            self.con.raw_sql(f"SET memory_limit = '{limit}'")

    @contextlib.contextmanager
    def reading(self, rows: pa.Table) -> Iterator[ir.Table]:
        """In-memory ``rows`` as a table for the queries run inside the block.

        On DuckDB the queries scan the Arrow buffers themselves (nothing is copied); on Spark
        the rows are written to a work table, dropped on leaving.
        """
        with self._input(rows) as table:
            yield table

    @contextlib.contextmanager
    def _input(self, obj: TableLike) -> Iterator[ir.Table]:
        """``obj`` as an Ibis table; in-memory data is registered for this statement only.

        ``ibis.memtable`` keeps its Arrow data registered until the expression is garbage
        collected, which is late: ingest's 256 MB staging batches piled up, and the
        100k-customer ingest peaked at 8 GB whatever DuckDB's ``memory_limit``.
        """
        if isinstance(obj, ir.Table):
            yield obj
            return
        view = f"_loupe_in_{uuid.uuid4().hex[:12]}"
        raw = self.con.con
        raw.register(view, obj)
        try:
            yield self.con.table(view)
        finally:
            raw.unregister(view)

    def create_empty(self, name: str, schema: ibis.Schema) -> None:
        columns = schema.to_sqlglot_column_defs(self.con.dialect)
        table = sge.Schema(this=sg.to_identifier(name, quoted=True), expressions=columns)
        create = sge.Create(kind="TABLE", this=table, exists=True)
        self.con.raw_sql(create.sql(self.con.dialect))

    def drop(self, name: str) -> None:
        self._inputs_changed(name)
        if self.exists(name):
            self.con.drop_table(name)

    def _inputs_changed(self, name: str) -> None:
        """Drop the derived tables computed from ``name`` (:data:`DERIVED_FROM`): about to be
        written, it would leave them stale."""
        for derived, inputs in DERIVED_FROM.items():
            if name in inputs:
                self.drop(derived)

    def _location(self) -> str:
        return str(self.settings.resolve(self.settings.warehouse.path))


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _size_bytes(text: str) -> int | None:
    """Bytes of a DuckDB size setting (``4GB``, ``512 MiB``); ``None`` if it is not one."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", text.lower())
    if not m or m.group(2) not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _as_input(obj: TableLike) -> Any:
    if isinstance(obj, ir.Table):
        return obj
    if isinstance(obj, pd.DataFrame | pa.Table):
        return ibis.memtable(obj)
    raise TypeError(f"cannot store {type(obj).__name__}")


def _patch_spark_trim() -> None:
    """Make Ibis's ``strip()`` correct on Spark.

    Ibis 12 compiles ``strip`` to a TRIM whose character list is written with the escapes
    backslash-v and backslash-f; Spark's SQL parser reads those as the letters v and f, so
    "false" was trimmed to "als".  Trim only the whitespace Spark's literals can express.
    """
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    spaces = " \t\n\r"

    def strip(self: Any, op: Any, *, arg: Any) -> Any:
        return self.f.trim(arg, spaces)

    def lstrip(self: Any, op: Any, *, arg: Any) -> Any:
        return self.f.ltrim(arg, spaces)

    def rstrip(self: Any, op: Any, *, arg: Any) -> Any:
        return self.f.rtrim(arg, spaces)

    PySparkCompiler.visit_Strip = strip  # type: ignore[method-assign]
    PySparkCompiler.visit_LStrip = lstrip  # type: ignore[method-assign]
    PySparkCompiler.visit_RStrip = rstrip  # type: ignore[method-assign]


def _arrow_register(con: Any) -> Any:
    """Register in-memory tables through Arrow (Spark 4 accepts Arrow tables).

    Ibis 12 goes through pandas, and with pandas 3 a missing text value turns into the
    string "NaN" on the way; Arrow keeps NULL as NULL.
    """
    from ibis.backends.pyspark.datatypes import PySparkSchema

    def register(op: Any) -> None:
        schema = PySparkSchema.from_ibis(op.schema)
        table = op.data.to_pyarrow(op.schema)
        con._session.createDataFrame(table, schema=schema).createOrReplaceTempView(op.name)

    return register


class _SparkWarehouse(Warehouse):
    """PySpark backend with versioned Parquet folders (see the module docstring)."""

    @classmethod
    def connect(cls, settings: Settings) -> _SparkWarehouse:
        try:
            from pyspark.sql import SparkSession
        except ImportError:  # pragma: no cover - depends on the install
            raise WarehouseError(
                "The pyspark backend needs PySpark",
                where="[warehouse] backend",
                fix='install the spark extra: pip install "loupe[spark]"',
            ) from None
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use our packages
        root = settings.resolve(settings.warehouse.spark_dir)
        root.mkdir(parents=True, exist_ok=True)
        session = (
            SparkSession.builder.master(settings.warehouse.spark_master)
            .appName("loupe")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
            .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
            .config("spark.hadoop.parquet.enable.summary-metadata", "false")
            .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "1000")
            .config("spark.sql.warehouse.dir", str(root / "_managed"))
            .config("spark.driver.memory", "2g")
            .config("spark.sql.ansi.enabled", "false")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        _patch_spark_trim()
        con = ibis.pyspark.connect(session)
        con._register_in_memory_table = _arrow_register(con)  # type: ignore[method-assign]
        wh = cls(settings, con)
        wh.root = root
        for folder in sorted(root.iterdir()):
            if (folder / "_current.json").exists():
                wh._register(folder.name)
        return wh

    root: Path

    def close(self) -> None:
        # The Spark session is shared by the process (getOrCreate); leave it running so
        # that several warehouses in one process (tests) stay cheap.
        pass

    def _current(self, name: str) -> dict[str, Any]:
        return json.loads((self.root / name / "_current.json").read_text())

    def _register(self, name: str) -> None:
        info = self._current(name)
        session = self.con._session
        if info["parts"]:
            paths = [str(self.root / name / p) for p in info["parts"]]
            df = session.read.parquet(*paths)
        else:
            from ibis.backends.pyspark.datatypes import PySparkSchema

            schema = PySparkSchema.from_ibis(ibis.schema(info["schema"]))
            df = session.createDataFrame([], schema)
        df.createOrReplaceTempView(name)

    def _write_part(self, name: str, expr: ir.Table) -> str:
        part = f"part-{uuid.uuid4().hex[:12]}"
        path = self.root / name / part
        self.con._run_pre_execute_hooks(expr)
        df = self.con._session.sql(self.con.compile(expr))
        df.write.mode("overwrite").parquet(str(path))
        return part

    def _save(self, name: str, parts: list[str], schema: ibis.Schema) -> None:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        old = ((folder / "_current.json").exists() and self._current(name)["parts"]) or []
        info = {"parts": parts, "schema": {k: str(v) for k, v in schema.items()}}
        tmp = folder / "_current.json.tmp"
        tmp.write_text(json.dumps(info))
        tmp.replace(folder / "_current.json")
        self._register(name)
        for p in set(old) - set(parts):
            shutil.rmtree(folder / p, ignore_errors=True)

    def exists(self, name: str) -> bool:
        return (self.root / name / "_current.json").exists()

    def replace(self, name: str, obj: TableLike) -> ir.Table:
        self._inputs_changed(name)
        expr = _as_input(obj)
        # Materialise into a new part first, then swap: the expression may read `name`.
        part = self._write_part(name, expr)
        self._save(name, [part], expr.schema())
        return self.con.table(name)

    def scratch(self, name: str, obj: TableLike) -> ir.Table:
        return self.replace(name, obj)

    def append(self, name: str, obj: TableLike, *, count: bool = True) -> int:
        self._inputs_changed(name)
        target = self.table(name)
        expr = _as_input(obj).select(*target.columns)
        part = self._write_part(name, expr.cast(target.schema()))
        self._save(name, [*self._current(name)["parts"], part], target.schema())
        if not count:
            return 0
        return int(self.con._session.read.parquet(str(self.root / name / part)).count())

    def create_empty(self, name: str, schema: ibis.Schema) -> None:
        if not self.exists(name):
            self._save(name, [], schema)

    def delete_rows(self, name: str, column: str, values: Sequence[str]) -> int:
        if not values or not self.exists(name):
            return 0
        t = self.table(name)
        doomed = t[column].isin(list(values)).fill_null(False)
        gone = self.count(t.filter(doomed))
        if gone:
            self.replace(name, t.filter(~doomed))
        return gone

    @contextlib.contextmanager
    def lending_memory(self, share: float = 0.75) -> Iterator[str | None]:
        # Spark runs in its own JVM, with its own memory: nothing to lend.
        yield self.settings.warehouse.memory_limit

    @contextlib.contextmanager
    def reading(self, rows: pa.Table) -> Iterator[ir.Table]:
        name = f"_loupe_in_{uuid.uuid4().hex[:12]}"
        try:
            yield self.scratch(name, rows)
        finally:
            self.drop(name)

    def drop(self, name: str) -> None:
        self._inputs_changed(name)
        if self.exists(name):
            self.con._session.catalog.dropTempView(name)
            shutil.rmtree(self.root / name, ignore_errors=True)

    def _location(self) -> str:
        return str(self.root)
