"""Log-likelihoods and gradients against independent implementations written here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from loupe.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel

RNG = np.random.default_rng(7)
N = 40
X = RNG.integers(0, 12, N).astype(float)
T = RNG.uniform(5, 60, N)
TX = np.where(X > 0, RNG.uniform(0, 1, N) * T, 0.0)
M = np.where(X > 0, RNG.gamma(4, 10, N), 0.0)
DATA = pd.DataFrame({"frequency": X, "recency": TX, "T": T, "monetary_value": M})


def numeric_grad(model, params: np.ndarray, d) -> np.ndarray:
    out = np.empty((len(d["frequency"]), len(params)))
    for i in range(len(params)):
        h = 1e-6 * params[i]
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        out[:, i] = (model._loglik(up, d) - model._loglik(down, d)) / (2 * h)
    return out


#: Models and parameter points (near the CDNOW optimum and far from it) the gradients are checked at.
GRADIENT_CASES = [
    (BetaGeoModel(), np.array([0.24, 4.4, 0.79, 2.4])),
    (BetaGeoModel(), np.array([2.0, 0.5, 3.0, 0.3])),
    (GammaGammaModel(), np.array([6.25, 3.74, 15.44])),
    (GammaGammaModel(), np.array([0.8, 1.5, 200.0])),
]


@pytest.mark.parametrize(("model", "params"), GRADIENT_CASES)
def test_analytic_gradient_matches_finite_differences(model, params) -> None:
    d = model._arrays(DATA)
    analytic = model._loglik_grad(params, d)
    assert analytic is not None
    np.testing.assert_allclose(analytic, numeric_grad(model, params, d), rtol=1e-5, atol=1e-6)


def naive_bgnbd(r, alpha, a, b, x, tx, T) -> float:
    """FHL 2005 eq. (6) with plain gamma/beta functions (small x only)."""
    B = special.beta
    common = math.gamma(r + x) * alpha**r / math.gamma(r)
    like = B(a, b + x) / B(a, b) * common / (alpha + T) ** (r + x)
    if x > 0:
        like += B(a + 1, b + x - 1) / B(a, b) * common / (alpha + tx) ** (r + x)
    return math.log(like)


def naive_pareto(r, alpha, s, beta, x, tx, T) -> float:
    """Pareto/NBD likelihood by quadrature over the death time (no hypergeometric function):
    Gamma(r+x) a^r b^s / Gamma(r) [(a+T)^-(r+x) (b+T)^-s + s int_tx^T (a+u)^-(r+x) (b+u)^-(s+1) du]
    """
    died = integrate.quad(
        lambda u: (alpha + u) ** -(r + x) * (beta + u) ** -(s + 1), tx, T, epsabs=0, epsrel=1e-12
    )[0]
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    pre = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
    return pre + math.log(alive + s * died)


def test_bgnbd_loglik_matches_naive_formula() -> None:
    params = (0.24, 4.4, 0.79, 2.4)
    got = BetaGeoModel()._loglik(np.array(params), BetaGeoModel()._arrays(DATA))
    want = [naive_bgnbd(*params, x, tx, t) for x, tx, t in zip(X, TX, T, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        (0.55, 10.58, 0.61, 11.67),  # alpha < beta
        (0.55, 11.67, 0.61, 10.58),  # alpha > beta
        (0.8, 40.0, 1.3, 40.0),  # alpha == beta
        (1.5, 0.05, 0.4, 500.0),  # alpha << beta
        (0.3, 800.0, 2.0, 0.02),  # alpha >> beta, s integer (SciPy's degenerate 2F1 case)
        (1.0, 0.5, 0.7, 30.0),  # alpha < beta, r + x - 1 integer
    ],
)
def test_pareto_loglik_matches_quadrature(params) -> None:
    model = ParetoNBDModel()
    got = model._loglik(np.array(params), model._arrays(DATA))
    want = [naive_pareto(*params, x, tx, t) for x, tx, t in zip(X, TX, T, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


def test_pareto_gradient_is_smooth_across_alpha_equals_beta() -> None:
    model = ParetoNBDModel()
    d = model._arrays(DATA)
    lo = model._loglik(np.array([0.5, 10.0 - 1e-7, 0.6, 10.0]), d)
    hi = model._loglik(np.array([0.5, 10.0 + 1e-7, 0.6, 10.0]), d)
    np.testing.assert_allclose(lo, hi, rtol=1e-6)


def test_gamma_gamma_loglik_matches_naive_density() -> None:
    p, q, g = 6.25, 3.74, 15.44
    got = GammaGammaModel().log_likelihood
    model = GammaGammaModel()
    d = model._arrays(DATA)
    ll = model._loglik(np.array([p, q, g]), d)
    # zbar * x = sum of x Gamma(p, nu) values ~ Gamma(px, nu); nu ~ Gamma(q, g): integrate nu out
    for i in range(3):
        x, m = d["frequency"][i], d["monetary_value"][i]
        dens = integrate.quad(
            lambda nu, x=x, m=m: (
                x
                * np.exp(
                    special.xlogy(p * x, nu)
                    + special.xlogy(p * x - 1, x * m)
                    - nu * x * m
                    - special.gammaln(p * x)
                    + special.xlogy(q, g)
                    + special.xlogy(q - 1, nu)
                    - g * nu
                    - special.gammaln(q)
                )
            ),
            0,
            np.inf,
        )[0]
        assert ll[i] == pytest.approx(math.log(dens), rel=1e-7)
    assert callable(got)


@pytest.mark.parametrize(
    ("model", "params"),
    [
        *GRADIENT_CASES,
        (ParetoNBDModel(), np.array([0.55, 10.6, 0.61, 11.7])),
    ],
)
def test_one_pass_total_equals_weighted_sum_of_rows(model, params) -> None:
    """The fast ``_total`` (per-frequency terms, cached logs) against the per-row functions."""
    keep = X > 0 if isinstance(model, GammaGammaModel) else np.ones(N, dtype=bool)
    w = np.random.default_rng(3).integers(1, 50, N).astype(float)[keep]
    ll, grad = model._total(params, model._arrays(DATA), w)
    rows = model._arrays(DATA)
    assert ll == pytest.approx(float(w @ model._loglik(params, rows)), rel=1e-12)
    row_grad = model._loglik_grad(params, rows)
    if row_grad is None:
        assert grad is None
    else:
        np.testing.assert_allclose(grad, w @ row_grad, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("cls", [BetaGeoModel, ParetoNBDModel, GammaGammaModel])
def test_fit_on_grouped_rows_with_weights_equals_fit_on_customers(cls, cdnow_summary) -> None:
    cols = list(cls.columns)
    counts = cdnow_summary.groupby(cols).size().rename("n").reset_index()
    assert len(counts) < len(cdnow_summary)
    grouped = cls().fit(counts, weights=counts["n"])
    plain = cls().fit(cdnow_summary)
    assert grouped.n_customers_ == plain.n_customers_
    assert grouped.loglik_ == pytest.approx(plain.loglik_, abs=1e-6)
    for name in cls.param_names:
        assert grouped.params_[name] == pytest.approx(plain.params_[name], rel=1e-5)


def test_weights_must_match_the_rows() -> None:
    with pytest.raises(ValueError, match="one value per row"):
        BetaGeoModel().fit(DATA, weights=[1.0, 2.0])


def test_a_fit_through_overflowing_trial_steps_prints_no_numpy_warning() -> None:
    """Customers long silent before the calibration end (T far past their last purchase) send
    Pareto/NBD's line search through parameters where the likelihood is NaN; the optimiser
    backs off, and the user must not see NumPy's RuntimeWarning (``loupe clv fit`` did)."""
    import warnings

    rng = np.random.default_rng(0)
    n = 3000
    x = rng.poisson(rng.gamma(0.6, 3.0, n))
    tx = np.where(x > 0, rng.uniform(0, 100, n), 0.0)
    data = pd.DataFrame({"frequency": x, "recency": tx, "T": tx + 80 + rng.uniform(0, 20, n)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ParetoNBDModel().fit(data)
    assert model.converged_ and np.isfinite(model.loglik_)
