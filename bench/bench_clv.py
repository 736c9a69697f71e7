"""Benchmark: CLV summary + BG/NBD + Gamma-Gamma in Loupe vs ``lifetimes`` and PyMC-Marketing.

Simulates a BG/NBD + Gamma-Gamma population with known parameters (vectorised NumPy), then
runs, one after the other on the same transactions, each tool end to end (transactions ->
frequency/recency/T summary -> BG/NBD fit -> Gamma-Gamma fit):

* **Loupe**: the Ibis/DuckDB summary kept in the engine, fitted on its sufficient statistics
  (:func:`loupe.models.fit_clv_models`); the transactions sit in a DuckDB table, as a project's
  orders do (the time to load them from pandas is reported separately, and in
  ``speedup_including_load``).  Run twice: with DuckDB's default threads (``loupe``) and on one
  thread (``loupe_single_thread``, ``[warehouse] threads = 1``), like the single-core peers;
* **lifetimes**: ``summary_data_from_transaction_data(freq="D", freq_multiplier=7)`` (whole
  days, expressed in weeks: the definition Loupe and Fader-Hardie-Lee use), ``BetaGeoFitter``,
  ``GammaGammaFitter``;
* **PyMC-Marketing** (when installed, see ``bench/requirements.txt``): its ``rfm_summary``
  (``time_unit="D", time_scaler=7``), ``BetaGeoModel`` and ``GammaGammaModel`` fitted with
  ``method="map"`` (its default priors, so MAP and MLE differ by the prior's pull).

Wall-clock and CPU seconds (``time.process_time``, all threads) are recorded, with the load
average, because the machine may be shared.  Parameter agreement is reported as relative
differences, and each tool's parameters are scored with Loupe's log-likelihood on the same data.

    .venv/bin/python bench/bench_clv.py                      # 1M customers -> results/clv_1m.json
    .venv/bin/python bench/bench_clv.py --customers 100000   # smoke run    -> results/clv.json

Loupe and ``lifetimes`` are each timed ``--repeat`` times (default 3) and the run with the
median total is reported, with every run's total beside it (``repeats``): Loupe's whole run is
under a second, so one burst of another job on a shared 2-core host moved a single timing by
0.3 s (40%), while the same burst is 2% of lifetimes' 15-20 s.  Both sides get the same
treatment; PyMC-Marketing runs once (its run takes most of a minute, and it is not the
target's peer).

``--pymc-max`` caps the customers PyMC-Marketing is run on (default: all of them at 1M or more;
skipped in smaller smoke runs such as ``bench/run.py --quick``, where compiling its graphs
alone takes longer than everything else).  Before the timed runs, Loupe is run once untimed on
2,000 customers: Ibis's and DuckDB's one-off per-process setup is not a per-customer cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

TRUE_BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.4}  # per week
TRUE_GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}
START = dt.date(2024, 1, 1)
COHORT_DAYS, CAL_DAYS = 84, 364
CAL_END = START + dt.timedelta(days=CAL_DAYS - 1)
RESULTS = Path(__file__).parent / "results"


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


class Clock:
    """Wall-clock and CPU seconds of consecutive steps."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._t, self._c = time.perf_counter(), time.process_time()

    def lap(self, step: str) -> None:
        t, c = time.perf_counter(), time.process_time()
        self.wall[step], self.cpu[step] = t - self._t, c - self._c
        self._t, self._c = t, c

    def doc(self, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        wall = {k: round(v, 3) for k, v in self.wall.items()}
        cpu = {k: round(v, 3) for k, v in self.cpu.items()}
        wall["total"] = round(sum(v for k, v in self.wall.items() if k not in skip), 3)
        cpu["total"] = round(sum(v for k, v in self.cpu.items() if k not in skip), 3)
        return {"seconds": wall, "cpu_seconds": cpu}


def run_loupe(tx: pd.DataFrame, threads: int | None = None) -> dict[str, Any]:
    import ibis

    from loupe.models import (
        BetaGeoModel,
        GammaGammaModel,
        SummarySpec,
        repeat_spend,
        rfm_summary,
        summary_counts,
    )

    con = ibis.duckdb.connect()
    if threads:  # what `[warehouse] threads = N` in loupe.toml does
        con.raw_sql(f"SET threads = {int(threads)}")
    spec = SummarySpec(calibration_end=CAL_END, time_unit="week")
    clock = Clock()
    table = con.create_table("orders", tx)
    clock.lap("load_into_duckdb")
    summary = con.create_table("clv_summary", rfm_summary(table, spec), temp=True)
    clock.lap("summary")
    counts = con.execute(summary_counts(summary))
    bg = BetaGeoModel().fit(counts, weights=counts["n_customers"])
    clock.lap("bgnbd")
    spend = con.execute(repeat_spend(summary))
    gg = GammaGammaModel().fit(spend, weights=spend["n_customers"])
    clock.lap("gamma_gamma")
    threads = con.raw_sql("SELECT current_setting('threads')").fetchall()[0][0]
    return {
        **clock.doc(skip=("load_into_duckdb",)),
        "bgnbd": bg.params_ | {"loglik": bg.loglik_},
        "gamma_gamma": gg.params_ | {"loglik": gg.loglik_},
        "n_customers": bg.n_customers_,
        "distinct_frequency_recency_T": len(counts),
        "duckdb_threads": int(threads),
        "_counts": counts,
        "_spend": spend,
    }


def run_lifetimes(tx: pd.DataFrame) -> dict[str, Any]:
    import lifetimes
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    clock = Clock()
    summary = summary_data_from_transaction_data(
        tx, "customer_id", "ordered_at", monetary_value_col="amount",
        observation_period_end=pd.Timestamp(CAL_END), freq="D", freq_multiplier=7,
    )  # fmt: skip
    clock.lap("summary")
    bg = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    clock.lap("bgnbd")
    rep = summary[summary["frequency"] > 0]
    gg = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    clock.lap("gamma_gamma")
    return {
        "version": lifetimes.__version__,
        **clock.doc(),
        "bgnbd": {k: float(bg.params_[k]) for k in ("r", "alpha", "a", "b")},
        "gamma_gamma": {
            "p": float(gg.params_["p"]),
            "q": float(gg.params_["q"]),
            "gamma": float(gg.params_["v"]),
        },
        "n_customers": len(summary),
    }


def run_pymc(tx: pd.DataFrame) -> dict[str, Any]:
    import pymc_marketing
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
    from pymc_marketing.clv.utils import rfm_summary

    clock = Clock()
    summary = rfm_summary(
        tx, "customer_id", "ordered_at", monetary_value_col="amount",
        observation_period_end=pd.Timestamp(CAL_END), time_unit="D", time_scaler=7,
    )  # fmt: skip
    clock.lap("summary")
    bg = BetaGeoModel(data=summary[["customer_id", "frequency", "recency", "T"]])
    bg.fit(method="map", progressbar=False)
    clock.lap("bgnbd")
    rep = summary[summary["frequency"] > 0][["customer_id", "frequency", "monetary_value"]]
    gg = GammaGammaModel(data=rep)
    gg.fit(method="map", progressbar=False)
    clock.lap("gamma_gamma")
    # fit_summary() rounds to 3 decimals; the MAP point itself is the posterior "draw"
    bgp = {k: float(bg.idata.posterior[k].mean()) for k in ("r", "alpha", "a", "b")}
    ggp = {k: float(gg.idata.posterior[k].mean()) for k in ("p", "q", "v")}
    return {
        "version": pymc_marketing.__version__,
        **clock.doc(),
        "bgnbd": {k: float(bgp[k]) for k in ("r", "alpha", "a", "b")},
        "gamma_gamma": {"p": float(ggp["p"]), "q": float(ggp["q"]), "gamma": float(ggp["v"])},
        "n_customers": len(summary),
        "priors": "PyMC-Marketing defaults (MAP): BG/NBD r, alpha ~ Weibull, dropout "
        "phi ~ Uniform, kappa ~ Pareto; Gamma-Gamma HalfFlat",
    }


def rel_diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: abs(a[k] - b[k]) / abs(b[k]) for k in b if k in a and k != "loglik"}


def loglik_at(params: dict[str, dict[str, float]], counts: pd.DataFrame, spend: pd.DataFrame):
    """Loupe's log-likelihood of the benchmark data at another tool's parameters."""
    from loupe.models import BetaGeoModel, GammaGammaModel
    from loupe.models.base import WEIGHT

    out = {}
    for key, cls, data in (
        ("bgnbd", BetaGeoModel, counts.assign(**{WEIGHT: counts["n_customers"]})),
        ("gamma_gamma", GammaGammaModel, spend.assign(**{WEIGHT: spend["n_customers"]})),
    ):
        model = cls()
        d = model._arrays(data)
        w = d.pop(WEIGHT)
        theta = np.array([params[key][n] for n in cls.param_names])
        out[key] = float(model._total(theta, d, w)[0])
    return out


def median_run(run: Any, data: pd.DataFrame, repeat: int, **kw: Any) -> dict[str, Any]:
    """``run(data)`` ``repeat`` times: the result of the run with the median total, with the
    totals of all runs in order (``repeats``)."""
    results = [run(data, **kw) for _ in range(max(1, repeat))]
    totals = [r["seconds"]["total"] for r in results]
    median = sorted(range(len(results)), key=totals.__getitem__)[(len(results) - 1) // 2]
    return results[median] | {"repeats": totals}


def subsample(tx: pd.DataFrame, n: int, limit: int) -> tuple[pd.DataFrame, int]:
    m = min(n, limit)
    return (tx if m >= n else tx[tx["customer_id"] < m]), m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lifetimes-max", type=int, default=None, help="default: all")
    parser.add_argument("--pymc-max", type=int, default=None, help="0 skips PyMC-Marketing")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs of Loupe and lifetimes (median kept)"
    )
    args = parser.parse_args()
    n = args.customers
    out = args.out or RESULTS / ("clv_1m.json" if n >= 1_000_000 else "clv.json")
    pymc_max = args.pymc_max if args.pymc_max is not None else (n if n >= 1_000_000 else 0)
    lifetimes_max = args.lifetimes_max if args.lifetimes_max is not None else n

    t0 = time.perf_counter()
    tx = simulate(n)
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "duckdb": duckdb.__version__,
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "note": "shared machine: other jobs were running; see the load averages",
        },
        "n_customers": n,
        "n_transactions": len(tx),
        "simulate_seconds": round(time.perf_counter() - t0, 3),
        "repeat": args.repeat,
        "true": {"bgnbd": TRUE_BG, "gamma_gamma": TRUE_GG},
    }

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=float))

    # one-off per-process setup (Ibis compiling its first expressions, DuckDB's first
    # connection) is not per customer: warm it on 2,000 customers, untimed
    run_loupe(subsample(tx, n, 2_000)[0])
    loupe = median_run(run_loupe, tx, args.repeat)
    counts, spend = loupe.pop("_counts"), loupe.pop("_spend")
    loupe["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    result["loupe"] = loupe
    result["agreement"] = {
        "loupe_vs_truth": {
            "bgnbd": rel_diff(loupe["bgnbd"], TRUE_BG),
            "gamma_gamma": rel_diff(loupe["gamma_gamma"], TRUE_GG),
        }
    }
    print(f"loupe on {n:,} customers: {loupe['seconds']}", flush=True)
    save()
    # The peers run on one core; DuckDB's default uses every core, which on a small shared
    # machine costs more CPU than it saves.  The single-thread run is the like-for-like one.
    single = median_run(run_loupe, tx, args.repeat, threads=1)
    single.pop("_counts"), single.pop("_spend")
    single["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    result["loupe_single_thread"] = single
    print(f"loupe, DuckDB on one thread: {single['seconds']}", flush=True)
    save()

    peers = (("lifetimes", run_lifetimes, lifetimes_max), ("pymc_marketing", run_pymc, pymc_max))
    for name, run, limit in peers:
        if limit <= 0:
            flag = f"--{name.split('_')[0]}-max"
            smoke = name == "pymc_marketing" and args.pymc_max is None
            why = f"smoke run (< 1M customers); pass {flag} N to run it" if smoke else f"{flag} 0"
            result[name] = {"skipped": why}
            continue
        data, m = subsample(tx, n, limit)
        entry: dict[str, Any] = {"n_customers_run": m}
        if m < n:
            entry["subsample_note"] = (
                f"run on the first {m:,} customers only (--{name.split('_')[0]}-max); "
                "its times are for that subsample, see speedup_extrapolated"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                entry.update(median_run(run, data, args.repeat if name == "lifetimes" else 1))
        except ImportError as exc:
            entry["skipped"] = f"not installed ({exc.name}): pip install -r bench/requirements.txt"
        except Exception as exc:  # record honestly why the peer could not run
            entry["error"] = "".join(traceback.format_exception_only(exc)).strip()
        entry["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        result[name] = entry
        if "seconds" in entry:
            speed = entry["seconds"]["total"] / loupe["seconds"]["total"]
            with_load = loupe["seconds"]["total"] + loupe["seconds"]["load_into_duckdb"]
            agreement = {
                "bgnbd_rel_diff": rel_diff(loupe["bgnbd"], entry["bgnbd"]),
                "gamma_gamma_rel_diff": rel_diff(loupe["gamma_gamma"], entry["gamma_gamma"]),
            }
            if m == n:
                result[f"speedup_vs_{name}"] = round(speed, 2)
                result[f"speedup_vs_{name}_loupe_single_thread"] = round(
                    entry["seconds"]["total"] / single["seconds"]["total"], 2
                )
                result[f"speedup_vs_{name}_including_load"] = round(
                    entry["seconds"]["total"] / with_load, 2
                )
                result[f"cpu_ratio_vs_{name}"] = round(
                    entry["cpu_seconds"]["total"] / loupe["cpu_seconds"]["total"], 2
                )
                agreement["loupe_loglik_at_their_params"] = loglik_at(entry, counts, spend)
                agreement["loupe_loglik_at_loupe_params"] = {
                    "bgnbd": loupe["bgnbd"]["loglik"],
                    "gamma_gamma": loupe["gamma_gamma"]["loglik"],
                }
            else:
                # linear in customers (both the summary and the fits are per customer)
                result[f"speedup_vs_{name}_extrapolated"] = round(speed * n / m, 2)
                agreement["note"] = "their parameters are from the subsample"
            result["agreement"][f"loupe_vs_{name}"] = agreement
            print(f"{name} on {m:,} customers: {entry['seconds']} ({speed:.1f}x)", flush=True)
        else:
            print(f"{name}: {entry.get('skipped') or entry.get('error')}", flush=True)
        save()
    save()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
