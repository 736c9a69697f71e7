"""Shared fixtures: every test gets a fresh warehouse in its own tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from loupe.config import Settings, parse_settings
from loupe.warehouse import Warehouse

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

# CI replays the same examples every run (a red CI must mean a real regression); local runs
# keep exploring new ones.  Failures found locally belong in @example(...) on the test.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def make_settings(root: Path, **sections) -> Settings:
    """Settings for a project in ``root`` (``sections`` as in loupe.toml)."""
    return parse_settings(sections, root, str(root / "loupe.toml"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def wh(settings: Settings):
    warehouse = Warehouse.open(settings)
    yield warehouse
    warehouse.close()
