"""``loupe models``: train, score, report and list predictive models; who is due; forecasts.

The verbs live in this module and in ``cli/models_plan.py`` (``due``, ``forecast``), all on
:data:`models_app`.
"""

from __future__ import annotations

import typer

models_app = typer.Typer(
    help="Predictive models: churn and purchase propensity, next purchase, demand forecast.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``models`` sub-app to the root app."""
    from loupe.cli import models_plan  # noqa: F401  (adds its verbs to models_app)

    app.add_typer(models_app, name="models")
