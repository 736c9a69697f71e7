"""Predictions against closed forms and independent integrals; CLV; save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from loupe.models import (
    BetaGeoModel,
    GammaGammaModel,
    NotFittedError,
    ParetoNBDModel,
    customer_lifetime_value,
    period_length,
)


def with_params(model, **params):
    model.params_ = params
    model.std_errors_ = {}
    model.loglik_, model.n_customers_, model.converged_, model.n_iter_ = 0.0, 0, True, 0
    return model


BG = with_params(BetaGeoModel(), r=0.243, alpha=4.414, a=0.793, b=2.426)
PN = with_params(ParetoNBDModel(), r=0.553, alpha=10.578, s=0.606, beta=11.669)
GG = with_params(GammaGammaModel(), p=6.25, q=3.74, gamma=15.44)
NEW = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]})
HAND = pd.DataFrame(
    {"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 30.0, 10.0], "T": [38.0, 38.0, 38.0]}
)


def test_bgnbd_probability_alive_closed_form() -> None:
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    got = BG.predict_probability_alive(HAND)
    want = [1.0] + [
        1 / (1 + a / (b + x - 1) * ((alpha + 38) / (alpha + tx)) ** (r + x))
        for x, tx in ((2, 30), (5, 10))
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_new_customer_conditional_equals_unconditional() -> None:
    for model in (BG, PN):
        for t in (1.0, 10.0, 52.0):
            assert model.predict_purchases(NEW, t)[0] == pytest.approx(
                float(model.predict_purchases_new(t)), rel=1e-9
            )


def test_bgnbd_unconditional_mean_by_integration() -> None:
    """E[X(t)] = E over p ~ Beta(a, b) of (1/p)(1 - (alpha/(alpha + p t))^r): FHL 2005 eq. (7)."""
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    t = 20.0

    def integrand(p: float) -> float:
        cond = (1 / p) * (1 - (alpha / (alpha + p * t)) ** r)
        return cond * p ** (a - 1) * (1 - p) ** (b - 1) / special.beta(a, b)

    want = integrate.quad(integrand, 0, 1, limit=200)[0]
    assert float(BG.predict_purchases_new(t)) == pytest.approx(want, rel=1e-7)


def test_pareto_unconditional_mean_by_integration() -> None:
    """E[X(t)] = E[lambda/mu (1 - exp(-mu t))], lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta)."""
    r, alpha, s, beta = 0.553, 10.578, 0.606, 11.669
    t = 30.0
    e_lambda = r / alpha
    e_inner = integrate.quad(
        lambda mu: (
            (1 - np.exp(-mu * t))
            / mu
            * np.exp(
                special.xlogy(s, beta) + special.xlogy(s - 1, mu) - beta * mu - special.gammaln(s)
            )
        ),
        0,
        np.inf,
        limit=200,
    )[0]
    assert float(PN.predict_purchases_new(t)) == pytest.approx(e_lambda * e_inner, rel=1e-7)


def test_pareto_alive_closed_form_for_x0_at_T0() -> None:
    assert PN.predict_probability_alive(NEW)[0] == pytest.approx(1.0)
    alive = PN.predict_probability_alive(HAND)
    assert np.all((alive > 0) & (alive < 1))


def test_gamma_gamma_conditional_spend_hand_case() -> None:
    data = pd.DataFrame({"frequency": [2.0, 0.0], "monetary_value": [20.0, 0.0]})
    got = GG.predict_spend(data)
    p, q, g = 6.25, 3.74, 15.44
    assert got[0] == pytest.approx(p * (g + 2 * 20) / (p * 2 + q - 1))
    assert got[1] == pytest.approx(p * g / (q - 1)) == GG.predict_population_spend()


class Linear:
    """A transaction model with E[Y(t)] = rate * t, for a closed-form CLV."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def predict_purchases(self, data: pd.DataFrame, t: float) -> np.ndarray:
        return np.full(len(data), self.rate * t)


def test_clv_is_a_discounted_geometric_sum() -> None:
    data = pd.DataFrame(
        {"frequency": [2.0], "recency": [5.0], "T": [10.0], "monetary_value": [20.0]}
    )
    spend = GG.predict_spend(data)[0]
    step = period_length("month", "week")
    assert step == pytest.approx(365.25 / 12 / 7)
    d, k = 0.01, 12
    want = spend * 0.5 * step * sum((1 + d) ** -i for i in range(1, k + 1))
    got = customer_lifetime_value(Linear(0.5), GG, data, horizon=k, discount_rate=d)
    assert got.iloc[0] == pytest.approx(want, rel=1e-12)


def test_clv_undiscounted_equals_expected_purchases_times_spend() -> None:
    data = HAND.assign(monetary_value=[0.0, 25.0, 40.0])
    got = customer_lifetime_value(BG, GG, data, horizon=6, discount_rate=0.0)
    want = BG.predict_purchases(data, 6 * period_length("month", "week")) * GG.predict_spend(data)
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-10)


def test_save_load_round_trip(tmp_path, cdnow_summary) -> None:
    for cls in (BetaGeoModel, ParetoNBDModel, GammaGammaModel):
        model = cls().fit(cdnow_summary)
        path = tmp_path / f"{cls.name}.json"
        model.save(path)
        loaded = cls.load(path)
        assert loaded.params_ == model.params_
        assert loaded.loglik_ == model.loglik_
        assert loaded.config == model.config
        pd.testing.assert_frame_equal(loaded.summary(), model.summary())
        assert "frequency" not in path.read_text()
    with pytest.raises(ValueError, match="not 'bgnbd'"):
        BetaGeoModel.load(tmp_path / "gamma_gamma.json")


def test_unfitted_model_refuses_to_predict() -> None:
    with pytest.raises(NotFittedError):
        BetaGeoModel().predict_probability_alive(HAND)
