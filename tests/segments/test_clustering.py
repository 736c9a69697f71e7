"""Clustering recovers the planted customer types of the synthetic company."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from loupe.segments import ClusterSpec, cluster_customers, cluster_name
from loupe.segments.clustering import prepare_matrix, resolve_features


@pytest.mark.slow
def test_clusters_recover_the_planted_customer_types():
    from tests.profile.company import company

    _, wh, truth = company()
    result = cluster_customers(wh, ClusterSpec(k=5))  # five planted types
    both = result.labels.merge(truth, on="customer_id")
    assert len(both) >= 0.95 * len(result.labels)
    ari = adjusted_rand_score(both["customer_type"], both["cluster"])
    assert ari >= 0.7, ari
    # left to the silhouette, k lands next to the planted five and still recovers them
    auto = cluster_customers(wh, ClusterSpec(k_range=(3, 6), n_init=4))
    assert auto.k in (4, 5, 6), auto.silhouette
    both_auto = auto.labels.merge(truth, on="customer_id")
    assert adjusted_rand_score(both_auto["customer_type"], both_auto["cluster"]) >= 0.6
    assert sum(c["size"] for c in result.clusters) == len(result.labels)
    assert sum(c["revenue_share"] for c in result.clusters) == pytest.approx(1.0)
    # the cluster holding most vip_loyal customers stands out on order value and revenue
    vip = both[both.customer_type == "vip_loyal"]["cluster"].mode()[0]
    profile = next(c for c in result.clusters if c["cluster"] == vip)
    assert profile["revenue_share"] > profile["share"]
    assert len({c["name"] for c in result.clusters}) == len(result.clusters)


def test_features_are_logged_when_skewed_and_standardised():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.lognormal(0, 1.5, 500), "b": rng.normal(0, 1, 500), "c": np.nan})
    df.loc[:10, "b"] = np.nan
    x, logged = prepare_matrix(df, ["a", "b", "c"])
    assert logged == ["a"]
    assert np.allclose(x[:, :2].mean(axis=0), 0) and np.allclose(x[:, :2].std(axis=0), 1)
    assert not np.isnan(x).any()


def test_feature_globs_and_names():
    cols = ["aov", "cat_share_baby", "cat_share_home", "frequency"]
    assert resolve_features(["aov", "cat_share_*"], cols) == [
        "aov",
        "cat_share_baby",
        "cat_share_home",
    ]
    with pytest.raises(Exception, match="unknown feature"):
        resolve_features(["nope"], cols)
    name = cluster_name(
        [
            {"feature": "cat_share_baby", "lift": 3.0},
            {"feature": "discount_share", "lift": 0.4},
            {"feature": "morning_share", "lift": 2.0},
        ]
    )
    assert name == "baby-loving, morning, full-price shoppers"
