"""Lineage: every stage run appends one row to ``stage_runs``.

Use :func:`stage_run` as a context manager around a stage; set ``rows_in``/``rows_out`` on
the yielded record.  A failure is recorded with its message and re-raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import ibis

from loupe.warehouse.schemas import STAGE_RUNS, schema

if TYPE_CHECKING:
    from loupe.warehouse.connection import Warehouse


def utcnow() -> datetime:
    """Now in UTC, without a zone (how the warehouse stores timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class StageRun:
    stage: str
    inputs: list[str]
    outputs: list[str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    rows_in: int = 0
    rows_out: int = 0
    started_at: datetime = field(default_factory=utcnow)


@contextmanager
def stage_run(
    wh: Warehouse, stage: str, inputs: list[str], outputs: list[str]
) -> Iterator[StageRun]:
    from loupe import __version__

    run = StageRun(stage, list(inputs), list(outputs))
    status, error = "success", None
    try:
        yield run
    except BaseException as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        row = {
            "run_id": [run.run_id],
            "stage": [stage],
            "inputs": [run.inputs],
            "outputs": [run.outputs],
            "rows_in": [int(run.rows_in)],
            "rows_out": [int(run.rows_out)],
            "started_at": [run.started_at],
            "finished_at": [utcnow()],
            "loupe_version": [__version__],
            "status": [status],
            "error": [error],
        }
        wh.append("stage_runs", ibis.memtable(row, schema=schema(STAGE_RUNS)))
