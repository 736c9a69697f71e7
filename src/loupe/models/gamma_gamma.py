"""Gamma-Gamma model of the average transaction value.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
customer base analysis. *Journal of Marketing Research* 42(4), 415-430.
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
http://brucehardie.com/notes/025/

A customer's transaction values are ``z_i ~ Gamma(p, nu)`` with ``nu ~ Gamma(q, gamma)``.  Only
the mean ``zbar`` of the ``x`` repeat transactions matters; its density is

.. math::

    f(\\bar z \\mid x) = \\frac{\\Gamma(px+q)}{\\Gamma(px)\\Gamma(q)}
        \\frac{\\gamma^q\\, \\bar z^{px-1} x^{px}}{(\\gamma + x\\bar z)^{px+q}}

and the conditional expected average spend is

.. math::

    E[M \\mid \\bar z, x] = \\frac{p(\\gamma + x\\bar z)}{px + q - 1}
        = \\frac{q-1}{px+q-1}\\frac{p\\gamma}{q-1} + \\frac{px}{px+q-1}\\bar z .

The model assumes spend is independent of the purchase process; customers with ``x = 0`` carry
no spend information and are left out of the fit (their prediction is the population mean
``p gamma / (q - 1)``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from loupe.models.base import Arrays, MLEModel


class GammaGammaModel(MLEModel):
    """Gamma-Gamma spend model; parameters ``p, q, gamma``.

    ``fit(summary)`` takes ``frequency`` (repeat transactions) and ``monetary_value`` (their
    mean value); rows with ``frequency == 0`` are ignored.
    """

    name: ClassVar[str] = "gamma_gamma"
    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")

    def _arrays(self, data: pd.DataFrame) -> Arrays:
        d = super()._arrays(data)
        keep = d["frequency"] > 0
        if np.any(d["monetary_value"][keep] <= 0):
            raise ValueError("gamma_gamma: monetary_value must be > 0 for repeat customers")
        return {k: v[keep] for k, v in d.items()}

    def _loglik(self, params: np.ndarray, d: Arrays) -> np.ndarray:
        p, q, gamma = params
        x, m = d["frequency"], d["monetary_value"]
        px = p * x
        return (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(gamma + x * m)
        )

    def _loglik_grad(self, params: np.ndarray, d: Arrays) -> np.ndarray:
        p, q, gamma = params
        x, m = d["frequency"], d["monetary_value"]
        px = p * x
        log_gxm = np.log(gamma + x * m)
        psi = digamma(px + q)
        grad = np.empty((len(x), 3))
        grad[:, 0] = x * (psi - digamma(px) + np.log(m) + np.log(x) - log_gxm)
        grad[:, 1] = psi - digamma(q) + np.log(gamma) - log_gxm
        grad[:, 2] = q / gamma - (px + q) / (gamma + x * m)
        return grad

    def _start(self, d: Arrays, w: np.ndarray) -> list[np.ndarray]:
        mean_m = float(w @ d["monetary_value"]) / max(w.sum(), 1.0)
        return [np.array([1.0, 2.0, mean_m]), np.array([5.0, 3.0, 2.0 * mean_m])]

    def predict_spend(self, data: pd.DataFrame) -> np.ndarray:
        """Conditional expected average transaction value E[M | zbar, x] for every row
        (the population mean ``p gamma / (q-1)`` where ``frequency == 0``)."""
        p, q, gamma = self._check_fitted()
        x = np.asarray(data["frequency"], dtype=np.float64)
        m = np.asarray(data["monetary_value"], dtype=np.float64)
        m = np.where(x > 0, m, 0.0)
        return p * (gamma + x * m) / (p * x + q - 1)

    def predict_population_spend(self) -> float:
        """Mean transaction value of a new customer, ``p gamma / (q - 1)`` (needs q > 1)."""
        p, q, gamma = self._check_fitted()
        return float(p * gamma / (q - 1)) if q > 1 else float("inf")
