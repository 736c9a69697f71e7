"""The one fitting plumbing shared by Loupe's maximum-likelihood customer-base models.

A model declares its parameter names, how to turn a per-customer summary into arrays, its
vectorised log-likelihood (with gradient when it has one) and starting values.  This base then
owns everything else: compressing identical customers into weighted rows, optimising the
log-parameters with L-BFGS-B, standard errors, ``summary()``, ``save()`` and ``load()``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import optimize

Arrays = dict[str, np.ndarray]

#: Bounds of the log-parameters: every parameter lies in [exp(-LOG_BOUND), exp(LOG_BOUND)].
LOG_BOUND = 20.0


@dataclass(frozen=True)
class FitConfig:
    """Settings of a maximum-likelihood fit (stored by ``save()``).

    Parameters
    ----------
    penalizer
        L2 penalty ``penalizer * sum(theta**2)`` added to the mean negative log-likelihood;
        0 gives the plain maximum-likelihood estimate.
    max_iter
        Iteration limit of L-BFGS-B.
    tol
        Convergence tolerance (``ftol`` and ``gtol`` of L-BFGS-B) on the mean log-likelihood.
    """

    penalizer: float = 0.0
    max_iter: int = 2000
    tol: float = 1e-12


class NotFittedError(RuntimeError):
    """A prediction was asked of a model that has not been fitted."""


class MLEModel:
    """Base of the maximum-likelihood models (BG/NBD, Pareto/NBD, Gamma-Gamma)."""

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    columns: ClassVar[tuple[str, ...]]

    def __init__(self, config: FitConfig | None = None) -> None:
        self.config = config or FitConfig()

    # -- what a model provides -------------------------------------------------------------

    def _arrays(self, data: pd.DataFrame) -> Arrays:
        """Per-customer arrays (float64) from a summary frame; may drop customers."""
        missing = [c for c in self.columns if c not in data.columns]
        if missing:
            raise ValueError(f"{self.name}: summary data lacks column(s) {missing}")
        arrays = {c: np.asarray(data[c], dtype=np.float64) for c in self.columns}
        for c, v in arrays.items():
            if not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{self.name}: column {c!r} must be finite and >= 0")
        return arrays

    def _loglik(self, params: np.ndarray, d: Arrays) -> np.ndarray:
        """Per-row log-likelihood at natural-scale ``params``."""
        raise NotImplementedError

    def _loglik_grad(self, params: np.ndarray, d: Arrays) -> np.ndarray | None:
        """Per-row gradient (rows x params) at ``params``, or None to use finite differences."""
        return None

    def _start(self, d: Arrays, w: np.ndarray) -> list[np.ndarray]:
        """Starting values (natural scale), tried in order; the best optimum wins."""
        raise NotImplementedError

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, data: pd.DataFrame) -> Self:
        """Maximise the log-likelihood of ``data`` (one row per customer); returns ``self``."""
        d, w = _compress(self._arrays(data))
        if w.sum() == 0:
            raise ValueError(f"{self.name}: no customers to fit")
        total = float(w.sum())
        pen = self.config.penalizer

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(theta)
            ll = self._loglik(params, d)
            f = -float(w @ ll) / total + pen * float(params @ params)
            grad_rows = self._loglik_grad(params, d)
            if grad_rows is None:
                g = -_numeric_grad(lambda p: float(w @ self._loglik(p, d)) / total, params)
            else:
                g = -(w @ grad_rows) / total
            g = (g + 2 * pen * params) * params  # chain rule for theta = log(params)
            if not np.isfinite(f):
                return 1e300, np.zeros_like(theta)
            return f, g

        best: Any = None
        bounds = [(-LOG_BOUND, LOG_BOUND)] * len(self.param_names)
        for start in self._start(d, w):
            res = optimize.minimize(
                objective,
                np.log(start),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={
                    "maxiter": self.config.max_iter,
                    "ftol": self.config.tol,
                    "gtol": 1e-9,
                    "maxls": 50,
                },
            )
            if best is None or res.fun < best.fun:
                best = res
        params = np.exp(best.x)
        self.params_ = dict(zip(self.param_names, params.tolist(), strict=True))
        self.loglik_ = float(w @ self._loglik(params, d))
        self.n_customers_ = int(total)
        self.converged_ = bool(best.success)
        self.n_iter_ = int(best.nit)
        self.std_errors_ = self._std_errors(params, d, w)
        return self

    def _std_errors(self, params: np.ndarray, d: Arrays, w: np.ndarray) -> dict[str, float]:
        """Asymptotic standard errors from the inverse observed information (numerical)."""

        def total_ll(p: np.ndarray) -> float:
            return float(w @ self._loglik(p, d))

        def total_grad(p: np.ndarray) -> np.ndarray:
            rows = self._loglik_grad(p, d)
            return _numeric_grad(total_ll, p) if rows is None else w @ rows

        k = len(params)
        hess = np.empty((k, k))
        for i in range(k):
            h = 1e-4 * params[i]
            up, down = params.copy(), params.copy()
            up[i] += h
            down[i] -= h
            hess[i] = (total_grad(up) - total_grad(down)) / (2 * h)
        hess = (hess + hess.T) / 2
        try:
            cov = np.linalg.inv(-hess)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            se = np.full(k, np.nan)
        return dict(zip(self.param_names, se.tolist(), strict=True))

    # -- inspecting ------------------------------------------------------------------------

    def _check_fitted(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{self.name} is not fitted: call fit() or load() first")
        return np.array([self.params_[n] for n in self.param_names])

    def log_likelihood(self, data: pd.DataFrame) -> np.ndarray:
        """Per-customer log-likelihood of ``data`` at the fitted parameters."""
        return self._loglik(self._check_fitted(), self._arrays(data))

    def summary(self) -> pd.DataFrame:
        """Parameter estimates with standard errors and 95% Wald intervals (log scale)."""
        params = self._check_fitted()
        se = np.array([self.std_errors_.get(n, np.nan) for n in self.param_names])
        rel = se / params  # delta method on log(param)
        frame = pd.DataFrame(
            {
                "estimate": params,
                "std_error": se,
                "lower_95": params * np.exp(-1.96 * rel),
                "upper_95": params * np.exp(1.96 * rel),
            },
            index=pd.Index(self.param_names, name="parameter"),
        )
        frame.attrs.update(loglik=self.loglik_, n_customers=self.n_customers_)
        return frame

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write config and fitted parameters (never the data) as JSON."""
        self._check_fitted()
        doc = {
            "model": self.name,
            "config": asdict(self.config),
            "params": self.params_,
            "std_errors": self.std_errors_,
            "loglik": self.loglik_,
            "n_customers": self.n_customers_,
            "converged": self.converged_,
            "n_iter": self.n_iter_,
        }
        Path(path).write_text(json.dumps(doc, indent=2, allow_nan=True))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`."""
        doc = json.loads(Path(path).read_text())
        if doc.get("model") != cls.name:
            raise ValueError(f"{path} holds a {doc.get('model')!r} model, not {cls.name!r}")
        model = cls(FitConfig(**doc["config"]))
        model.params_ = {n: float(doc["params"][n]) for n in cls.param_names}
        model.std_errors_ = {n: float(v) for n, v in doc.get("std_errors", {}).items()}
        model.loglik_ = float(doc["loglik"])
        model.n_customers_ = int(doc["n_customers"])
        model.converged_ = bool(doc.get("converged", True))
        model.n_iter_ = int(doc.get("n_iter", 0))
        return model


def _compress(arrays: Arrays) -> tuple[Arrays, np.ndarray]:
    """Collapse identical customers into one row weighted by their count."""
    names = list(arrays)
    stacked = np.column_stack([arrays[n] for n in names])
    if len(stacked) == 0:
        return {n: np.empty(0) for n in names}, np.empty(0)
    uniq, counts = np.unique(stacked, axis=0, return_counts=True)
    return {n: uniq[:, i].copy() for i, n in enumerate(names)}, counts.astype(np.float64)


def _numeric_grad(f: Any, params: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function of positive parameters."""
    g = np.empty_like(params)
    for i in range(len(params)):
        h = rel * max(abs(params[i]), 1e-8)
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        g[i] = (f(up) - f(down)) / (2 * h)
    return g
