"""Benchmark: CLV summary + BG/NBD + Gamma-Gamma in Loupe vs the ``lifetimes`` package.

Simulates a BG/NBD population with known parameters (vectorised NumPy), times Loupe's Ibis/DuckDB
summary and maximum-likelihood fits, then (if importable) ``lifetimes``'
``summary_data_from_transaction_data`` + ``BetaGeoFitter`` + ``GammaGammaFitter`` on the same
transactions (or a subsample of customers, see ``--lifetimes-max``), and writes
``bench/results/clv.json``.

    .venv/bin/python bench/bench_clv.py --customers 1000000 --lifetimes-max 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRUE_BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.4}  # per week
TRUE_GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}
START = dt.date(2024, 1, 1)
COHORT_DAYS, CAL_DAYS = 84, 364


def simulate(n: int, seed: int = 1) -> pd.DataFrame:
    """Transactions (customer_id, ordered_at, amount) of ``n`` BG/NBD + Gamma-Gamma customers."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE_BG["r"], 1 / TRUE_BG["alpha"], n) / 7.0  # per day
    p = rng.beta(TRUE_BG["a"], TRUE_BG["b"], n)
    first = rng.integers(0, COHORT_DAYS, n)
    horizon = CAL_DAYS - first
    alive_repeats = rng.geometric(np.clip(p, 1e-12, 1))  # dies right after its J-th repeat
    cap = np.ceil(lam * horizon + 10 * np.sqrt(lam * horizon) + 20).astype(np.int64)
    k = np.minimum(alive_repeats, cap)
    cust = np.repeat(np.arange(n), k)
    # gaps beyond the horizon are cut to keep the running sum (and its precision) small
    gaps = np.minimum(rng.exponential(1.0, len(cust)) / lam[cust], CAL_DAYS + 1.0)
    times = np.cumsum(gaps)
    offsets = np.concatenate([[0.0], times])[np.cumsum(k) - k]  # running total before customer
    times = times - np.repeat(offsets, k)
    keep = times < horizon[cust]
    cust, times = cust[keep], times[keep]
    all_cust = np.concatenate([np.arange(n), cust])
    day = np.concatenate([first, first[cust] + np.floor(times).astype(np.int64)])
    nu = rng.gamma(TRUE_GG["q"], 1 / TRUE_GG["gamma"], n)
    amount = rng.gamma(TRUE_GG["p"], 1 / nu[all_cust])
    dates = np.datetime64(START) + day.astype("timedelta64[D]")
    return pd.DataFrame({"customer_id": all_cust, "ordered_at": dates, "amount": amount.round(2)})


def run_loupe(tx: pd.DataFrame) -> dict[str, Any]:
    import ibis

    from loupe.models import (
        BetaGeoModel,
        GammaGammaModel,
        SummarySpec,
        execute_summary,
        rfm_summary,
    )

    con = ibis.duckdb.connect()
    table = con.create_table("orders", tx)
    spec = SummarySpec(calibration_end=START + dt.timedelta(days=CAL_DAYS - 1), time_unit="week")
    t0 = time.perf_counter()
    summary = execute_summary(con, rfm_summary(table, spec))
    t1 = time.perf_counter()
    bg = BetaGeoModel().fit(summary)
    t2 = time.perf_counter()
    gg = GammaGammaModel().fit(summary)
    t3 = time.perf_counter()
    return {
        "seconds": {"summary": t1 - t0, "bgnbd": t2 - t1, "gamma_gamma": t3 - t2, "total": t3 - t0},
        "bgnbd": bg.params_ | {"loglik": bg.loglik_},
        "gamma_gamma": gg.params_ | {"loglik": gg.loglik_},
        "n_customers": len(summary),
        "summary": summary,
    }


def run_lifetimes(tx: pd.DataFrame) -> dict[str, Any]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    end = pd.Timestamp(START + dt.timedelta(days=CAL_DAYS - 1))
    t0 = time.perf_counter()
    summary = summary_data_from_transaction_data(
        tx, "customer_id", "ordered_at", monetary_value_col="amount",
        observation_period_end=end, freq="W",
    )  # fmt: skip
    t1 = time.perf_counter()
    bg = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    t2 = time.perf_counter()
    rep = summary[summary["frequency"] > 0]
    gg = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    t3 = time.perf_counter()
    return {
        "seconds": {"summary": t1 - t0, "bgnbd": t2 - t1, "gamma_gamma": t3 - t2, "total": t3 - t0},
        "bgnbd": {k: float(v) for k, v in bg.params_.items()},
        "gamma_gamma": {
            "p": float(gg.params_["p"]),
            "q": float(gg.params_["q"]),
            "gamma": float(gg.params_["v"]),
        },
        "n_customers": len(summary),
        "summary_note": "lifetimes freq='W' counts whole weeks (date periods), not days/7",
    }


def fit_loupe_on(summary: pd.DataFrame) -> dict[str, Any]:
    from loupe.models import BetaGeoModel, GammaGammaModel

    bg = BetaGeoModel().fit(summary)
    gg = GammaGammaModel().fit(summary)
    return {"bgnbd": bg.params_, "gamma_gamma": gg.params_}


def rel_diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: abs(a[k] - b[k]) / abs(b[k]) for k in b if k in a and k != "loglik"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lifetimes-max", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "clv.json")
    args = parser.parse_args()

    t0 = time.perf_counter()
    tx = simulate(args.customers)
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
        "n_customers": args.customers,
        "n_transactions": len(tx),
        "simulate_seconds": time.perf_counter() - t0,
        "true": {"bgnbd": TRUE_BG, "gamma_gamma": TRUE_GG},
    }
    loupe = run_loupe(tx)
    summary = loupe.pop("summary")
    result["loupe"] = loupe
    print(f"loupe on {args.customers:,} customers: {loupe['seconds']}")

    m = min(args.customers, args.lifetimes_max)
    sub = tx[tx["customer_id"] < m]
    result["lifetimes"] = {"n_customers_run": m}
    if m < args.customers:
        result["lifetimes"]["subsample_reason"] = (
            f"lifetimes run on the first {m:,} customers (--lifetimes-max): its pandas summary and "
            "autograd fit take too long for the full set"
        )
    try:
        import lifetimes

        result["lifetimes"]["version"] = lifetimes.__version__
        lt = run_lifetimes(sub)
        loupe_sub = run_loupe(sub)
        loupe_sub.pop("summary")
        same_summary = fit_loupe_on(summary.loc[summary.index < m])
        result["lifetimes"].update(lt)
        result["loupe_on_subsample"] = loupe_sub
        result["agreement"] = {
            "bgnbd_rel_diff_loupe_vs_lifetimes": rel_diff(loupe_sub["bgnbd"], lt["bgnbd"]),
            "gamma_gamma_rel_diff_loupe_vs_lifetimes": rel_diff(
                loupe_sub["gamma_gamma"], lt["gamma_gamma"]
            ),
            "bgnbd_rel_diff_loupe_vs_truth": rel_diff(loupe["bgnbd"], TRUE_BG),
            "gamma_gamma_rel_diff_loupe_vs_truth": rel_diff(loupe["gamma_gamma"], TRUE_GG),
            "loupe_subsample_params_check": same_summary,
        }
        speed = lt["seconds"]["total"] / loupe_sub["seconds"]["total"]
        result["speedup_total_on_subsample"] = speed
        print(f"lifetimes on {m:,} customers: {lt['seconds']} (loupe {speed:.1f}x faster)")
    except ImportError:
        result["lifetimes"]["error"] = "lifetimes is not installed"
    except Exception as exc:  # record honestly why the peer could not run
        result["lifetimes"]["error"] = "".join(traceback.format_exception_only(exc)).strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
