"""Pareto/NBD: Poisson purchasing with an exponential, unobserved lifetime.

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting your customers: who are they
and what will they do next? *Management Science* 33(1), 1-24.
Fader, P. S. & Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD model and related
expressions. http://brucehardie.com/notes/009/

The purchase rate is ``lambda ~ Gamma(r, alpha)`` and the dropout rate ``mu ~ Gamma(s, beta)``.
With ``x`` repeat purchases, the last at ``t_x``, observed for ``T``:

.. math::

    L = \\frac{\\Gamma(r+x)\\alpha^r\\beta^s}{\\Gamma(r)}\\left[
        \\frac{1}{(\\alpha+T)^{r+x}(\\beta+T)^s} + \\frac{s}{r+s+x}\\,\\big(F(t_x) - F(T)\\big)\\right]

For ``alpha >= beta`` (Fader & Hardie's first case) ``F(t) = 2F1(r+s+x, s+1; r+s+x+1;
(alpha-beta)/(alpha+t)) / (alpha+t)^(r+s+x)``; for ``alpha < beta`` the roles swap to
``2F1(r+s+x, r+x; r+s+x+1; (beta-alpha)/(beta+t)) / (beta+t)^(r+s+x)``.  Both are evaluated
after Euler's transformation ``2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)``, which gives

.. math::

    \\log F(t) = -(r+x)\\log(\\alpha+t) - s\\log(\\beta+t) + \\log {}_2F_1(1, b'; r+s+x+1; z)

for ``alpha >= beta`` and

.. math::

    \\log F(t) = (1-r-x)\\log(\alpha+t) - (s+1)\\log(\beta+t)
        + \\log {}_2F_1\\!\\left(1, s+1; r+s+x+1; \tfrac{\beta-\alpha}{\beta+t}\right)

for ``alpha < beta``: in both cases a series of positive terms in ``z`` in [0, 1), with no
large power ``(alpha+t)^(r+s+x)`` to overflow.  Both equal
``(r+s+x) * integral_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du``, which the tests check.  The
difference ``F(t_x) - F(T)`` is formed in log space (``log1p(-exp(.))``).

Speed: the fit runs on distinct ``(x, t_x, T)`` rows with weights (:mod:`loupe.models.base`)
and ``F`` is evaluated once per distinct ``(x, t_x)`` and ``(x, T)`` pair, which with whole-day
times are ten to thirty times fewer than the rows.  The gradient is by central differences (the
derivatives of ``2F1`` in its parameters have no cheap closed form).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import gammaln, hyp2f1

from loupe.models.base import Arrays, MLEModel, wsum


def _log1mexp(v: np.ndarray) -> np.ndarray:
    """log(1 - exp(v)) for v <= 0, accurate near 0 and for very negative v."""
    v = np.minimum(v, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(v > -0.693, np.log(-np.expm1(v)), np.log1p(-np.exp(v)))


def _hyp2f1_a1(b: Any, c: Any, z: Any) -> np.ndarray:
    """2F1(1, b; c; z) for 0 <= z < 1.

    SciPy loses accuracy near z = 1 when c - a - b is an integer (the degenerate case of the
    1 - z transformation, e.g. s = 2 exactly); there the value is the average at c +/- 1e-5,
    whose error is O(1e-10).
    """
    b, c, z = np.broadcast_arrays(np.asarray(b, float), np.asarray(c, float), np.asarray(z, float))
    out = np.asarray(hyp2f1(1.0, b, c, z), dtype=np.float64).copy()
    gap = c - 1.0 - b
    near = np.abs(gap - np.round(gap)) < 1e-6
    if np.any(near):
        h = 1e-5
        bn, cn, zn = b[near], c[near], z[near]
        out[near] = 0.5 * (hyp2f1(1.0, bn, cn + h, zn) + hyp2f1(1.0, bn, cn - h, zn))
    return out


class ParetoNBDModel(MLEModel):
    """Pareto/NBD transaction model; parameters ``r, alpha, s, beta``.

    ``fit(summary)`` takes one row per customer with ``frequency``, ``recency`` and ``T``.
    """

    name: ClassVar[str] = "pareto_nbd"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def _arrays(self, data: pd.DataFrame) -> Arrays:
        d = super()._arrays(data)
        if np.any(d["recency"] > d["T"] + 1e-9):
            raise ValueError("pareto_nbd: recency must not exceed T")
        return d

    @staticmethod
    def _log_f(r: float, alpha: float, s: float, beta: float, x: np.ndarray, t: np.ndarray):
        la, lb = np.log(alpha + t), np.log(beta + t)
        if alpha >= beta:
            hyp = _hyp2f1_a1(r + x, r + s + x + 1, (alpha - beta) / (alpha + t))
            return -(r + x) * la - s * lb + np.log(hyp)
        hyp = _hyp2f1_a1(s + 1, r + s + x + 1, (beta - alpha) / (beta + t))
        return (1 - r - x) * la - (s + 1) * lb + np.log(hyp)

    def _log_f_cached(
        self, r: float, alpha: float, s: float, beta: float, d: Arrays, key: str
    ) -> np.ndarray:
        """``_log_f`` evaluated once per distinct ``(x, t)`` pair (``t`` = ``d[key]``).

        ``hyp2f1`` dominates the cost and its arguments depend on the customer only through
        ``x`` and ``t``; with whole-day times far fewer pairs than customers exist.
        """
        name = f"_pairs_{key}"
        if name + "_inv" not in d:
            frame = pd.DataFrame({"x": d["frequency"], "t": d[key]})
            grouped = frame.groupby(["x", "t"], sort=False)
            index = grouped.size().index
            d[name + "_x"] = np.asarray(index.get_level_values(0), dtype=np.float64)
            d[name + "_t"] = np.asarray(index.get_level_values(1), dtype=np.float64)
            d[name + "_inv"] = grouped.ngroup().to_numpy()
        values = self._log_f(r, alpha, s, beta, d[name + "_x"], d[name + "_t"])
        return np.asarray(values)[d[name + "_inv"]]

    def _log_parts(self, params: np.ndarray, d: Arrays) -> tuple[np.ndarray, ...]:
        """(log prefactor, log of 'alive at T' term, log of 'died in (t_x, T]' term)."""
        r, alpha, s, beta = params
        x, T = d["frequency"], d["T"]
        pre = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        f_tx = self._log_f_cached(r, alpha, s, beta, d, "recency")
        f_T = self._log_f_cached(r, alpha, s, beta, d, "T")
        with np.errstate(divide="ignore", invalid="ignore"):
            died = np.log(s / (r + s + x)) + f_tx + _log1mexp(f_T - f_tx)
        return pre, alive, died

    def _loglik(self, params: np.ndarray, d: Arrays) -> np.ndarray:
        pre, alive, died = self._log_parts(params, d)
        return pre + np.logaddexp(alive, died)

    def _start(self, d: Arrays, w: np.ndarray) -> list[np.ndarray]:
        mean_x = wsum(w, d["frequency"]) / w.sum()
        mean_T = wsum(w, d["T"]) / w.sum()
        rate = max(mean_x, 1e-3) / max(mean_T, 1e-3)
        return [
            np.array([1.0, 1.0 / rate, 1.0, mean_T]),
            np.array([0.5, 0.5 / rate, 0.5, 0.5 * mean_T]),
        ]

    # -- predictions -----------------------------------------------------------------------

    def predict_probability_alive(self, data: pd.DataFrame) -> np.ndarray:
        """P(alive | x, t_x, T): the share of the likelihood from 'still alive at T'."""
        params = self._check_fitted()
        _, alive, died = self._log_parts(params, self._arrays(data))
        return np.exp(alive - np.logaddexp(alive, died))

    def predict_purchases(self, data: pd.DataFrame, t: float) -> np.ndarray:
        """E[Y(t) | x, t_x, T] (Schmittlein et al. 1987, eq. 22):

        .. math::

            \\frac{(r+x)(\\beta+T)}{(\\alpha+T)(s-1)}
            \\left[1 - \\left(\\frac{\\beta+T}{\\beta+T+t}\\right)^{s-1}\\right] P(\\text{alive})

        (the bracket divided by ``s-1`` becomes ``log((beta+T+t)/(beta+T))`` at ``s = 1``).
        """
        r, alpha, s, beta = self._check_fitted()
        d = self._arrays(data)
        x, T = d["frequency"], d["T"]
        log_ratio = np.log(beta + T + t) - np.log(beta + T)
        near_one = abs(s - 1) < 1e-8
        bracket = log_ratio if near_one else -np.expm1(-(s - 1) * log_ratio) / (s - 1)
        mean = (r + x) * (beta + T) / (alpha + T) * bracket
        return mean * self.predict_probability_alive(data)

    def predict_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] for a new customer: r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]."""
        r, alpha, s, beta = self._check_fitted()
        t = np.asarray(t, dtype=np.float64)
        log_ratio = np.log1p(t / beta)
        bracket = log_ratio if abs(s - 1) < 1e-8 else -np.expm1(-(s - 1) * log_ratio) / (s - 1)
        return r * beta / alpha * bracket
