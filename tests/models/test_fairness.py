"""Selection rates, score quantiles and the disparity ratio on small hand-made frames."""

from __future__ import annotations

from datetime import date

import ibis
import numpy as np
import pandas as pd
import pytest

from loupe.models.fairness import attribute_column, selection_report


def _frame(groups: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """``{group: (customers, selected)}`` → one row per customer, the selected ones first."""
    rows = []
    for g, (n, k) in groups.items():
        for i in range(n):
            rows.append({"group": g, "score": 1.0 - i / n, "decile": 1 if i < k else 5})
    return pd.DataFrame(rows)


def test_rates_ratio_and_four_fifths_flag():
    doc = selection_report(
        _frame({"F": (100, 12), "M": (200, 18), "tiny": (5, 5), "unknown": (60, 0)}),
        attribute="gender",
        min_group_size=30,
    )
    rates = {g["group"]: g["selection_rate"] for g in doc["groups"]}
    assert rates == {"F": 0.12, "M": 0.09, "tiny": 1.0, "unknown": 0.0}
    # the tiny and the unknown group are shown but left out of the ratio
    assert doc["disparity_ratio"] == pytest.approx(0.09 / 0.12)
    assert (doc["lowest_group"], doc["highest_group"]) == ("M", "F")
    assert doc["four_fifths_violated"] is True
    assert doc["selected"] == 12 + 18 + 5


def test_equal_rates_pass_and_quantiles_match_numpy():
    frame = _frame({"a": (50, 5), "b": (80, 8)})
    doc = selection_report(frame, attribute="region", min_group_size=30)
    assert doc["disparity_ratio"] == pytest.approx(1.0)
    assert doc["four_fifths_violated"] is False
    b = next(g for g in doc["groups"] if g["group"] == "b")
    scores = frame.loc[frame["group"] == "b", "score"]
    assert b["quantiles"]["p50"] == pytest.approx(np.quantile(scores, 0.5))
    assert b["quantiles"]["p90"] == pytest.approx(np.quantile(scores, 0.9))


def test_one_group_has_no_ratio():
    doc = selection_report(_frame({"a": (50, 5)}), attribute="city")
    assert doc["disparity_ratio"] is None and doc["four_fifths_violated"] is False


def test_age_bands_on_the_scoring_day():
    customers = ibis.memtable(
        pd.DataFrame(
            {
                "customer_id": ["a", "b", "c", "d"],
                "birth_date": pd.to_datetime(["2000-06-02", "2000-06-01", None, "1950-01-01"]),
            }
        )
    )
    expr = customers.select(
        "customer_id", band=attribute_column(customers, "age_band", date(2025, 6, 1))
    )
    got = dict(ibis.duckdb.connect().execute(expr).itertuples(index=False))
    assert got == {"a": "18-24", "b": "25-34", "c": "unknown", "d": "65+"}
