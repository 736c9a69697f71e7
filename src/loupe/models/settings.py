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


FairnessAttribute = Literal["gender", "age_band", "region", "city"]
FAIRNESS_ATTRIBUTES: tuple[FairnessAttribute, ...] = ("gender", "age_band", "region", "city")


class PropensitySettings(_Strict):
    """How propensity models are trained, calibrated, explained and scored."""

    features: list[str] = Field(default_factory=list)
    """Snapshot columns (or globs such as ``cat_share_*``); empty means every numeric one."""
    booster: Literal["lightgbm"] = "lightgbm"
    validation_days: int = Field(default=90, gt=0)
    """The training cutoff lies this many days (at least the label's horizon) before the
    validation cutoff."""
    train_snapshots: int = Field(default=2, ge=1, le=12)
    """Training snapshots stacked, ``validation_days`` apart, ending at the training cutoff."""
    calibration: Literal["auto", "isotonic", "sigmoid"] = "auto"
    """``auto``: isotonic with at least 1,000 calibration rows, else Platt (sigmoid)."""
    min_positives: int = Field(default=20, gt=0)
    """Fewer positive (or negative) labels than this in a snapshot is an error."""
    top_drivers: int = Field(default=5, gt=0)
    fairness_attribute: FairnessAttribute = "gender"
    min_group_size: int = Field(default=30, gt=0)
    """Groups smaller than this are reported but left out of the disparity ratio."""
    app_sources: list[str] = Field(default_factory=lambda: ["app"])
    """Event sources that are the mobile app (for the app-engagement features)."""
    seed: int = 0


class DueSettings(_Strict):
    """Next-purchase dates per customer and category (``[models.due]``, see
    ``docs/models-planning.md``)."""

    level: Literal["category", "all"] = "category"
    """``category``: one due date per customer and product category; ``all``: per customer."""
    min_purchases: int = Field(default=2, ge=2)
    """Purchases a customer needs before their own cadence counts at all; customers with fewer
    use the population's cadence (basis ``population``)."""
    interval: float = Field(default=0.8, gt=0, lt=1)
    """Coverage of the interval (``low_date``..``high_date``) around the expected date."""
    prior_intervals: float | None = Field(default=None, gt=0)
    """How many of a customer's own intervals weigh as much as the population's cadence.
    Unset: estimated per category from the data (empirical Bayes)."""


SalesMetric = Literal["revenue", "units"]
SALES_METRICS: tuple[SalesMetric, ...] = ("revenue", "units")


class ForecastSettings(_Strict):
    """Demand forecast per category (``[models.forecast]``, see ``docs/models-planning.md``)."""

    freq: Literal["D", "W"] = "W"
    """``D`` daily or ``W`` weekly (weeks start on Monday) sales."""
    horizon: int = Field(default=8, gt=0)
    """Periods to forecast, and the length of each backtest window."""
    models: list[ForecastModel] = Field(default_factory=lambda: list(FORECAST_MODELS))
    """Candidate models; the seasonal-naive baseline is always fitted too."""
    metrics: list[SalesMetric] = Field(default_factory=lambda: list(SALES_METRICS))
    """What is forecast: line revenue in the base currency, units sold, or both."""
    backtest_windows: int = Field(default=3, gt=0)
    level: int = Field(default=80, gt=0, lt=100)
    """Coverage (%) of the prediction intervals."""
    max_history: int | None = Field(default=None, gt=0)
    """Most recent periods the models see.  Unset: 365 days or 156 weeks, plus the backtest
    windows (older sales rarely help these models and make AutoARIMA slow)."""


class ClvSettings(_Strict):
    """Customer lifetime value written to ``customer_features``."""

    transaction_model: Literal["bgnbd", "pareto_nbd"] = "bgnbd"
    time_unit: Literal["day", "week", "month"] = "week"
    horizon_months: int = Field(default=12, gt=0)
    annual_discount_rate: float = Field(default=0.10, ge=0)


ModelPart = Literal["clv", "propensity", "due", "forecast"]
MODEL_PARTS: tuple[ModelPart, ...] = ("clv", "propensity", "due", "forecast")


class ModelsSettings(_Strict):
    run: list[ModelPart] = Field(default_factory=lambda: list(MODEL_PARTS))
    """Which models ``loupe run`` refreshes, in this order (``[]`` skips the models stage)."""
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
