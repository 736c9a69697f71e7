"""Connection (Ibis), canonical schemas, migrations and lineage."""

from loupe.warehouse.connection import Warehouse
from loupe.warehouse.lineage import StageRun, stage_run, utcnow
from loupe.warehouse.migrations import migrate

__all__ = ["StageRun", "Warehouse", "migrate", "stage_run", "utcnow"]
