"""Settings of the model stage: ``[models]``, ``[[models.labels]]``, ``[models.propensity]``,
``[models.due]``, ``[models.forecast]`` and ``[models.clv]`` in ``loupe.toml``.

Hooked into :class:`loupe.config.Settings` as ``models: ModelsSettings``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ForecastModel = Literal["AutoETS", "AutoARIMA"]
FORECAST_MODELS: tuple[ForecastModel, ...] = ("AutoETS", "AutoARIMA")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSettings(_Strict):
    """A label to train a propensity model on, judged on the data after a cutoff.

    ``kind = "churn"``: 1 when a customer who bought before the cutoff buys nothing in the
    ``horizon_days`` after it.  ``kind = "purchase"``: 1 when the customer buys (in
    ``category``, if given) within ``horizon_days`` after the cutoff.
    """

    name: str
    kind: Literal["churn", "purchase"]
    horizon_days: int = Field(default=90, gt=0)
    category: str | None = None
    description: str = ""


def _default_labels() -> list[LabelSettings]:
    return [
        LabelSettings(
            name="churn_90d",
            kind="churn",
            horizon_days=90,
            description="No purchase in the 90 days after the cutoff",
        ),
        LabelSettings(
            name="purchase_30d",
            kind="purchase",
            horizon_days=30,
            description="Any purchase in the 30 days after the cutoff",
        ),
    ]


class PropensitySettings(_Strict):
    """How propensity models are trained and scored."""

    features: list[str] = Field(default_factory=list)
    """Columns (or globs) of ``customer_features``; empty means every numeric feature."""
    booster: Literal["lightgbm", "xgboost"] = "lightgbm"
    validation_days: int = Field(default=90, gt=0)
    """The training cutoff lies this many days before the validation cutoff."""
    top_drivers: int = Field(default=5, gt=0)
    fairness_attribute: str = "gender"


class DueSettings(_Strict):
    """Next-purchase dates per customer and category."""

    level: Literal["category", "all"] = "category"
    min_purchases: int = Field(default=3, ge=2)
    """Customers with fewer purchases lean on the population's cadence."""
    interval: float = Field(default=0.8, gt=0, lt=1)
    """Coverage of the interval around the expected date."""


class ForecastSettings(_Strict):
    """Demand forecast per category."""

    freq: Literal["D", "W"] = "W"
    horizon: int = Field(default=8, gt=0)
    models: list[ForecastModel] = Field(default_factory=lambda: list(FORECAST_MODELS))
    backtest_windows: int = Field(default=3, gt=0)
    level: int = Field(default=80, gt=0, lt=100)


class ClvSettings(_Strict):
    """Customer lifetime value written to ``customer_features``."""

    transaction_model: Literal["bgnbd", "pareto_nbd"] = "bgnbd"
    time_unit: Literal["day", "week", "month"] = "week"
    horizon_months: int = Field(default=12, gt=0)
    annual_discount_rate: float = Field(default=0.10, ge=0)


class ModelsSettings(_Strict):
    labels: list[LabelSettings] = Field(default_factory=_default_labels)
    propensity: PropensitySettings = PropensitySettings()
    due: DueSettings = DueSettings()
    forecast: ForecastSettings = ForecastSettings()
    clv: ClvSettings = ClvSettings()

    @model_validator(mode="after")
    def _unique_labels(self) -> ModelsSettings:
        names = [label.name for label in self.labels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"label names must be unique; repeated: {', '.join(dupes)}")
        return self
