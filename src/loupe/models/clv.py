"""Customer lifetime value from a transaction model and a spend model.

The expected value of a customer over ``K`` future periods of length ``delta`` (in the
summary's time unit), discounted at rate ``d`` per period, is

.. math::

    \\mathrm{CLV} = \\sum_{k=1}^{K} \\frac{E[M]\\,\\big(E[Y(k\\Delta)] - E[Y((k-1)\\Delta)]\\big)}{(1+d)^k}

where ``E[Y(t)]`` is the transaction model's conditional expected number of purchases in the
next ``t`` (BG/NBD or Pareto/NBD) and ``E[M]`` the Gamma-Gamma conditional expected average
spend (Fader, Hardie & Lee 2005, "RFM and CLV", JMR 42(4); the discrete discounting used by
most practitioners, e.g. the ``lifetimes`` package).  With ``period="month"`` a period is
365.25/12 days expressed in the summary's time unit, so ``discount_rate=0.01`` is 1% a month
(about 12.7% a year).

The expected-purchase part depends only on ``(frequency, recency, T)``, so it is computed once
per distinct tuple (the ``hyp2f1`` of BG/NBD's ``E[Y(t)]`` is the costly part) and multiplied by
each customer's expected spend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from loupe.models.base import MLEModel
from loupe.models.bgnbd import BetaGeoModel
from loupe.models.gamma_gamma import GammaGammaModel
from loupe.models.pareto_nbd import ParetoNBDModel
from loupe.models.summary import DAYS_PER_UNIT, TimeUnit, repeat_spend, summary_counts

TransactionModelName = Literal["bgnbd", "pareto_nbd"]
TRANSACTION_MODELS: dict[str, type[MLEModel]] = {
    "bgnbd": BetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
}


class TransactionModel(Protocol):
    def predict_purchases(self, data: pd.DataFrame, t: float) -> np.ndarray: ...


def fit_clv_models(
    execute: Callable[[ir.Table], pd.DataFrame],
    summary: ir.Table,
    *,
    transaction_model: TransactionModelName = "bgnbd",
) -> tuple[MLEModel, GammaGammaModel]:
    """Fit a transaction model and Gamma-Gamma on a summary that stays in the engine.

    Only the sufficient statistics cross to Python: the distinct ``(frequency, recency, T)``
    with their counts (:func:`~loupe.models.summary_counts`) and the repeat customers'
    distinct ``frequency, monetary_value`` with theirs (:func:`~loupe.models.repeat_spend`).

    Parameters
    ----------
    execute
        Runs an Ibis expression and returns a DataFrame (``con.execute``, ``wh.to_pandas``).
    summary
        A per-customer summary (:func:`~loupe.models.rfm_summary`), best materialised first
        since it is read twice.
    transaction_model
        ``"bgnbd"`` or ``"pareto_nbd"``.

    Raises
    ------
    ValueError
        No customers, or no repeat customers for Gamma-Gamma.
    """
    counts = execute(summary_counts(summary))
    model = TRANSACTION_MODELS[transaction_model]().fit(counts, weights=counts["n_customers"])
    rows = execute(repeat_spend(summary))
    spend = GammaGammaModel().fit(rows, weights=rows["n_customers"])
    return model, spend


def period_length(period: TimeUnit, time_unit: TimeUnit) -> float:
    """Length of one discount ``period`` expressed in ``time_unit`` (month = 365.25/12 days)."""
    return DAYS_PER_UNIT[period] / DAYS_PER_UNIT[time_unit]


def customer_lifetime_value(
    transaction_model: TransactionModel,
    spend_model: GammaGammaModel,
    data: pd.DataFrame,
    *,
    horizon: int = 12,
    discount_rate: float = 0.01,
    period: TimeUnit = "month",
    time_unit: TimeUnit = "week",
) -> pd.Series:
    """Discounted expected value of each customer over ``horizon`` periods.

    Parameters
    ----------
    transaction_model
        A fitted :class:`~loupe.models.BetaGeoModel` or :class:`~loupe.models.ParetoNBDModel`.
    spend_model
        A fitted :class:`~loupe.models.GammaGammaModel`.
    data
        The calibration summary (``frequency, recency, T, monetary_value``) in ``time_unit``.
    horizon
        Number of discount periods.
    discount_rate
        Discount rate per period (0.01 = 1% a period).
    period, time_unit
        Length of a discount period, and the time unit of ``data``.

    Returns
    -------
    pandas.Series
        CLV per customer, indexed like ``data``.
    """
    if horizon < 1 or discount_rate <= -1:
        raise ValueError("horizon must be >= 1 and discount_rate > -1")
    step = period_length(period, time_unit)
    spend = spend_model.predict_spend(data)
    tuples = pd.DataFrame(
        {c: np.asarray(data[c], dtype=np.float64) for c in ("frequency", "recency", "T")}
    )
    codes, uniq = _distinct_rows(tuples)
    purchases = np.zeros(len(uniq))
    previous = np.zeros(len(uniq))
    for k in range(1, horizon + 1):
        cumulative = transaction_model.predict_purchases(uniq, k * step)
        purchases += (cumulative - previous) / (1 + discount_rate) ** k
        previous = cumulative
    return pd.Series(spend * purchases[codes], index=data.index, name="clv")


def _distinct_rows(frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Row codes into the distinct rows of ``frame`` (hash-based, first-seen order)."""
    if len(frame) == 0:
        return np.zeros(0, dtype=np.int64), frame
    grouped = frame.groupby(list(frame.columns), sort=False)
    codes = grouped.ngroup().to_numpy()
    uniq = grouped.size().index.to_frame(index=False)
    return codes, uniq
