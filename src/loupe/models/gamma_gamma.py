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

Speed: spend values are continuous, so identical customers are not grouped (``compress =
False``).  Instead ``_total`` splits the log-likelihood into sums fixed by the data
(``sum log zbar``, ``sum x log zbar``, ``sum x log x``, computed once), functions of ``x``
alone (once per distinct ``x``), and the one term that mixes data and parameters,
``(px+q) log(gamma + x zbar)``: one log and one division per repeat customer per iteration.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from loupe.models.base import Arrays, MLEModel, wsum


class GammaGammaModel(MLEModel):
    """Gamma-Gamma spend model; parameters ``p, q, gamma``.

    ``fit(summary)`` takes ``frequency`` (repeat transactions) and ``monetary_value`` (their
    mean value); rows with ``frequency == 0`` are ignored.
    """

    name: ClassVar[str] = "gamma_gamma"
    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")
    compress: ClassVar[bool] = False

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

    def _total(self, params: np.ndarray, d: Arrays, w: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = params
        x, m = d["frequency"], d["monetary_value"]
        if "_x_unique" not in d:
            d["_x_unique"], inv = np.unique(x, return_inverse=True)
            d["_w_x"] = np.bincount(inv, weights=w, minlength=len(d["_x_unique"]))
            log_m, wx = np.log(m), w * x
            d["_wx"] = wx
            d["_consts"] = np.array([wsum(w, log_m), wsum(wx, log_m), wsum(wx, np.log(x)), w.sum()])
        xu, w_x, wx = d["_x_unique"], d["_w_x"], d["_wx"]
        s_logm, s_xlogm, s_xlogx, total_w = d["_consts"]
        gxm = gamma + x * m
        log_gxm = np.log(gxm)
        inv_gxm = 1.0 / gxm
        s_l, s_xl = wsum(w, log_gxm), wsum(wx, log_gxm)
        s_d, s_xd = wsum(w, inv_gxm), wsum(wx, inv_gxm)
        pxu = p * xu
        ll = (
            float(w_x @ (gammaln(pxu + q) - gammaln(pxu)))
            - total_w * gammaln(q)
            + total_w * q * np.log(gamma)
            + p * s_xlogm
            - s_logm
            + p * s_xlogx
            - p * s_xl
            - q * s_l
        )
        psi = digamma(pxu + q)
        grad = np.array(
            [
                float(w_x @ (xu * (psi - digamma(pxu)))) + s_xlogm + s_xlogx - s_xl,
                float(w_x @ psi) - total_w * digamma(q) + total_w * np.log(gamma) - s_l,
                total_w * q / gamma - p * s_xd - q * s_d,
            ]
        )
        return ll, grad

    def _start(self, d: Arrays, w: np.ndarray) -> list[np.ndarray]:
        mean_m = wsum(w, d["monetary_value"]) / max(w.sum(), 1.0)
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
