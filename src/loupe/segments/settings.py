"""Settings of the segments stage: ``[[segments]]`` in ``loupe.toml`` (saved audiences).

Hooked into :class:`loupe.config.Settings` as ``segments: list[SegmentSettings]``; a declared
segment is saved into the ``segments`` table and refreshed by ``loupe run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:
    from loupe.config import Settings

MAX_NAME = 100


class SegmentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    expr: str
    """A condition in the segment language (docs/segments.md)."""
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v or len(v) > MAX_NAME:
            raise ValueError(f"a segment name has 1 to {MAX_NAME} characters")
        return v


def declared_segments(settings: Settings | None) -> list[SegmentSettings]:
    """The ``[[segments]]`` of ``settings`` (none when the section is not hooked in)."""
    found = getattr(settings, "segments", None) or []
    return [s for s in found if isinstance(s, SegmentSettings)]
