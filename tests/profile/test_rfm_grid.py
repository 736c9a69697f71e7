"""RFM scores and groups against their definition, computed independently in pandas."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from loupe.profile import RfmSettings, rfm_cells, rfm_report, rfm_scores
from loupe.profile.settings import RfmRule


def population(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    freq = rng.poisson(3, n)  # many ties, and some zeros (non-buyers)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "frequency": freq,
            "monetary": np.where(freq > 0, rng.gamma(2, 300, n).round(0), 0.0),
            "recency_days": np.where(freq > 0, rng.integers(0, 700, n), None).astype("float64"),
            "orders_365d": np.minimum(freq, rng.integers(0, 5, n)),
            "revenue_365d": rng.gamma(2, 100, n),
        }
    )


def score_by_rank(values: pd.Series, descending: bool) -> pd.Series:
    """floor(5 * percent_rank) + 1 with ties at their lowest rank, as in SQL."""
    ranks = (-values if descending else values).rank(method="min")
    pr = (ranks - 1) / (len(values) - 1)
    return np.minimum(np.floor(pr * 5).astype(int) + 1, 5)


def expected_group(r: int, fm: int, rules: list[RfmRule]) -> str:
    return next(g.group for g in rules if g.r[0] <= r <= g.r[1] and g.fm[0] <= fm <= g.fm[1])


def run(df: pd.DataFrame, settings: RfmSettings) -> pd.DataFrame:
    con = ibis.duckdb.connect()
    return (
        con.execute(rfm_scores(ibis.memtable(df), settings)).set_index("customer_id").sort_index()
    )


def test_quantile_scores_and_groups_follow_the_definition():
    df = population()
    settings = RfmSettings()
    got = run(df, settings)
    buyers = df[df.frequency > 0].set_index("customer_id").sort_index()
    r = score_by_rank(buyers.recency_days, descending=True)
    f = score_by_rank(buyers.frequency.astype(float), descending=False)
    m = score_by_rank(buyers.monetary, descending=False)
    fm = (f + m + 1) // 2
    mine = got.loc[buyers.index]
    assert (mine.r_score.astype(int) == r).all()
    assert (mine.f_score.astype(int) == f).all()
    assert (mine.m_score.astype(int) == m).all()
    assert (mine.fm_score.astype(int) == fm).all()
    want = [expected_group(a, b, settings.groups) for a, b in zip(r, fm, strict=True)]
    assert list(mine.rfm_group) == want
    non = got.loc[got.frequency == 0]
    assert non.r_score.isna().all() and non.rfm_group.isna().all()
    # the lowest tied frequency scores 1, the most recent buyers score 5
    assert set(mine.loc[mine.frequency == mine.frequency.min(), "f_score"]) == {1}
    assert set(mine.loc[mine.recency_days == mine.recency_days.min(), "r_score"]) == {5}


def test_fixed_edges_and_a_window():
    df = population(seed=1)
    settings = RfmSettings(method="fixed", window_days=365)
    got = run(df, settings)
    b = got[got.frequency > 0]
    r_edges, f_edges, m_edges = [30, 90, 180, 365], [1, 2, 4, 8], [200, 500, 1500, 5000]
    exp_r = [5 - int(np.searchsorted(r_edges, v, side="left")) for v in b.recency_days]
    exp_f = [1 + int(np.searchsorted(f_edges, v, side="left")) for v in b.orders_365d]
    exp_m = [1 + int(np.searchsorted(m_edges, v, side="left")) for v in b.revenue_365d]
    assert list(b.r_score.astype(int)) == exp_r
    assert list(b.f_score.astype(int)) == exp_f
    assert list(b.m_score.astype(int)) == exp_m


def test_every_grid_cell_needs_a_group():
    with pytest.raises(ValueError, match="no group covers"):
        RfmSettings(groups=[RfmRule(group="Everyone", r=(1, 5), fm=(1, 4))])
    RfmSettings(groups=[RfmRule(group="Everyone", r=(1, 5), fm=(1, 5))])


def test_report_counts_and_revenue_shares_add_up():
    df = population(seed=2)
    settings = RfmSettings()
    con = ibis.duckdb.connect()
    cells = con.execute(rfm_cells(rfm_scores(ibis.memtable(df), settings), settings))
    doc = rfm_report(cells, settings)
    assert doc["buyers"] == int((df.frequency > 0).sum())
    assert sum(g["customers"] for g in doc["groups"]) == doc["buyers"]
    assert sum(g["revenue_share"] for g in doc["groups"]) == pytest.approx(1.0)
    assert sum(c["customers"] for row in doc["grid"] for c in row) == doc["buyers"]
    assert [row[0]["r"] for row in doc["grid"]] == [5, 4, 3, 2, 1]
