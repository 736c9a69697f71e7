"""How good a propensity model is and what drives it: the numbers and the HTML page.

:func:`evaluate` gives AUC, PR-AUC (average precision), the Brier score, lift and gain by
decile and a binned calibration curve, all from scikit-learn's metrics.  :func:`global_drivers`
ranks features (and groups of related features) by their mean absolute contribution to the
log-odds.  Contributions are additive, so a group's contribution for a customer is exactly the
sum of its features'; grouping keeps one behaviour measured by several correlated columns
(``orders_90d``, ``orders_365d``, ``purchase_rate`` …) from being split into small pieces that
each look minor.

The HTML report is one self-contained page (inline CSS and SVG, no script, nothing fetched),
like the quality report, so it opens offline and can be mailed.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import numpy as np
import pandas as pd

#: Groups of features that measure one behaviour (first match wins; others are their own group).
DRIVER_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("recency", ("recency_days", "cadence_ratio", "last_interval")),
    (
        "frequency",
        ("frequency", "purchase_days", "orders_*d", "purchase_rate", "n_intervals", "interval_*"),
    ),
    ("spend", ("monetary", "revenue_*d", "aov")),
    ("tenure", ("tenure_days",)),
    ("discount", ("discount_share",)),
    ("channel", ("online_share", "app_share", "store_share")),
    ("time_of_day", ("night_share", "morning_share", "afternoon_share", "evening_share")),
    ("returns", ("return_rate",)),
    ("category_mix", ("cat_share_*", "top_category_share", "top_brand_share")),
    ("site_activity", ("events_*d", "sessions_*d")),
    (
        "messaging",
        ("email_*", "push_*"),
    ),
    (
        "complaints",
        ("review_count", "low_review*", "min_rating", "days_since_low_review"),
    ),
    ("late_delivery", ("late_deliveries", "late_share", "last_online_late")),
    ("app_engagement", ("app_visit_days*", "app_trend")),
)


def driver_group(feature: str) -> str:
    """The group of ``feature`` (the feature itself when no group claims it)."""
    for group, patterns in DRIVER_GROUPS:
        if any(fnmatch.fnmatchcase(feature, p) for p in patterns):
            return group
    return feature


def lift_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Per score decile (1 = highest scores): customers, positives, rate, lift, cumulative
    gain (share of all positives found so far) and cumulative lift."""
    order = np.argsort(-p, kind="stable")
    ys = y[order]
    n, total = len(ys), max(int(y.sum()), 1)
    base = y.mean() if n else 0.0
    edges = [round(n * k / bins) for k in range(bins + 1)]
    rows, found = [], 0
    for k in range(bins):
        part = ys[edges[k] : edges[k + 1]]
        found += int(part.sum())
        seen = edges[k + 1]
        rate = float(part.mean()) if len(part) else 0.0
        rows.append(
            {
                "decile": k + 1,
                "customers": len(part),
                "positives": int(part.sum()),
                "rate": round(rate, 6),
                "lift": round(rate / base, 4) if base else None,
                "cumulative_gain": round(found / total, 6),
                "cumulative_lift": round(found / seen / base, 4) if base and seen else None,
            }
        )
    return rows


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Binned reliability curve: equal-width probability bins with their mean predicted and
    observed rate (empty bins are left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for k in range(bins):
        mask = which == k
        if mask.any():
            rows.append(
                {
                    "bin": f"{edges[k]:.1f}-{edges[k + 1]:.1f}",
                    "customers": int(mask.sum()),
                    "predicted": round(float(p[mask].mean()), 6),
                    "observed": round(float(y[mask].mean()), 6),
                }
            )
    return rows


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """AUC, PR-AUC, Brier score, base rate, lift/gain by decile and the calibration curve."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    both = 0 < y.sum() < len(y)
    return {
        "n": len(y),
        "base_rate": round(float(y.mean()), 6) if len(y) else 0.0,
        "auc": round(float(roc_auc_score(y, p)), 6) if both else None,
        "pr_auc": round(float(average_precision_score(y, p)), 6) if both else None,
        "brier": round(float(brier_score_loss(y, p)), 6) if len(y) else None,
        "lift": lift_table(y, p),
        "calibration": calibration_table(y, p),
    }


def global_drivers(contrib: pd.DataFrame, values: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Features and feature groups ranked by mean |contribution| (log-odds).

    Each feature also gets ``direction``: the sign of the Spearman correlation between its
    value and its contribution (``+``: higher values raise the score).
    """
    c = contrib.drop(columns=[col for col in ("bias",) if col in contrib.columns])
    mean_abs = c.abs().mean()
    total = float(mean_abs.sum()) or 1.0
    features = []
    for name in mean_abs.sort_values(ascending=False, kind="stable").index:
        v = values[name].astype("float64")
        ok = v.notna() & c[name].notna()
        varies = ok.sum() > 2 and v[ok].nunique() > 1 and c[name][ok].nunique() > 1
        rho = v[ok].rank().corr(c[name][ok].rank()) if varies else np.nan
        features.append(
            {
                "feature": name,
                "group": driver_group(name),
                "mean_abs": round(float(mean_abs[name]), 6),
                "share": round(float(mean_abs[name]) / total, 6),
                "direction": "" if not np.isfinite(rho) else ("+" if rho >= 0 else "-"),
            }
        )
    groups_of = {name: driver_group(name) for name in c.columns}
    summed = c.T.groupby(pd.Series(groups_of)).sum().T.abs().mean()
    group_total = float(summed.sum()) or 1.0
    groups = [
        {
            "group": g,
            "mean_abs": round(float(summed[g]), 6),
            "share": round(float(summed[g]) / group_total, 6),
            "features": [n for n, gg in groups_of.items() if gg == g],
        }
        for g in summed.sort_values(ascending=False, kind="stable").index
    ]
    return {"features": features, "groups": groups}


# -- the report document and page -------------------------------------------------------------
def model_report(wh: Any, model: str, *, customers: int = 10) -> dict[str, Any]:
    """The report of a propensity model: registry row, validation of booster and baseline,
    and the drivers of the highest-scored customers of its latest scoring run."""
    import ibis

    from loupe.errors import LoupeError
    from loupe.models.registry import load_model

    record, obj = load_model(wh, model)
    validation = getattr(obj, "validation_", None)
    if validation is None:
        raise LoupeError(
            f"model {record.version} has no validation report",
            where="model_registry",
            fix="only propensity models have this report; retrain with `loupe models train`",
        )
    scored: list[dict[str, Any]] = []
    if wh.exists("model_scores"):
        t = wh.table("model_scores")
        t = t.filter(t.version == record.version)
        last = t.scored_at.max()
        top = t.filter(t.scored_at == last).order_by([ibis.desc("score"), "customer_id"])
        df = wh.to_pandas(top.limit(customers))
        scored = [
            {
                "customer_id": r["customer_id"],
                "score": round(float(r["score"]), 6),
                "decile": int(r["decile"]),
                "drivers": json.loads(r["drivers"] or "[]"),
                "scored_at": r["scored_at"],
            }
            for r in df.to_dict("records")
        ]
    return {
        "model": record.name,
        "version": record.version,
        "kind": record.kind,
        "target": record.target,
        "trained_at": record.trained_at,
        "label": getattr(obj, "label_", {}),
        "cutoffs": record.params.get("cutoffs", {}),
        "rows": record.params.get("rows", {}),
        "calibration_method": record.params.get("calibration"),
        "features": record.features,
        "libraries": record.libraries,
        "content_hash": record.content_hash,
        "validation": validation,
        "top_customers": scored,
    }


_COLOURS = {"booster": "#1f5fd1", "baseline": "#e8863a", "ideal": "#9aa3b2"}


def _line_chart(
    series: dict[str, list[tuple[float, float]]], *, xlabel: str, ylabel: str, top: float = 1.0
) -> str:
    """An inline SVG line chart of points in [0, 1] × [0, top]."""
    w, h, pad = 420, 300, 44

    def xy(x: float, y: float) -> tuple[float, float]:
        return pad + x * (w - 2 * pad), h - pad - y / top * (h - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="11" '
        'font-family="sans-serif">',
        f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" '
        'stroke="#c8ced8"/>',
    ]
    for k in range(6):
        x0, y0 = xy(k / 5, top * k / 5)
        parts.append(
            f'<text x="{x0:.1f}" y="{h - pad + 14}" text-anchor="middle">{k / 5:.1f}</text>'
        )
        parts.append(
            f'<text x="{pad - 4}" y="{y0 + 4:.1f}" text-anchor="end">{top * k / 5:.1f}</text>'
        )
    for j, (name, points) in enumerate(series.items()):
        colour = _COLOURS.get(name, "#2ca02c")
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in (xy(x, y) for x, y in points))
        dash = ' stroke-dasharray="4 3"' if name == "ideal" else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{path}"/>'
        )
        parts.append(f'<text x="{pad + 8}" y="{pad + 14 + 13 * j}" fill="{colour}">{name}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle">{xlabel}</text>')
    parts.append(
        f'<text x="12" y="{h / 2}" transform="rotate(-90 12 {h / 2})" text-anchor="middle">'
        f"{ylabel}</text></svg>"
    )
    return "".join(parts)


def charts(doc: dict[str, Any]) -> dict[str, str]:
    """The gain and calibration charts of a report document, as inline SVG."""
    v = doc["validation"]
    gain = {
        name: [(0.0, 0.0)] + [(r["decile"] / 10, r["cumulative_gain"]) for r in v[name]["lift"]]
        for name in ("booster", "baseline")
    }
    gain["ideal"] = [(0.0, 0.0), (1.0, 1.0)]
    cal = {
        name: [(r["predicted"], r["observed"]) for r in v[name]["calibration"]]
        for name in ("booster", "baseline")
    }
    cal["ideal"] = [(0.0, 0.0), (1.0, 1.0)]
    return {
        "gain": _line_chart(
            gain, xlabel="share of customers targeted", ylabel="share of positives"
        ),
        "calibration": _line_chart(cal, xlabel="predicted probability", ylabel="observed rate"),
    }


def render_html(doc: dict[str, Any]) -> str:
    """The report as one standalone HTML page."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loupe.models", "templates"), autoescape=True
    )
    return env.get_template("propensity.html.j2").render(doc=doc, charts=charts(doc))
