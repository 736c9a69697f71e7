"""Lifecycle stages and tags against the behaviour planted in the synthetic company."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.mark.slow
def test_lifecycle_stages_follow_planted_churn():
    from tests.profile.company import company

    _, wh, truth = company()
    f = wh.to_pandas(wh.table("customer_features"))
    d = f.merge(truth, on="customer_id")
    as_of = pd.Timestamp(f.as_of.max())
    # churned more than half a year before the snapshot, after a habit of buying
    gone = d[d.churned & (d.churn_date < as_of - pd.Timedelta(days=180)) & (d.frequency >= 4)]
    alive = d[~d.churned & (d.frequency >= 4)]
    assert len(gone) >= 30 and len(alive) >= 100
    lapsed = gone.lifecycle_stage.isin(["dormant", "churned"]).mean()
    kept = alive.lifecycle_stage.isin(["active", "new", "reactivated", "at-risk"]).mean()
    assert lapsed >= 0.85, gone.lifecycle_stage.value_counts()
    assert kept >= 0.8, alive.lifecycle_stage.value_counts()


@pytest.mark.slow
def test_starter_tags_find_the_planted_types():
    from tests.profile.company import company

    _, wh, truth = company()
    tags = wh.to_pandas(wh.table("customer_tags"))
    f = wh.to_pandas(wh.table("customer_features"))
    d = f[f.frequency >= 2].merge(truth, on="customer_id")

    def share(tag: str, ctype: str) -> float:
        members = set(tags[tags.tag == tag].customer_id)
        part = d[d.customer_type == ctype]
        return part.customer_id.isin(members).mean()

    assert share("亲子家庭", "family_shopper") > 0.8  # baby affinity
    assert share("亲子家庭", "vip_loyal") < 0.2
    assert share("价格敏感型", "bargain_hunter") > 0.8  # coupon rate 0.85
    assert share("价格敏感型", "vip_loyal") < 0.1
    assert share("熬夜党", "bargain_hunter") > 0.8  # peak hour 00:30
    assert share("熬夜党", "family_shopper") < 0.1
