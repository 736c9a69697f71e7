"""Connection (Ibis), canonical schemas, migrations and lineage."""

# Imported for its side effect too: it fixes Ibis's compilation of argmin/argmax (DuckDB) and of
# bit masks (Spark), which must hold for every query, whoever opened the warehouse.
from loupe.warehouse import functions as functions
from loupe.warehouse.connection import Warehouse
from loupe.warehouse.lineage import StageRun, stage_run, utcnow
from loupe.warehouse.migrations import migrate

__all__ = ["StageRun", "Warehouse", "migrate", "stage_run", "utcnow"]
