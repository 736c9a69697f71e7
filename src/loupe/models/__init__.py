"""Customer-base models: who will buy again, how often, for how much.

Transaction models (BG/NBD, Pareto/NBD), the Gamma-Gamma spend model, customer lifetime value,
and the frequency/recency/T summary they are fitted on (built with Ibis in the warehouse).
"""

from typing import TYPE_CHECKING

from loupe.lazy import lazy_getattr

if TYPE_CHECKING:
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

#: Where each public name lives, loaded on first use (see :mod:`loupe.lazy`).
_EXPORTS = {
    "BetaGeoModel": "loupe.models.bgnbd",
    "FitConfig": "loupe.models.base",
    "GammaGammaModel": "loupe.models.gamma_gamma",
    "NotFittedError": "loupe.models.base",
    "ParetoNBDModel": "loupe.models.pareto_nbd",
    "SummarySpec": "loupe.models.summary",
    "TRANSACTION_MODELS": "loupe.models.clv",
    "TimeUnit": "loupe.models.summary",
    "calibration_holdout_summary": "loupe.models.summary",
    "customer_lifetime_value": "loupe.models.clv",
    "execute_summary": "loupe.models.summary",
    "fit_clv_models": "loupe.models.clv",
    "holdout_chart_html": "loupe.models.validation",
    "holdout_comparison": "loupe.models.validation",
    "holdout_summary": "loupe.models.summary",
    "period_length": "loupe.models.clv",
    "purchase_days": "loupe.models.summary",
    "read_transactions_file": "loupe.models.transactions_file",
    "repeat_spend": "loupe.models.summary",
    "rfm_summary": "loupe.models.summary",
    "summary_counts": "loupe.models.summary",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)

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
