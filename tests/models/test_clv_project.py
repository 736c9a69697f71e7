"""``run_clv`` on the synthetic company: columns for every customer, the registered version,
and predictions that follow the planted truth (churn, purchase rates of customer types)."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest
from tests.conftest import make_settings

from loupe.models.clv_project import COLUMNS, run_clv
from loupe.models.registry import get_model, load_model
from loupe.warehouse import Warehouse

# planted orders per year of the customer types (docs/synthetic-company.md)
ORDERS_PER_YEAR = {
    "vip_loyal": 18,
    "family_shopper": 9,
    "bargain_hunter": 8,
    "new_explorer": 7,
    "occasional": 1.5,
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    from tests.profile.company import company

    _, source, truth = company()
    source.con.raw_sql("CHECKPOINT")
    root = tmp_path_factory.mktemp("clv_company")
    shutil.copy(source.settings.resolve(source.settings.warehouse.path), root / "loupe.duckdb")
    wh = Warehouse.open(make_settings(root))
    report = run_clv(wh)
    features = wh.to_pandas(wh.table("customer_features"))
    yield wh, report, features, truth
    wh.close()


@pytest.mark.slow
def test_every_customer_gets_the_columns_and_the_registered_version(scored) -> None:
    wh, report, features, _ = scored
    assert set(COLUMNS) <= set(features.columns)
    record = get_model(wh, "clv")
    assert record.kind == "clv"
    assert report["version"] == record.version
    assert report["as_of"] == date(2026, 1, 1)
    buyers = features[features["frequency"] > 0]
    assert len(buyers) == report["customers"] > 500
    # every buyer is scored with this version; non-buyers carry NULL in every clv column
    assert (buyers["clv_model_version"] == record.version).all()
    assert buyers[list(COLUMNS[:-1])].notna().all().all()
    never = features[features["frequency"] == 0]
    assert never[list(COLUMNS)].isna().all().all()
    assert ((buyers["clv_p_alive"] >= 0) & (buyers["clv_p_alive"] <= 1)).all()
    assert (buyers["clv"] >= 0).all() and (buyers["clv_expected_spend"] > 0).all()
    # the registry row records the fitted parameters, and the artefact scores the same
    params = record.params[report["transaction_model"]]
    assert params == pytest.approx(report["params"][report["transaction_model"]])
    assert record.metrics["customers"] == report["customers"]
    _, model = load_model(wh, record.version)
    assert model.transaction.params_ == pytest.approx(params)


def _churn_groups(features: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    df = features.merge(truth[["customer_id", "churned", "churn_date"]], on="customer_id")
    df = df[df["clv_p_alive"].notna()].copy()
    df["churned"] = df["churned"].astype(str).str.lower().isin(["true", "1"])
    # churned more than half a year before the as-of day (2026-01-01): long enough to show
    df["early"] = df["churned"] & (df["churn_date"] < pd.Timestamp("2025-07-01"))
    df["repeat"] = df["purchase_days"] >= 2
    return df


def _auc(scores: pd.Series, labels: pd.Series) -> float:
    ranks = scores.rank()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.mark.slow
def test_p_alive_is_lower_for_customers_who_churned(scored) -> None:
    _, _, features, truth = scored
    df = _churn_groups(features, truth)
    rep = df[df["repeat"]]
    assert rep["early"].sum() > 50 and (~rep["churned"]).sum() > 300
    alive = rep.loc[~rep["churned"], "clv_p_alive"].mean()
    assert alive > 0.8
    assert rep.loc[rep["early"], "clv_p_alive"].mean() < alive - 0.4
    assert (
        df.loc[df["churned"], "clv_p_alive"].mean()
        < df.loc[~df["churned"], "clv_p_alive"].mean() - 0.15
    )
    sure = rep[rep["early"] | ~rep["churned"]]
    assert _auc(1 - sure["clv_p_alive"], sure["early"]) > 0.9
    # BG/NBD's known blind spot: one purchase day and nothing since means "alive" (p = 1)
    single = df[df["frequency"] == 1]
    assert len(single) > 20 and (single["clv_p_alive"] == 1.0).all()


@pytest.mark.slow
def test_expected_purchases_follow_the_planted_purchase_rates(scored) -> None:
    _, report, features, truth = scored
    df = features.merge(truth[["customer_id", "customer_type", "churned"]], on="customer_id")
    df = df[df["clv_expected_purchases"].notna()]
    alive = df[~df["churned"].astype(str).str.lower().isin(["true", "1"])]
    rate = alive["customer_type"].map(ORDERS_PER_YEAR)
    rho = alive["clv_expected_purchases"].corr(rate, method="spearman")
    assert rho > 0.5
    by_type = alive.groupby("customer_type")["clv_expected_purchases"].median()
    assert by_type["vip_loyal"] > by_type["family_shopper"] > by_type["occasional"]
    assert by_type["bargain_hunter"] > 2 * by_type["occasional"]
    # 12 months ahead, the survivors' expected purchase days are of the planted order of magnitude
    assert report["horizon_months"] == 12
    assert 5 < by_type["vip_loyal"] < 30


@pytest.mark.slow
def test_pareto_nbd_also_sees_churn_among_single_purchase_customers(scored, tmp_path) -> None:
    wh, _, features, truth = scored
    wh.con.raw_sql("CHECKPOINT")
    shutil.copy(wh.settings.resolve(wh.settings.warehouse.path), tmp_path / "loupe.duckdb")
    settings = make_settings(tmp_path, models={"clv": {"transaction_model": "pareto_nbd"}})
    with Warehouse.open(settings) as other:
        report = run_clv(other)
        scored_pnbd = other.to_pandas(other.table("customer_features"))
    assert set(report["params"]) == {"pareto_nbd", "gamma_gamma"}
    df = _churn_groups(scored_pnbd, truth)
    assert _auc(1 - df["clv_p_alive"], df["churned"]) > 0.85
    # (someone whose only purchase is on the last day, T = 0, is alive for sure: left out)
    single = df[(df["frequency"] == 1) & (df["recency_days"] > 1)]
    assert len(single) > 100 and single["clv_p_alive"].max() < 1.0
    # the spend model does not depend on the transaction model (equal up to the optimiser's
    # tolerance: the engine returns the rows in no fixed order, so sums round differently)
    same = features.set_index("customer_id")["clv_expected_spend"]
    other_spend = scored_pnbd.set_index("customer_id")["clv_expected_spend"]
    pd.testing.assert_series_equal(same.sort_index(), other_spend.sort_index(), rtol=1e-4)


@pytest.mark.slow
def test_clv_score_cli_prints_one_json_document(scored, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from loupe.cli.main import _register, app

    wh, report, _, _ = scored
    wh.con.raw_sql("CHECKPOINT")
    shutil.copy(wh.settings.resolve(wh.settings.warehouse.path), tmp_path / "loupe.duckdb")
    (tmp_path / "loupe.toml").write_text('[project]\nname = "clv"\n')
    _register()
    args = ["--project", str(tmp_path), "clv", "score", "--as-of", "2025-07-01", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["as_of"] == "2025-07-01"
    with Warehouse.open(make_settings(tmp_path)) as other:
        assert get_model(other, "clv").version == doc["version"]
        features = other.to_pandas(other.table("customer_features"))
    # fewer customers had bought by mid-2025 than by 2026
    assert (
        (features["clv_model_version"] == doc["version"]).sum() == doc["scored"] < report["scored"]
    )
    bad = CliRunner().invoke(app, ["--project", str(tmp_path), "clv", "score", "--as-of", "July"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in str(bad.exception)
