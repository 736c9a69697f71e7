"""Calibration / holdout validation of a transaction model (FHL 2005, Figure 4).

Customers are grouped by their number of repeat purchases in the calibration period
(0, 1, ..., ``max_bucket``+); in each group the mean *actual* number of holdout transactions is
set against the mean *conditional expectation* E[Y(t) | x, t_x, T] over the holdout length.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from loupe.models.clv import TransactionModel


def holdout_comparison(
    model: TransactionModel, data: pd.DataFrame, *, max_bucket: int = 7
) -> pd.DataFrame:
    """Predicted vs actual holdout transactions per calibration-frequency bucket.

    ``data`` is a calibration/holdout summary (``frequency, recency, T, frequency_holdout,
    duration_holdout``).  Returns one row per bucket (``"0"`` … ``"7+"``) with ``n_customers``,
    ``actual`` and ``predicted`` means and their ``abs_error``; ``frame.attrs`` holds
    ``mae_buckets`` (mean absolute error over buckets) and ``mae_customers`` (over customers).
    """
    duration = float(np.asarray(data["duration_holdout"])[0]) if len(data) else 0.0
    predicted = model.predict_purchases(data, duration)
    actual = np.asarray(data["frequency_holdout"], dtype=np.float64)
    bucket = np.minimum(np.asarray(data["frequency"], dtype=np.int64), max_bucket)
    frame = pd.DataFrame({"bucket": bucket, "actual": actual, "predicted": predicted})
    table = frame.groupby("bucket").agg(
        n_customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    table = table.reindex(range(max_bucket + 1)).fillna({"n_customers": 0})
    table["n_customers"] = table["n_customers"].astype("int64")
    table["abs_error"] = (table["predicted"] - table["actual"]).abs()
    table.index = pd.Index(
        [str(b) if b < max_bucket else f"{max_bucket}+" for b in table.index], name="bucket"
    )
    table.attrs["mae_buckets"] = float(table["abs_error"].mean())
    table.attrs["mae_customers"] = float(np.mean(np.abs(predicted - actual))) if len(data) else 0.0
    table.attrs["duration_holdout"] = duration
    return table


_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def holdout_chart_html(
    table: pd.DataFrame,
    columns: tuple[str, ...] = ("actual", "predicted"),
    title: str = "Holdout validation",
) -> str:
    """A standalone HTML page with an inline SVG line chart of ``columns`` of ``table``
    (one point per bucket, e.g. :func:`holdout_comparison`); no JavaScript, no dependency."""
    width, height, pad = 640, 400, 56
    labels = [str(v) for v in table.index]
    series = dict(zip(columns, _COLOURS, strict=False))
    top = float(np.nanmax(table[list(series)].to_numpy())) if len(table) else 1.0
    top = top * 1.1 if top > 0 else 1.0
    n = max(len(labels) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + i * (width - 2 * pad) / n
        return x, height - pad - v / top * (height - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#333"/>',
    ]
    for k in range(6):
        v = top * k / 5
        _, y = xy(0, v)
        parts.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for i, label in enumerate(labels):
        x, _ = xy(i, 0)
        parts.append(
            f'<text x="{x:.1f}" y="{height - pad + 18}" text-anchor="middle">{html.escape(label)}</text>'
        )
    for j, (name, colour) in enumerate(series.items()):
        values = table[name].to_numpy(dtype=float)
        points = [xy(i, v) for i, v in enumerate(values) if np.isfinite(v)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points
        )
        parts.append(
            f'<text x="{width - pad - 80}" y="{pad + 16 * j}" fill="{colour}">{name}</text>'
        )
    parts.append(
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">'
        "repeat transactions in calibration period</text>"
    )
    parts.append(
        f'<text x="16" y="{height / 2}" transform="rotate(-90 16 {height / 2})" '
        'text-anchor="middle">mean transactions in holdout</text></svg>'
    )
    note = html.escape(str(table.attrs.get("note", "")))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h2>{html.escape(title)}</h2><p>{note}</p>" + "".join(parts) + "</body></html>"
    )
