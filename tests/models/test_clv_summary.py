"""The Ibis summary builder against a brute-force pandas reference, on random transactions."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loupe.models import (
    SummarySpec,
    calibration_holdout_summary,
    execute_summary,
    rfm_summary,
)

START = dt.date(2024, 1, 1)
CON = ibis.duckdb.connect()


def reference(
    tx: pd.DataFrame, cal_end: dt.date, hold_end: dt.date, unit_days: float
) -> pd.DataFrame:
    """Customer by customer, with plain Python."""
    rows = {}
    for cust, g in tx.groupby("customer"):
        day_amount: dict[dt.date, float] = {}
        for ts, amount in zip(g["ts"], g["amount"], strict=True):
            day = ts.date()
            day_amount[day] = day_amount.get(day, 0.0) + amount
        cal = sorted(d for d in day_amount if d <= cal_end)
        if not cal:
            continue
        repeat = cal[1:]
        hold = [d for d in day_amount if cal_end < d <= hold_end]
        rows[cust] = {
            "frequency": len(repeat),
            "recency": (cal[-1] - cal[0]).days / unit_days,
            "T": (cal_end - cal[0]).days / unit_days,
            "monetary_value": float(np.mean([day_amount[d] for d in repeat])) if repeat else 0.0,
            "frequency_holdout": len(hold),
        }
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


transactions = st.lists(
    st.tuples(
        st.integers(0, 8),  # customer
        st.integers(0, 60),  # day offset
        st.integers(0, 23),  # hour: several purchases a day must count once
        st.floats(0.5, 500, allow_nan=False).map(lambda v: round(v, 2)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=transactions, cal_days=st.integers(5, 45), unit=st.sampled_from(["day", "week", "month"])
)
def test_summary_matches_brute_force(rows, cal_days, unit) -> None:
    tx = pd.DataFrame(rows, columns=["customer", "day", "hour", "amount"])
    tx["ts"] = [
        dt.datetime.combine(START + dt.timedelta(days=int(d)), dt.time(int(h)))
        for d, h in zip(tx["day"], tx["hour"], strict=True)
    ]
    tx["customer"] = "c" + tx["customer"].astype(str)
    cal_end = START + dt.timedelta(days=cal_days)
    hold_end = cal_end + dt.timedelta(days=20)
    spec = SummarySpec(
        calibration_end=cal_end,
        customer_col="customer",
        date_col="ts",
        amount_col="amount",
        time_unit=unit,
        holdout_end=hold_end,
    )
    table = ibis.memtable(tx[["customer", "ts", "amount"]])
    got = execute_summary(CON, calibration_holdout_summary(table, spec))
    want = reference(tx, cal_end, hold_end, spec.days_per_unit)
    if want.empty:
        assert got.empty
        return
    got.index = got.index.astype(str)
    cols = ["frequency", "recency", "T", "monetary_value", "frequency_holdout"]
    pd.testing.assert_frame_equal(
        got[cols], want[cols], check_dtype=False, check_names=False, rtol=1e-9
    )
    assert (got["duration_holdout"] == 20 / spec.days_per_unit).all()


def test_summary_is_a_pure_expression() -> None:
    spec = SummarySpec(calibration_end=dt.date(2024, 3, 1), customer_col="c", date_col="d")
    table = ibis.table({"c": "string", "d": "timestamp", "amount": "float64"}, name="orders")
    sql = ibis.to_sql(rfm_summary(table, spec), dialect="duckdb")
    assert "orders" in sql and "GROUP BY" in sql


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError):
        SummarySpec(calibration_end=dt.date(2024, 3, 1), time_unit="year")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SummarySpec(calibration_end=dt.date(2024, 3, 1), holdout_end=dt.date(2024, 2, 1))


def test_sufficient_statistics_fit_reproduces_cdnow(cdnow_summary) -> None:
    """``fit_clv_models`` fits on what the engine returns (distinct tuples with counts and the
    repeat customers' spend) and lands on the published CDNOW parameters."""
    from loupe.models import fit_clv_models, summary_counts

    table = CON.create_table(
        "cdnow_summary", cdnow_summary.reset_index(), temp=True, overwrite=True
    )
    counts = CON.execute(summary_counts(table))
    assert counts["n_customers"].sum() == 2357 and len(counts) < 2357
    bg, gg = fit_clv_models(CON.execute, table)
    assert bg.params_["r"] == pytest.approx(0.2426, abs=5e-5)
    assert bg.params_["alpha"] == pytest.approx(4.4136, abs=5e-4)
    assert bg.loglik_ == pytest.approx(-9582.43, abs=0.01)
    assert gg.n_customers_ == 946
    assert gg.params_["p"] == pytest.approx(6.2496, abs=5e-4)
    pnbd, _ = fit_clv_models(CON.execute, table, transaction_model="pareto_nbd")
    assert pnbd.loglik_ == pytest.approx(-9594.98, abs=0.01)


def test_spend_is_summed_exactly_and_the_model_inputs_come_sorted() -> None:
    """Amounts are summed exactly: 1.00 + 0.10 + 0.20 + 0.40 as doubles is 1.7000000000000002,
    which left a repeat spend of 0.7000000000000002 / 3.  And the grouped inputs come in one
    order, so a fit on the same orders is the same fit (and the same content hash)."""
    from loupe.models import repeat_spend, summary_counts

    days = [START + dt.timedelta(days=d) for d in range(4)]
    tx = pd.DataFrame(
        {
            "customer_id": ["a"] * 4 + ["b", "b", "c"],
            "ordered_at": pd.to_datetime(days + days[:2] + days[:1]),
            "amount": [1.0, 0.1, 0.2, 0.4, 5.0, 2.5, 9.99],
        }
    )
    spec = SummarySpec(calibration_end=START + dt.timedelta(days=9), time_unit="day")
    summary = CON.create_table(
        "exact_summary", rfm_summary(ibis.memtable(tx), spec), temp=True, overwrite=True
    )
    got = execute_summary(CON, summary)
    assert got.loc["a", "monetary_value"] == 0.7 / 3
    assert got.loc["b", "monetary_value"] == 2.5
    spend = CON.execute(repeat_spend(summary))
    assert spend[["frequency", "monetary_value"]].values.tolist() == [[1, 2.5], [3, 0.7 / 3]]
    counts = CON.execute(summary_counts(summary))
    assert counts["frequency"].tolist() == [0, 1, 3]


def test_the_summary_is_the_same_on_every_run() -> None:
    """Several row groups, so the engine's threads sum them in varying order."""
    rng = np.random.default_rng(5)
    n = 400_000
    tx = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 20_000, n),
            "ordered_at": pd.Timestamp(START) + pd.to_timedelta(rng.integers(0, 300, n), "D"),
            "amount": rng.gamma(2.0, 30.0, n).round(2) * rng.choice([1, 1e-3], n),
        }
    )
    table = CON.create_table("many_orders", tx, temp=True, overwrite=True)
    spec = SummarySpec(calibration_end=START + dt.timedelta(days=299))
    runs = [execute_summary(CON, rfm_summary(table, spec)) for _ in range(3)]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other, check_exact=True)
