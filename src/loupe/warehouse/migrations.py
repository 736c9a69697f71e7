"""Versioned migrations that create the canonical tables.

Each migration has a number, a name and a function; ``schema_migrations`` records which have
run.  Migrations only ever add: a new column or table is a new migration, so a warehouse made
by an older Loupe is brought forward in place.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import ibis

from loupe.warehouse import schemas as s

if TYPE_CHECKING:
    from loupe.warehouse.connection import Warehouse

MIGRATIONS_TABLE = "schema_migrations"
MIGRATIONS_SCHEMA = ibis.schema({"version": "int64", "name": "string", "applied_at": "timestamp"})


def _v1_canonical(wh: Warehouse) -> None:
    for table in s.RAW_COLUMNS:
        wh.create_empty(f"raw_{table}", s.raw_schema(table))
        wh.create_empty(table, s.canonical_schema(table))
    wh.create_empty("quarantine", s.schema(s.QUARANTINE))
    wh.create_empty("ingested_files", s.schema(s.INGESTED_FILES))
    wh.create_empty("stage_runs", s.schema(s.STAGE_RUNS))


def _v2_identity(wh: Warehouse) -> None:
    wh.create_empty("identity_links", s.schema(s.IDENTITY_LINKS))
    wh.create_empty("customers", s.schema(s.CUSTOMERS))


def _v3_audit(wh: Warehouse) -> None:
    wh.create_empty("audit_log", s.schema(s.AUDIT_LOG))


def _v4_stage_outputs(wh: Warehouse) -> None:
    wh.create_empty("quality_metrics", s.schema(s.QUALITY_METRICS))
    wh.create_empty("shared_identifiers", s.schema(s.SHARED_IDENTIFIERS))
    wh.create_empty("identity_matches", s.schema(s.IDENTITY_MATCHES))


def _v5_profile(wh: Warehouse) -> None:
    for name, columns in (
        ("customer_tags", s.CUSTOMER_TAGS),
        ("lifecycle_history", s.LIFECYCLE_HISTORY),
        ("segments", s.SEGMENTS),
        ("segment_members", s.SEGMENT_MEMBERS),
    ):
        wh.create_empty(name, s.schema(columns))


def _v6_models(wh: Warehouse) -> None:
    for name, columns in (
        ("model_registry", s.MODEL_REGISTRY),
        ("model_scores", s.MODEL_SCORES),
        ("purchase_due", s.PURCHASE_DUE),
        ("demand_forecasts", s.DEMAND_FORECASTS),
    ):
        wh.create_empty(name, s.schema(columns))


def _v7_file_stats(wh: Warehouse) -> None:
    """``ingested_files`` gains ``size`` and ``modified_ns`` (NULL for files loaded before)."""
    files = wh.table("ingested_files")
    missing = {c: k for c, k in s.INGESTED_FILES.items() if c not in files.columns}
    if missing:
        added = files.mutate(**{c: ibis.null(k) for c, k in missing.items()})
        wh.replace("ingested_files", added.select(*s.INGESTED_FILES))


def _v8_id_changes(wh: Warehouse) -> None:
    wh.create_empty("customer_id_changes", s.schema(s.CUSTOMER_ID_CHANGES))


def _v9_match_levels(wh: Warehouse) -> None:
    """``identity_matches`` gains ``levels`` (NULL for pairs linked before)."""
    matches = wh.table("identity_matches")
    if "levels" not in matches.columns:
        added = matches.mutate(levels=ibis.null("string"))
        wh.replace("identity_matches", added.select(*s.IDENTITY_MATCHES))


MIGRATIONS: list[tuple[int, str, Callable[[Warehouse], None]]] = [
    (1, "canonical and raw tables, quarantine, lineage", _v1_canonical),
    (2, "identity links and customers", _v2_identity),
    (3, "audit log", _v3_audit),
    (4, "quality metrics, shared identifiers, identity matches", _v4_stage_outputs),
    (5, "customer tags, lifecycle history, segments and their members", _v5_profile),
    (6, "model registry, model scores, purchase due dates, demand forecasts", _v6_models),
    (7, "size and modification time of ingested files", _v7_file_stats),
    (8, "customer ids retired by identity runs, and where their records went", _v8_id_changes),
    (9, "each probabilistic pair's level and weight per comparison", _v9_match_levels),
]


def applied(wh: Warehouse) -> set[int]:
    if not wh.exists(MIGRATIONS_TABLE):
        return set()
    df = wh.to_pandas(wh.table(MIGRATIONS_TABLE).select("version"))
    return {int(v) for v in df["version"]}


def migrate(wh: Warehouse) -> list[int]:
    """Apply every migration not yet applied; return the versions applied now.

    The versions applied are recorded together once all have run: one insert, where one per
    migration (each with two counts) was a third of the time of opening a fresh warehouse.
    If one fails, none of this run's are recorded; they run again next time, which is
    harmless since a migration only creates what does not exist yet.
    """
    wh.create_empty(MIGRATIONS_TABLE, MIGRATIONS_SCHEMA)
    done = applied(wh)
    new = [(version, name, step) for version, name, step in MIGRATIONS if version not in done]
    for _version, _name, step in new:
        step(wh)
    if new:
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = {
            "version": [v for v, _, _ in new],
            "name": [n for _, n, _ in new],
            "applied_at": [now] * len(new),
        }
        wh.append(MIGRATIONS_TABLE, ibis.memtable(rows).cast(MIGRATIONS_SCHEMA), count=False)
    return [v for v, _, _ in new]
