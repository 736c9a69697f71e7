"""Customer-base models: who will buy again, how often, for how much.

Transaction models (BG/NBD, Pareto/NBD), the Gamma-Gamma spend model, customer lifetime value,
and the frequency/recency/T summary they are fitted on (built with Ibis in the warehouse).
"""

from loupe.models.base import FitConfig, NotFittedError
from loupe.models.bgnbd import BetaGeoModel
from loupe.models.clv import (
    TRANSACTION_MODELS,
    customer_lifetime_value,
    fit_clv_models,
    period_length,
)
from loupe.models.gamma_gamma import GammaGammaModel
from loupe.models.pareto_nbd import ParetoNBDModel
from loupe.models.summary import (
    SummarySpec,
    TimeUnit,
    calibration_holdout_summary,
    execute_summary,
    holdout_summary,
    purchase_days,
    repeat_spend,
    rfm_summary,
    summary_counts,
)
from loupe.models.transactions_file import read_transactions_file
from loupe.models.validation import holdout_chart_html, holdout_comparison

__all__ = [
    "TRANSACTION_MODELS",
    "BetaGeoModel",
    "FitConfig",
    "GammaGammaModel",
    "NotFittedError",
    "ParetoNBDModel",
    "SummarySpec",
    "TimeUnit",
    "calibration_holdout_summary",
    "customer_lifetime_value",
    "execute_summary",
    "fit_clv_models",
    "holdout_chart_html",
    "holdout_comparison",
    "holdout_summary",
    "period_length",
    "purchase_days",
    "read_transactions_file",
    "repeat_spend",
    "rfm_summary",
    "summary_counts",
]
