"""The quality stage: ``raw_*`` → standardised, deduplicated, flagged canonical tables.

Order of work:

1. Distinct email and phone keys of every raw table (engine), standardised in Python (small,
   cached), shipped back as two ``ibis.memtable`` lookups.
2. Per table: exact duplicates and superseded versions removed (window functions), columns
   standardised and row flags set (one expression).  Tables without checks are stored now;
   the others stay an expression, or go to a work table (in memory, spilled when needed) when
   duplicates were found and their ranking would otherwise run once per check query.
3. Per table: outliers and cross-table checks add flags, and the table is stored once.  (It
   was stored, then rewritten with its flags: a second write of every event.  Then every
   checked table went through a work table; without it the 50k-customer company's quality
   stage peaks at 1.46-1.50 GB instead of 2.55 GB, in the same time, with identical tables.)
4. The baskets of ``order_items`` stored for basket analysis (:mod:`loupe.quality.baskets`).
5. Metrics (aggregates in the engine) → :class:`QualityReport`, appended to ``quality_metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from loupe.quality import canonical, checks, dedupe, report
from loupe.quality import standardise as st
from loupe.quality.baskets import store_baskets
from loupe.warehouse import Warehouse, schemas, stage_run, utcnow

Progress = Callable[[str, int, int], None]

#: Tables in the order they are built (events' checks read contacts, orders' read order_items).
TABLES: tuple[str, ...] = tuple(schemas.RAW_COLUMNS)

METRICS_TABLE = "quality_metrics"
METRICS_SCHEMA = schemas.schema(schemas.QUALITY_METRICS)


def _work(table: str) -> str:
    """The work table a checked table is published to before its flags are added."""
    return f"_quality_{table}"


def _noop(step: str, done: int, total: int) -> None:
    return None


def _distinct_keys(wh: Warehouse, kind: str) -> pa.ChunkedArray:
    key_expr = st.email_key_expr if kind == "email" else st.phone_key_expr
    parts: list[ir.Table] = []
    for table in ("contacts", "orders", "feedback"):
        raw = wh.table(f"raw_{table}")
        parts.append(raw.select(key=key_expr(raw[kind])))
    consents = wh.table("raw_consents")
    consents = consents.filter(consents.identifier_type.strip().lower() == kind)
    parts.append(consents.select(key=key_expr(consents.identifier)))
    keys = ibis.union(*parts, distinct=True)
    return wh.to_arrow(keys.filter(keys.key.notnull()))["key"]


def _distinct_countries(wh: Warehouse) -> pa.ChunkedArray:
    raw = wh.table("raw_contacts")
    names = raw.select(key=st.place_key_expr(raw.country)).distinct()
    return wh.to_arrow(names.filter(names.key.notnull()))["key"]


def _place_counts(wh: Warehouse) -> pa.Table:
    """Each distinct place name of the contacts (city or region, trimmed) and how many rows
    hold it."""
    raw = wh.table("raw_contacts")
    names = ibis.union(
        *(raw.select(value=st.place_key_expr(raw[c])) for c in ("city", "region")), distinct=False
    )
    names = names.filter(names.value.notnull())
    return wh.to_arrow(names.group_by("value").aggregate(n=names.count()))


def _row_counts(wh: Warehouse, tables: dict[str, ir.Table]) -> dict[str, int]:
    """Row count of each table, in one query."""
    parts = [t.aggregate(n=t.count()).mutate(name=ibis.literal(name)) for name, t in tables.items()]
    frame = wh.to_pandas(ibis.union(*parts))
    return {str(k): int(v) for k, v in zip(frame["name"], frame["n"], strict=True)}


def run_quality(wh: Warehouse, progress: Progress | None = None) -> report.QualityReport:
    """Standardise, deduplicate and flag every ``raw_<table>`` into its canonical table.

    Parameters
    ----------
    wh
        The open warehouse; settings come from ``wh.settings`` (``[quality]``,
        ``project.default_region``, ``project.base_currency``, ``currency_rates``).
    progress
        Optional ``callable(step, done, total)`` called as each table is finished.

    Returns
    -------
    QualityReport
        Per-table and per-column metrics; also appended to the ``quality_metrics`` table.
    """
    tick = progress or _noop
    settings = wh.settings
    n = len(TABLES)
    steps: dict[str, float] = {}
    inputs = [f"raw_{t}" for t in TABLES]
    outputs = [*TABLES, "order_baskets", "basket_items", METRICS_TABLE]
    with stage_run(wh, "quality", inputs, outputs) as run:
        started = time.perf_counter()
        tick("standardise emails, phones and places", 0, 2)
        emails, email_timing = st.email_lookup(_distinct_keys(wh, "email"))
        tick("standardise emails, phones and places", 1, 2)
        region = settings.project.default_region
        phones, phone_timing = st.phone_lookup(_distinct_keys(wh, "phone"), region)
        countries, country_timing = st.country_lookup(_distinct_countries(wh))
        places, place_timing, place_changes = st.place_lookup(_place_counts(wh))
        tick("standardise emails, phones and places", 2, 2)
        steps["lookups"] = time.perf_counter() - started

        ctx = canonical.Context(
            emails=emails,
            phones=phones,
            countries=countries,
            places=places,
            rates=st.rates_with_base(settings.currency_rates, settings.project.base_currency),
            base_currency=settings.project.base_currency,
            today=date.today(),
        )
        started = time.perf_counter()
        raw = {t: wh.table(f"raw_{t}") for t in TABLES}
        published = {t: wh.table(t) for t in TABLES}
        rows_in = _row_counts(wh, raw)
        stale_rows = _row_counts(wh, published)
        removed: dict[str, dedupe.DedupeCounts] = {}
        after_checks: set[str] = set()  # stored after the checks, with their flags
        for i, table in enumerate(TABLES):
            if rows_in[table] or stale_rows[table]:
                removed[table] = dedupe.counts(wh, raw[table], table, rows_in[table])
                rows = dedupe.deduplicated(raw[table], table, removed[table])
                built = canonical.build(table, rows, ctx)
                if table in checks.CHECKED:  # stored once, with its flags, after the checks
                    # The checks read a few columns of it (medians, a join on one key), so
                    # they run on the expression itself and the table is written once.  Only
                    # rows that need ranking (duplicates found) go to a work table first:
                    # every check query would rank them again.
                    dupes = removed[table].exact_duplicates or removed[table].superseded
                    published[table] = wh.scratch(_work(table), built) if dupes else built
                    after_checks.add(table)
                else:
                    published[table] = wh.replace(table, built)
            else:
                removed[table] = dedupe.DedupeCounts(0, 0)
            tick("deduplicate and standardise", i + 1, n)
        steps["publish"] = time.perf_counter() - started

        started = time.perf_counter()
        results: dict[str, list[checks.CheckResult]] = {}
        for i, table in enumerate(TABLES):
            results[table] = []
            flagged = None
            if rows_in[table]:
                flagged, _scales, results[table] = checks.apply_checks(
                    wh, table, published, settings.quality
                )
            if table in after_checks:
                published[table] = wh.replace(
                    table, published[table] if flagged is None else flagged
                )
                wh.drop(_work(table))
            tick("outliers and consistency", i + 1, n)
        steps["checks"] = time.perf_counter() - started

        started = time.perf_counter()
        tick("baskets", 0, 1)
        store_baskets(wh)
        tick("baskets", 1, 1)
        steps["baskets"] = time.perf_counter() - started

        started = time.perf_counter()
        computed_at = utcnow()
        tables = []
        for i, table in enumerate(TABLES):
            tables.append(
                report.measure_table(
                    wh,
                    table,
                    published[table] if rows_in[table] else None,
                    rows_in[table],
                    removed[table],
                    results[table],
                    computed_at,
                )
            )
            tick("measure", i + 1, n)
        steps["measure"] = time.perf_counter() - started

        result = report.QualityReport(
            computed_at=computed_at,
            tables=tuple(tables),
            timings=(email_timing, phone_timing, country_timing, place_timing),
            places=place_changes,
            step_seconds=steps,
            freshness_days=settings.quality.freshness_days,
            outlier_threshold=settings.quality.outlier_threshold,
            order_total_tolerance=settings.quality.order_total_tolerance,
        )
        wh.create_empty(METRICS_TABLE, METRICS_SCHEMA)
        metrics = pa.Table.from_pandas(
            result.metrics_frame(), schema=METRICS_SCHEMA.to_pyarrow(), preserve_index=False
        )
        wh.append(METRICS_TABLE, ibis.memtable(metrics))
        run.rows_in = sum(rows_in.values())
        run.rows_out = sum(t.rows_out for t in tables)
    return result
