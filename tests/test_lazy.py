"""The lazily exported packages: every public name resolves, none is hidden by a submodule,
and reading the config does not load the heavy libraries."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

PACKAGES = ["loupe.models", "loupe.profile", "loupe.segments"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_resolves_and_no_submodule_shares_its_name(package):
    pkg = importlib.import_module(package)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    assert not submodules & set(pkg.__all__)
    assert set(pkg.__all__) == set(pkg._EXPORTS)
    for name in pkg.__all__:
        importlib.import_module(pkg._EXPORTS[name])  # loads its submodules, as real use does
    for name in pkg.__all__:
        assert not isinstance(getattr(pkg, name), ModuleType), name
    with pytest.raises(AttributeError, match="no attribute"):
        _ = pkg.no_such_name


def test_reading_the_config_loads_no_dataframe_library():
    code = (
        "import sys, loupe.config, loupe.cli.main; "
        "print(sorted(m for m in ('pandas', 'ibis', 'scipy', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
