"""``loupe models due`` and ``loupe models forecast``."""

from __future__ import annotations

from loupe.cli.models import models_app  # noqa: F401
