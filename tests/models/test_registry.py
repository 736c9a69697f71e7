"""Model registry round trip, hash check, and merging model columns into customer_features."""

from __future__ import annotations

from datetime import date

import ibis
import pandas as pd
import pytest

from loupe.errors import LoupeError
from loupe.models.features import merge_into_features
from loupe.models.registry import get_model, list_models, load_model, save_model


def test_save_load_and_list_newest_first(wh):
    first = save_model(
        wh,
        {"w": [1, 2]},
        name="churn_90d",
        kind="propensity",
        target="churn_90d",
        features=["recency"],
        train_start=date(2025, 1, 1),
        train_end=date(2025, 6, 30),
        metrics={"auc": 0.83},
        params={"depth": 3},
    )
    second = save_model(wh, {"w": [3]}, name="churn_90d", kind="propensity")
    assert first.version != second.version
    assert [r.version for r in list_models(wh, "churn_90d")] == [second.version, first.version]
    record, obj = load_model(wh, first.version)
    assert obj == {"w": [1, 2]}
    assert record.metrics == {"auc": 0.83}
    assert record.features == ["recency"]
    assert record.train_end == date(2025, 6, 30)
    assert "numpy" in record.libraries
    assert get_model(wh, "churn_90d").name == "churn_90d"


def test_changed_artefact_is_refused(wh):
    rec = save_model(wh, [1], name="m", kind="propensity")
    (wh.settings.root / rec.path).write_bytes(b"tampered")
    with pytest.raises(LoupeError, match="changed since it was trained"):
        load_model(wh, rec.version)


def test_unknown_model_names_the_known_ones(wh):
    save_model(wh, [1], name="known", kind="propensity")
    with pytest.raises(LoupeError) as info:
        get_model(wh, "unknown")
    assert "known" in info.value.render()


def test_merge_replaces_columns_and_keeps_every_customer(wh):
    wh.replace(
        "customer_features",
        ibis.memtable(pd.DataFrame({"customer_id": ["a", "b", "c"], "recency": [1.0, 2.0, 3.0]})),
    )
    merge_into_features(wh, pd.DataFrame({"customer_id": ["a", "b"], "score_x": [0.1, 0.2]}))
    merge_into_features(wh, pd.DataFrame({"customer_id": ["b"], "score_x": [0.9]}))
    df = wh.to_pandas(wh.table("customer_features").order_by("customer_id"))
    assert list(df.columns) == ["customer_id", "recency", "score_x"]
    assert df["recency"].tolist() == [1.0, 2.0, 3.0]
    assert df["score_x"].isna().tolist() == [True, False, True]
    assert df.loc[1, "score_x"] == 0.9
