"""Connection (Ibis), canonical schemas, migrations and lineage."""

# Imported first, for their side effects: ``duckdb_compat`` lets Ibis 12 run on DuckDB 2, and
# ``functions`` fixes Ibis's compilation of argmin/argmax (DuckDB) and of bit masks (Spark);
# both must hold for every query, whoever opened the warehouse.
from loupe.warehouse import duckdb_compat as duckdb_compat
from loupe.warehouse import functions as functions
from loupe.warehouse.connection import Warehouse, quiet_duckdb
from loupe.warehouse.lineage import StageRun, stage_run, utcnow
from loupe.warehouse.migrations import migrate

__all__ = ["StageRun", "Warehouse", "migrate", "quiet_duckdb", "stage_run", "utcnow"]
