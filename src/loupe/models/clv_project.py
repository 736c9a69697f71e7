"""Customer lifetime value in a project: ``loupe clv score`` and the ``loupe run`` step.

The summary is built in the engine from the project's ``orders`` attached to resolved
customers (purchases only: orders whose status is in the profile's ``not_purchase_statuses``
are left out; amounts in the base currency, ``amount_base``, where the quality stage converted
them).  The models are fitted on the summary's sufficient statistics
(:func:`loupe.models.fit_clv_models`), registered in ``model_registry`` (kind ``clv``), and
every customer's predictions are merged into ``customer_features``:

``clv_p_alive``
    Probability the customer is still active at the as-of day.
``clv_expected_purchases``
    Expected purchase days in the next ``horizon_months`` months.
``clv_expected_spend``
    Expected value of one future purchase (Gamma-Gamma conditional mean).
``clv``
    Discounted expected value over the horizon, monthly discounting at the annual rate.
``clv_model_version``
    The ``model_registry`` version that produced the row.

A customer without a purchase before the as-of day is not scored: every ``clv_*`` column is
NULL (the models describe customers after their first purchase; a non-buyer has no recency).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from loupe.errors import LoupeError
from loupe.identity.attach import orders_with_customers
from loupe.models.base import MLEModel
from loupe.models.clv import customer_lifetime_value, fit_clv_models, period_length
from loupe.models.features import merge_into_features
from loupe.models.gamma_gamma import GammaGammaModel
from loupe.models.registry import save_model
from loupe.models.settings import ClvSettings
from loupe.models.summary import SummarySpec, rfm_summary
from loupe.warehouse import Warehouse, stage_run

Progress = Callable[[str, int, int], None]

MODEL_NAME = "clv"
SCRATCH = "_clv_summary"
COLUMNS = (
    "clv_p_alive",
    "clv_expected_purchases",
    "clv_expected_spend",
    "clv",
    "clv_model_version",
)


@dataclass
class ClvModel:
    """What the registry keeps: both fitted models and the settings they score with."""

    transaction: MLEModel
    spend: GammaGammaModel
    settings: ClvSettings
    as_of: date

    def score(self, summary: pd.DataFrame) -> pd.DataFrame:
        """The ``clv_*`` prediction columns for a per-customer summary (same index)."""
        s = self.settings
        horizon = s.horizon_months * period_length("month", s.time_unit)
        monthly = (1.0 + s.annual_discount_rate) ** (1.0 / 12.0) - 1.0
        tm: Any = self.transaction
        value = customer_lifetime_value(
            tm,
            self.spend,
            summary,
            horizon=s.horizon_months,
            discount_rate=monthly,
            period="month",
            time_unit=s.time_unit,
        )
        return pd.DataFrame(
            {
                "clv_p_alive": tm.predict_probability_alive(summary),
                "clv_expected_purchases": tm.predict_purchases(summary, horizon),
                "clv_expected_spend": self.spend.predict_spend(summary),
                "clv": value.to_numpy(),
            },
            index=summary.index,
        )


def clv_transactions(wh: Warehouse) -> ir.Table:
    """Purchases of resolved customers: ``customer_id, ordered_at, amount`` (base currency)."""
    orders = orders_with_customers(wh.table("orders"), wh.table("identity_links"))
    amount = orders.amount
    if "amount_base" in orders.columns:
        amount = orders.amount_base.coalesce(orders.amount)
    not_purchase = [s.lower() for s in wh.settings.profile.not_purchase_statuses]
    status = orders.status.lower().strip().fill_null("")
    kept = orders.mutate(_amount=amount.fill_null(0.0).cast("float64"))
    kept = kept.filter(kept.customer_id.notnull(), ~status.isin(not_purchase))
    return kept.select("customer_id", "ordered_at", amount=kept._amount)


def _default_as_of(wh: Warehouse) -> date:
    latest = wh.scalar(wh.table("orders").ordered_at.max())
    if latest is None or latest != latest:  # None or NaT
        raise LoupeError(
            "there are no orders to fit a CLV model on",
            where="orders",
            fix="load orders first (`loupe ingest`, then `loupe run`)",
        )
    if not isinstance(latest, datetime):
        latest = datetime.fromisoformat(str(latest))
    return latest.date() + timedelta(days=1)


def run_clv(
    wh: Warehouse, as_of: date | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Fit the CLV models on the orders before ``as_of`` and score every customer.

    Parameters
    ----------
    wh
        The project's warehouse; ``orders``, ``identity_links`` and ``customer_features``
        must exist (``loupe run`` builds them).
    as_of
        Orders before midnight (UTC) at the start of this day count; default: the day after
        the latest order, as for the profile.
    progress
        ``progress(step, done, total)`` callback.

    Returns
    -------
    dict
        ``as_of, version, transaction_model, time_unit, horizon_months,
        annual_discount_rate, params, loglik, customers, repeat_customers, scored,
        total_clv, mean_clv, seconds``.
    """
    start = time.perf_counter()
    settings = wh.settings.models.clv
    as_of = as_of or _default_as_of(wh)
    spec = SummarySpec(
        calibration_end=as_of - timedelta(days=1),
        customer_col="customer_id",
        date_col="ordered_at",
        amount_col="amount",
        time_unit=settings.time_unit,
    )
    steps = 4

    def step(done: int) -> None:
        if progress:
            progress("customer lifetime value", done, steps)

    step(0)
    with stage_run(wh, "clv", ["orders", "identity_links"], ["customer_features"]) as run:
        tx = clv_transactions(wh)
        tx = tx.filter(tx.ordered_at < ibis.literal(datetime.combine(as_of, datetime.min.time())))
        summary = wh.scratch(SCRATCH, rfm_summary(tx, spec))
        try:
            n_customers = wh.count(summary)
            if n_customers == 0:
                raise LoupeError(
                    f"no purchases of resolved customers before {as_of}",
                    where="orders",
                    fix="choose a later --as-of, or run identity resolution first",
                )
            step(1)
            try:
                transaction, spend = fit_clv_models(
                    wh.to_pandas, summary, transaction_model=settings.transaction_model
                )
            except ValueError as exc:
                raise LoupeError(
                    f"cannot fit the CLV models: {exc}",
                    where="orders",
                    fix="CLV needs customers with repeat purchases before the as-of day",
                ) from exc
            step(2)
            model = ClvModel(transaction, spend, settings, as_of)
            frame = wh.to_pandas(
                summary.select(
                    "customer_id", "frequency", "recency", "T", "monetary_value", "first_purchase"
                )
            ).set_index("customer_id")
        finally:
            wh.drop(SCRATCH)
        scores = model.score(frame)
        params = {
            settings.transaction_model: transaction.params_,
            "gamma_gamma": spend.params_,
            "time_unit": settings.time_unit,
            "horizon_months": settings.horizon_months,
            "annual_discount_rate": settings.annual_discount_rate,
            "as_of": as_of,
        }
        metrics = {
            "loglik": transaction.loglik_,
            "loglik_gamma_gamma": spend.loglik_,
            "customers": transaction.n_customers_,
            "repeat_customers": spend.n_customers_,
            "converged": bool(transaction.converged_ and spend.converged_),
            "mean_clv": float(scores["clv"].mean()),
        }
        record = save_model(
            wh,
            model,
            name=MODEL_NAME,
            kind="clv",
            target="clv",
            features=["frequency", "recency", "T", "monetary_value"],
            train_start=pd.Timestamp(frame["first_purchase"].min()).date(),
            train_end=spec.calibration_end,
            metrics=metrics,
            params=params,
        )
        step(3)
        out = scores.reset_index()
        out["clv_model_version"] = record.version
        for col in COLUMNS[:-1]:
            out[col] = out[col].astype("float64")
        merge_into_features(wh, out[["customer_id", *COLUMNS]])
        run.rows_in = n_customers
        run.rows_out = len(out)
        step(4)
    return {
        "as_of": as_of,
        "version": record.version,
        "transaction_model": settings.transaction_model,
        "time_unit": settings.time_unit,
        "horizon_months": settings.horizon_months,
        "annual_discount_rate": settings.annual_discount_rate,
        "params": {
            settings.transaction_model: transaction.params_,
            "gamma_gamma": spend.params_,
        },
        "loglik": {settings.transaction_model: transaction.loglik_, "gamma_gamma": spend.loglik_},
        "customers": n_customers,
        "repeat_customers": spend.n_customers_,
        "scored": len(out),
        "total_clv": float(np.sum(scores["clv"])),
        "mean_clv": float(np.mean(scores["clv"])),
        "seconds": round(time.perf_counter() - start, 3),
    }
