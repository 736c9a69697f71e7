"""Package exports loaded on first use.

``loupe.config`` reads the settings modules of ``loupe.models``, ``loupe.profile`` and
``loupe.segments``, and importing a submodule runs its package's ``__init__``.  When those
imported their whole API, every ``loupe`` command (``--help`` and ``--version`` included)
loaded SciPy, pandas and Ibis before it could start: 3.3-3.6 s for ``loupe --version``,
0.4-0.5 s now.
Each package maps its public names to the modules that define them and resolves them here.

A submodule must not share a name with an export: importing the submodule sets the package
attribute to the module, which would hide the export (``tests/test_lazy.py`` checks this).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` on first use."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
