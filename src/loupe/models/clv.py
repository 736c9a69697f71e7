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
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from loupe.models.gamma_gamma import GammaGammaModel
from loupe.models.summary import DAYS_PER_UNIT, TimeUnit


class TransactionModel(Protocol):
    def predict_purchases(self, data: pd.DataFrame, t: float) -> np.ndarray: ...


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
    value = np.zeros(len(data))
    previous = np.zeros(len(data))
    for k in range(1, horizon + 1):
        cumulative = transaction_model.predict_purchases(data, k * step)
        value += spend * (cumulative - previous) / (1 + discount_rate) ** k
        previous = cumulative
    return pd.Series(value, index=data.index, name="clv")
