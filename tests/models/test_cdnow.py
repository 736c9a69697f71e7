"""Published CDNOW results, reproduced from the raw purchase file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loupe.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel, holdout_comparison


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


def test_summary_shape(cdnow_summary: pd.DataFrame) -> None:
    s = cdnow_summary
    assert len(s) == 2357
    assert (s["frequency"] > 0).sum() == 946
    assert s["frequency"].sum() == 2457  # FHL 2005: 2,457 repeat transactions in 39 weeks
    assert s["T"].max() == pytest.approx(38 + 6 / 7)
    assert (s["recency"] <= s["T"]).all()
    assert s["duration_holdout"].iloc[0] == pytest.approx(39.0)


def test_bgnbd_reproduces_fader_hardie_lee_2005(cdnow_summary: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(cdnow_summary)
    p = model.params_
    assert [sig3(p[k]) for k in ("r", "alpha", "a", "b")] == [0.243, 4.41, 0.793, 2.43]
    assert p["alpha"] == pytest.approx(4.414, abs=5e-4)
    assert p["b"] == pytest.approx(2.426, abs=5e-4)
    assert model.loglik_ == pytest.approx(-9582.4, abs=0.1)
    assert model.converged_


def test_pareto_nbd_reproduces_fader_hardie(cdnow_summary: pd.DataFrame) -> None:
    model = ParetoNBDModel().fit(cdnow_summary)
    p = model.params_
    assert p["r"] == pytest.approx(0.553, abs=5e-4)
    assert p["alpha"] == pytest.approx(10.58, abs=5e-3)
    assert p["s"] == pytest.approx(0.606, abs=5e-4)
    assert p["beta"] == pytest.approx(11.67, abs=5e-3)
    assert model.loglik_ == pytest.approx(-9595.0, abs=0.1)


def test_gamma_gamma_reproduces_fader_hardie_2013(cdnow_summary: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(cdnow_summary)
    p = model.params_
    assert model.n_customers_ == 946
    assert [sig3(p[k]) for k in ("p", "q", "gamma")] == [6.25, 3.74, 15.4]
    assert p["gamma"] == pytest.approx(15.44, abs=5e-3)


def test_holdout_tracks_actuals(cdnow_summary: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(cdnow_summary)
    table = holdout_comparison(model, cdnow_summary)
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["n_customers"].sum() == 2357
    # FHL 2005 Figure 4: conditional expectations follow the actual holdout means closely
    assert table.attrs["mae_buckets"] < 0.3
    # the aggregate 39-week forecast is close to the actual number of holdout purchase days
    total_pred = float(np.sum(model.predict_purchases(cdnow_summary, 39.0)))
    total_actual = float(cdnow_summary["frequency_holdout"].sum())
    assert total_pred == pytest.approx(total_actual, rel=0.15)  # 1653 vs 1882


def test_bgnbd_standard_errors_match_lifetimes(cdnow_summary: pd.DataFrame, tmp_path) -> None:
    """The inverse observed information at the optimum: lifetimes' BetaGeoFitter reports
    se(r, alpha, a, b) = 0.0126, 0.378, 0.186, 0.705 on this summary (its README).  They are
    computed on first use after the fit and travel through save/load."""
    model = BetaGeoModel().fit(cdnow_summary)
    se = model.summary()["std_error"]
    assert se.to_numpy() == pytest.approx([0.012557, 0.378221, 0.185719, 0.705345], rel=0.01)
    model.save(tmp_path / "bg.json")
    loaded = BetaGeoModel.load(tmp_path / "bg.json")
    assert loaded.std_errors_ == pytest.approx(model.std_errors_, rel=1e-12)


@pytest.mark.parametrize("model_cls", [BetaGeoModel, ParetoNBDModel, GammaGammaModel])
def test_sample_fit_polished_on_all_rows_reaches_the_plain_optimum(
    cdnow_summary: pd.DataFrame, model_cls, monkeypatch
) -> None:
    """Large fits start on a sample and polish on all rows (``MLEModel._polish``); forced here
    on CDNOW, that path must land where L-BFGS-B on all rows does, to the polish tolerance."""
    from loupe.models import base

    plain = model_cls().fit(cdnow_summary)
    polished: list[object] = []
    real = base.MLEModel._polish

    def spy(self, *args):
        out = real(self, *args)
        polished.append(out)
        return out

    monkeypatch.setattr(base, "WARM_START_ROWS", 150)
    monkeypatch.setattr(base.MLEModel, "_polish", spy)
    model = model_cls().fit(cdnow_summary)
    assert polished and polished[0] is not None, "the polish gave up: L-BFGS-B ran instead"
    assert model.converged_
    # at least as high a likelihood (Pareto/NBD's numeric gradient leaves the plain fit of its
    # flat s-beta ridge 2e-6 short: the polish lands slightly higher)
    assert model.loglik_ >= plain.loglik_ - 1e-7
    for name in model.param_names:
        assert model.params_[name] == pytest.approx(plain.params_[name], rel=1e-5), name
