"""Numbers in sentences, for messages and terminal output."""

from __future__ import annotations


def counted(n: int, one: str, many: str) -> str:
    """``n`` with its noun: ``counted(1, "record", "records")`` is ``'1 record'``, and
    ``counted(1200, …)`` is ``'1,200 records'``."""
    return f"{n:,} {one if n == 1 else many}"
