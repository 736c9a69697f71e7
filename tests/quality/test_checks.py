"""Outliers against a brute-force median/MAD reference, and the cross-table checks."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from loupe.quality import run_quality

from .rawdata import write_raw

TS = datetime(2024, 5, 1)


def _flags(wh, table, key):
    df = wh.to_pandas(wh.table(table).order_by(key))
    return {k: set(f) for k, f in zip(df[key], df.quality_flags, strict=True)}


def _reference_outliers(values: np.ndarray, threshold: float) -> np.ndarray:
    med = np.median(values)
    mad = np.median(np.abs(values - med))
    return np.abs(values - med) / (1.4826 * mad) > threshold


def test_outliers_match_numpy_reference(wh):
    rng = np.random.default_rng(3)
    amounts = rng.lognormal(5, 0.4, size=300).round(2)
    amounts[[10, 50, 200]] = [25_000.0, 40_000.0, 0.01]
    rows = [
        {
            "source": "s",
            "order_id": f"o{i:03d}",
            "ordered_at": TS,
            "amount": float(a),
            "currency": "CNY",
        }
        for i, a in enumerate(amounts)
    ]
    write_raw(wh, "orders", rows)
    run_quality(wh)
    flags = _flags(wh, "orders", "order_id")
    got = np.array([("outlier_amount_base" in flags[f"o{i:03d}"]) for i in range(len(amounts))])
    expected = _reference_outliers(amounts, wh.settings.quality.outlier_threshold)
    assert expected[[10, 50]].all()
    assert (got == expected).all()
    assert 0 < got.sum() < 10


def test_amount_mismatch_and_orphan_lines(wh):
    write_raw(
        wh,
        "orders",
        [
            {"source": "s", "order_id": "ok", "ordered_at": TS, "amount": 90.0},
            {"source": "s", "order_id": "close", "ordered_at": TS, "amount": 100.5},
            {"source": "s", "order_id": "bad", "ordered_at": TS, "amount": 150.0},
            {
                "source": "s",
                "order_id": "order_disc",
                "ordered_at": TS,
                "amount": 80.0,
                "discount": 20.0,
            },
            {"source": "s", "order_id": "nolines", "ordered_at": TS, "amount": 10.0},
        ],
    )
    write_raw(
        wh,
        "order_items",
        [
            {
                "source": "s",
                "order_id": "ok",
                "line_no": 1,
                "product_id": "p",
                "quantity": 2,
                "unit_price": 50.0,
                "discount": 10.0,
            },
            {
                "source": "s",
                "order_id": "close",
                "line_no": 1,
                "product_id": "p",
                "quantity": 1,
                "unit_price": 100.0,
            },
            {
                "source": "s",
                "order_id": "bad",
                "line_no": 1,
                "product_id": "p",
                "quantity": 1,
                "unit_price": 100.0,
            },
            {
                "source": "s",
                "order_id": "order_disc",
                "line_no": 1,
                "product_id": "p",
                "quantity": 1,
                "unit_price": 100.0,
            },
            {
                "source": "s",
                "order_id": "ghost",
                "line_no": 1,
                "product_id": "p",
                "quantity": 1,
                "unit_price": 5.0,
            },
        ],
    )
    report = run_quality(wh)
    orders = _flags(wh, "orders", "order_id")
    mismatched = {k for k, f in orders.items() if "amount_mismatch" in f}
    assert mismatched == {"bad"}
    items = _flags(wh, "order_items", "order_id")
    assert {k for k, f in items.items() if "orphan_line" in f} == {"ghost"}
    (check,) = report.table("orders").checks
    assert (check.checked, check.failed) == (4, 1)
    assert report.table("orders").column("amount").consistency == 0.75


def test_events_before_first_seen(wh):
    write_raw(
        wh,
        "contacts",
        [
            {
                "source": "crm",
                "source_key": "1",
                "user_id": "u1",
                "signup_at": datetime(2024, 3, 1),
            },
            {
                "source": "app",
                "source_key": "9",
                "user_id": "u1",
                "signup_at": datetime(2024, 2, 1),
            },
        ],
    )
    write_raw(
        wh,
        "events",
        [
            {"source": "w", "event_id": "early", "user_id": "u1", "ts": datetime(2024, 1, 15)},
            {"source": "w", "event_id": "later", "user_id": "u1", "ts": datetime(2024, 2, 15)},
            {"source": "w", "event_id": "stranger", "user_id": "u2", "ts": datetime(2020, 1, 1)},
        ],
    )
    run_quality(wh)
    flags = _flags(wh, "events", "event_id")
    assert {k for k, f in flags.items() if "before_first_seen" in f} == {"early"}


def test_currency_conversion_and_unknown_currency(tmp_path):
    from loupe.warehouse import Warehouse

    from ..conftest import make_settings

    settings = make_settings(tmp_path, currency_rates={"USD": 7.0, "HKD": 0.9})
    with Warehouse.open(settings) as wh:
        write_raw(
            wh,
            "orders",
            [
                {
                    "source": "s",
                    "order_id": "1",
                    "ordered_at": TS,
                    "amount": 10.0,
                    "currency": "usd",
                },
                {
                    "source": "s",
                    "order_id": "2",
                    "ordered_at": TS,
                    "amount": 10.0,
                    "currency": "HKD",
                },
                {
                    "source": "s",
                    "order_id": "3",
                    "ordered_at": TS,
                    "amount": 10.0,
                    "currency": "RMB",
                },
                {
                    "source": "s",
                    "order_id": "4",
                    "ordered_at": TS,
                    "amount": 10.0,
                    "currency": "EUR",
                },
                {
                    "source": "s",
                    "order_id": "5",
                    "ordered_at": TS,
                    "amount": 10.0,
                    "currency": None,
                },
            ],
        )
        run_quality(wh)
        df = wh.to_pandas(wh.table("orders").order_by("order_id"))
        assert list(df.currency) == ["USD", "HKD", "CNY", "EUR", "CNY"]
        base = [None if v != v else v for v in df.amount_base]
        assert base == [70.0, 9.0, 10.0, None, 10.0]
        assert "unknown_currency" in df.quality_flags[3]
        assert "missing_currency" in df.quality_flags[4]
