"""Loupe: customer data and precision marketing, from raw files to decisions.

>>> import loupe
>>> wh = loupe.open("loupe.toml")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def open(path: str | Path = "loupe.toml"):  # mirrors the documented API: loupe.open
    """Open the project whose ``loupe.toml`` is ``path`` (or lies in folder ``path``)."""
    from loupe.config import load_settings
    from loupe.warehouse import Warehouse

    return Warehouse.open(load_settings(path))


__all__ = ["__version__", "open"]
