"""``loupe run``: the stages in loop order, each reading what the previous one wrote.

Later stages (profiles, segments, models …) add themselves to :data:`STAGES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loupe.warehouse import Warehouse

Progress = Callable[[str, int, int], None]


def _ingest(wh: Warehouse, progress: Progress | None) -> Any:
    from loupe.ingest import ingest

    return ingest(wh, progress=progress)


def _quality(wh: Warehouse, progress: Progress | None) -> Any:
    from loupe.quality import run_quality

    return run_quality(wh, progress=progress)


def _identity(wh: Warehouse, progress: Progress | None) -> Any:
    from loupe.identity import resolve_identities

    return resolve_identities(wh, progress=progress)


def _profile(wh: Warehouse, progress: Progress | None) -> Any:
    from loupe.profile import build_profile

    return build_profile(wh, progress=progress)


def _models(wh: Warehouse, progress: Progress | None) -> Any:
    from loupe.models.stage import run_models

    return run_models(wh, progress)


def _segments(wh: Warehouse, progress: Progress | None) -> Any:
    from loupe.segments import refresh_segments

    return refresh_segments(wh, progress)


STAGES: dict[str, Callable[[Warehouse, Progress | None], Any]] = {
    "ingest": _ingest,
    "quality": _quality,
    "identity": _identity,
    "profile": _profile,
    "models": _models,
    "segments": _segments,
}


def run_pipeline(
    wh: Warehouse, stages: list[str] | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Run ``stages`` (default: all, in loop order); return each stage's report."""
    from loupe.errors import LoupeError

    chosen = stages or list(STAGES)
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        raise LoupeError(
            f"Unknown stage(s): {', '.join(unknown)}",
            where="loupe run --stage",
            fix=f"stages are: {', '.join(STAGES)}",
        )
    return {name: STAGES[name](wh, progress) for name in STAGES if name in chosen}
