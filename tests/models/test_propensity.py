"""Churn propensity on the synthetic company: held-out AUC, the planted drivers, scoring,
the report and the fairness report (trained once per module on a copy of the company)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from tests.profile.company import company
from typer.testing import CliRunner

from loupe.cli.main import _register, app
from loupe.config import load_settings
from loupe.errors import LoupeError
from loupe.models.propensity import PropensityModel, deciles, score_model
from loupe.models.registry import list_models, load_model
from loupe.models.report import driver_group, evaluate
from loupe.warehouse import Warehouse

pytestmark = pytest.mark.slow

#: Large enough that each planted driver has a few hundred carriers (at 1,000 customers the
#: incidents are too rare for any model to learn them; see docs/synthetic-company.md).
CUSTOMERS = 3_000

#: Each planted churn driver (docs/synthetic-company.md): the sign of its planted effect on
#: churn, its feature group, and the feature whose own direction shows that sign.
PLANTED = {
    "discount_dependency": ("+", "discount", ("discount_share", "+")),
    "complaint": ("+", "complaints", ("days_since_low_review", "-")),  # a recent complaint
    "late_delivery": ("+", "late_delivery", ("late_share", "+")),  # any late delivery so far
    # No feature direction for the app trend: ``app_trend`` is a mean over a median of two visit
    # days, and falls by itself once a person churns (visits drop to 5%), so its direction
    # stays "-" when the planted sign is flipped and comes out "+" or "-" with the fit's row
    # order when it is not.  The test below checks the sign on the predictions instead.
    "app_engagement_trend": ("-", "app_engagement", None),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A copy of the company project with churn_90d trained and scored through the CLI."""
    src, wh0, truth = company(CUSTOMERS)
    wh0.con.raw_sql("CHECKPOINT")
    root = tmp_path_factory.mktemp("propensity")
    for name in ("loupe.toml", "loupe.duckdb"):
        shutil.copy(src / name, root / name)
    _register()
    runner = CliRunner()
    result = runner.invoke(app, ["-p", str(root), "models", "train", "churn_90d", "--json"])
    assert result.exit_code == 0, result.output
    trained_doc = json.loads(result.stdout)["models"][0]
    result = runner.invoke(app, ["-p", str(root), "models", "score", "--json"])
    assert result.exit_code == 0, result.output
    scored_doc = json.loads(result.stdout)["scores"][0]
    wh = Warehouse.open(load_settings(root))
    yield root, wh, truth, trained_doc, scored_doc
    wh.close()


def test_held_out_auc_clears_the_bar(trained):
    _, _, _, doc, _ = trained
    assert doc["cutoffs"]["validation"] == "2025-10-03"  # data end 2026-01-01 minus 90 days
    assert doc["cutoffs"]["train"][0] == "2025-07-05"
    assert doc["metrics"]["booster"]["auc"] >= 0.80
    assert doc["metrics"]["baseline"]["auc"] >= 0.80
    for name in ("booster", "baseline"):
        m = doc["metrics"][name]
        assert m["pr_auc"] > m["base_rate"]  # better than chance
        assert 0 < m["brier"] < m["base_rate"] * (1 - m["base_rate"])  # beats the base rate


def test_planted_drivers_are_recovered_with_their_sign(trained):
    _root, wh, _, _, _ = trained
    _, model = load_model(wh, "churn_90d")
    drivers = model.validation_["booster"]["drivers"]
    groups = [g["group"] for g in drivers["groups"]]
    features = {f["feature"]: f for f in drivers["features"]}
    for driver, (_sign, group, direction) in PLANTED.items():
        assert group in groups, f"{driver}: no feature expresses it"
        share = next(g["share"] for g in drivers["groups"] if g["group"] == group)
        assert share > 0.005, f"{driver}: the booster does not use it ({share:.4f})"
        if direction:
            feature, sign = direction
            assert features[feature]["direction"] == sign, f"{driver}: wrong direction"
        assert groups.index(group) < len(groups) - 1, f"{driver}: ranked last"
    # The two incidents rank in the top half of the driver groups, next to recency, frequency
    # and spend; the two traits do not (see docs/models.md, "Planted drivers").
    for group in ("complaints", "late_delivery"):
        assert groups.index(group) < len(groups) // 2, f"{group}: ranked {groups.index(group) + 1}"


def test_predicted_churn_moves_with_each_planted_driver_the_others_held_fixed(trained):
    """The scored log-odds regressed (least squares) on the four planted drivers, with the
    customer type (its base churn rate is planted) and being an app user (only app users have
    a trend) held fixed: each coefficient has the planted sign, at least 4 standard errors
    from zero.

    On the companies of seeds 1, 2, 3 and 7 they are 7 to 20 standard errors from zero; with the
    app trend's planted sign flipped in the generator its coefficient is +0.85 (+16 standard
    errors), so this is the check that tells the planted app trend from its opposite.
    """
    _, wh, truth, _, _ = trained
    scores = wh.to_pandas(wh.table("model_scores")).merge(truth, on="customer_id")
    p = scores["score"].clip(1e-4, 1 - 1e-4).to_numpy()
    log_odds = np.log(p / (1 - p))
    drivers = list(PLANTED)
    x = np.column_stack(
        [
            np.ones(len(scores)),
            scores[drivers].astype("float64"),
            scores["app_engagement_trend"] != 0,
            pd.get_dummies(scores["customer_type"], drop_first=True, dtype="float64"),
        ]
    )
    coef = np.linalg.lstsq(x, log_odds, rcond=None)[0]
    resid = log_odds - x @ coef
    se = np.sqrt(np.diag(np.linalg.inv(x.T @ x)) * (resid @ resid) / (len(x) - x.shape[1]))
    for k, driver in enumerate(drivers, start=1):
        t = coef[k] / se[k] * (1 if PLANTED[driver][0] == "+" else -1)
        assert t >= 4, f"{driver}: coefficient {coef[k]:+.3f} ({t:+.1f} s.e. the planted way)"


@pytest.mark.parametrize("group", ["complaints", "late_delivery", "discount"])
def test_per_customer_drivers_name_the_planted_driver_for_those_who_carry_it(trained, group):
    """Among each customer's top drivers (the booster's own contributions), the planted driver
    is named as raising the risk for most of the customers who carry it and rarely for anyone
    else.

    Carriers: everyone whose complaint or late delivery happened (all before the scoring day),
    or the top tenth by planted discount dependency.  The app-engagement trend is a weaker,
    continuous effect that is not among the top five drivers of individual customers; the
    test above checks its sign on the scores.
    """
    _, wh, truth, _, _ = trained
    scores = wh.to_pandas(wh.table("model_scores")).merge(truth, on="customer_id")
    named = scores["drivers"].map(
        lambda s: any(
            driver_group(d["feature"]) == group and d["contribution"] > 0 for d in json.loads(s)
        )
    )
    if group == "discount":
        dep = scores["discount_dependency"]
        carriers = dep >= dep.quantile(0.9)
    else:
        carriers = scores["complaint" if group == "complaints" else "late_delivery"].astype(bool)
    assert carriers.sum() >= 100
    assert named[carriers].mean() >= 0.5, f"{group}: named for {named[carriers].mean():.0%}"
    assert named[carriers].mean() > 3 * named[~carriers].mean()


def test_scores_are_written_with_version_deciles_and_merged(trained):
    _, wh, _, trained_doc, scored_doc = trained
    assert scored_doc["version"] == trained_doc["version"]
    rows = wh.to_pandas(wh.table("model_scores"))
    assert len(rows) == scored_doc["customers"]
    assert set(rows["version"]) == {trained_doc["version"]}
    assert rows["customer_id"].is_unique
    assert rows["decile"].between(1, 10).all()
    top, rest = rows[rows["decile"] == 1], rows[rows["decile"] > 1]
    assert top["score"].min() >= rest["score"].max()
    first = json.loads(rows["drivers"].iloc[0])
    assert len(first) == 5 and {"feature", "value", "contribution"} <= set(first[0])
    features = wh.to_pandas(wh.table("customer_features"))
    merged = features.merge(rows, on="customer_id")
    assert np.allclose(merged["score_churn_90d"], merged["score"])
    never_bought = features[features["frequency"].fillna(0) == 0]
    assert never_bought["score_churn_90d"].isna().all()  # outside the churn population


def test_report_json_and_standalone_html(trained, tmp_path):
    root, _, _, trained_doc, _ = trained
    page = tmp_path / "report.html"
    args = ["-p", str(root), "models", "report", "churn_90d", "--html", str(page), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == trained_doc["version"]
    for name in ("booster", "baseline"):
        v = doc["validation"][name]
        assert [r["decile"] for r in v["lift"]] == list(range(1, 11))
        assert v["lift"][-1]["cumulative_gain"] == pytest.approx(1.0)
        assert sum(b["customers"] for b in v["calibration"]) == v["n"]
    assert len(doc["top_customers"]) == 10
    html = page.read_text()
    assert "<svg" in html and "Cumulative gain" in html
    assert "<script" not in html and "http://cdn" not in html and "https://" not in html


def test_fairness_rates_match_a_recount(trained):
    root, wh, _, _, _ = trained
    args = ["-p", str(root), "models", "fairness", "churn_90d", "--by", "gender", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    scores = wh.to_pandas(wh.table("model_scores"))
    customers = wh.to_pandas(wh.table("customers").select("customer_id", "gender"))
    both = scores.merge(customers, on="customer_id", how="left")
    both["gender"] = both["gender"].fillna("unknown").replace("", "unknown")
    recount = both.groupby("gender")["decile"].apply(lambda d: (d == 1).mean())
    got = {g["group"]: g["selection_rate"] for g in doc["groups"]}
    assert got == pytest.approx(recount.to_dict(), abs=1e-6)
    eligible = [g for g in doc["groups"] if g["in_ratio"]]
    rates = [g["selection_rate"] for g in eligible]
    assert doc["disparity_ratio"] == pytest.approx(min(rates) / max(rates), abs=1e-6)
    assert doc["four_fifths_violated"] == (doc["disparity_ratio"] < 0.8)


def test_every_version_is_listed_and_scoring_a_clv_model_is_refused(trained):
    root, wh, _, _, _ = trained
    from loupe.models.registry import save_model

    save_model(wh, {"r": 0.24}, name="clv", kind="clv", metrics={"loglik": -1.0})
    result = CliRunner().invoke(app, ["-p", str(root), "models", "list", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {"clv", "churn_90d"} <= {m["name"] for m in doc["data"]}
    assert doc["count"] == len(list_models(wh))
    with pytest.raises(LoupeError, match="not a propensity model"):
        score_model(wh, "clv")


def test_model_contributions_add_up_to_the_log_odds():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    x["label"] = (x["a"] + 0.3 * rng.normal(size=600) > 0).astype(int)
    model = PropensityModel(["a", "b"], calibration="sigmoid").fit(x)
    for name in ("booster", "baseline"):
        contrib = model.contributions(x, name)
        raw = model.models_[name].predict_proba(x[["a", "b"]])[:, 1]
        assert np.allclose(contrib.sum(axis=1), np.log(raw / (1 - raw)), atol=1e-6)
        assert evaluate(x["label"].to_numpy(), model.predict_proba(x, name))["auc"] > 0.9
    assert list(deciles(np.array([0.1, 0.9, 0.5, 0.7]))) == [8, 1, 6, 3]
