"""The ``models`` stage of ``loupe run``: refresh every model the project asks for.

``[models] run`` lists the parts (default: CLV, propensity, due dates, demand forecast) in the
order they run.  CLV comes first so the propensity models can read its columns from
``customer_features``.  A part that cannot run on this data (too few repeat buyers, too few
positives, too little history) raises a :class:`~loupe.errors.LoupeError`; the stage reports
it under ``skipped`` with the error's what/where/fix and goes on with the next part, so one
thin category does not stop the segments that follow.  Any other exception is a bug and
propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loupe.errors import LoupeError
from loupe.warehouse import Warehouse

Progress = Callable[[str, int, int], None]


def _clv(wh: Warehouse, progress: Progress | None) -> dict[str, Any]:
    from loupe.models.clv_project import run_clv

    return run_clv(wh, progress=progress)


def _propensity(wh: Warehouse, progress: Progress | None) -> dict[str, Any]:
    from loupe.models.propensity import run_models_propensity

    return run_models_propensity(wh, progress)


def _due(wh: Warehouse, progress: Progress | None) -> dict[str, Any]:
    from loupe.models.due import run_due

    return run_due(wh, progress)


def _forecast(wh: Warehouse, progress: Progress | None) -> dict[str, Any]:
    from loupe.models.forecast import run_forecast

    return run_forecast(wh, progress)


PARTS: dict[str, Callable[[Warehouse, Progress | None], dict[str, Any]]] = {
    "clv": _clv,
    "propensity": _propensity,
    "due": _due,
    "forecast": _forecast,
}


def run_models(wh: Warehouse, progress: Progress | None = None) -> dict[str, Any]:
    """Run each part of ``[models] run``; return ``{part: report, ..., "skipped": {...}}``.

    ``skipped`` maps a part that could not run to ``{"what", "where", "fix"}``.
    """
    report: dict[str, Any] = {}
    skipped: dict[str, dict[str, str | None]] = {}
    for part in wh.settings.models.run:
        try:
            report[part] = PARTS[part](wh, progress)
        except LoupeError as exc:
            skipped[part] = {"what": exc.what, "where": exc.where, "fix": exc.fix}
    report["skipped"] = skipped
    return report
