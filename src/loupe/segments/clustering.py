"""``loupe cluster``: k-means on standardised customer features, with a profile per cluster.

The engine selects the population and the feature columns (one row per customer); only that
matrix reaches pandas/scikit-learn.  Steps:

1. population: customers with at least ``min_orders`` purchases (default 2 — one purchase says
   little about someone's habits, and one-time buyers otherwise form one big blob);
2. features: the chosen ``customer_features`` columns (``cat_share_*`` style globs allowed);
   missing values get the column median; a non-negative feature with skewness > 1 is
   log-transformed (``log1p``); then every column is standardised (mean 0, sd 1);
3. k: given, or the k in ``k_range`` with the best silhouette (on a sample of at most
   ``silhouette_sample`` customers); k-means with ``n_init`` restarts and a fixed seed;
4. profile: size, revenue share, the features that stand out (lift = cluster mean /
   population mean, on the untransformed values), the most common tags, and a name made from
   the standout features.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd

from loupe.errors import LoupeError
from loupe.profile.stage import FEATURES, SEGMENT_MEMBERS, TAGS, ensure_tables
from loupe.profile.tags import latest_tags
from loupe.warehouse import Warehouse, utcnow

DEFAULT_FEATURES: tuple[str, ...] = (
    "purchase_rate",
    "aov",
    "discount_share",
    "online_share",
    "app_share",
    "store_share",
    "night_share",
    "morning_share",
    "afternoon_share",
    "evening_share",
    "cat_share_*",
    "tenure_days",
)

#: Words for a feature that stands out high / low, used to name clusters.
WORDS: dict[str, tuple[str, str | None]] = {
    "purchase_rate": ("frequent", "infrequent"),
    "frequency": ("frequent", "infrequent"),
    "aov": ("big-basket", "small-basket"),
    "monetary": ("high-spend", "low-spend"),
    "discount_share": ("deal-seeking", "full-price"),
    "online_share": ("web", None),
    "app_share": ("app-first", None),
    "store_share": ("in-store", None),
    "night_share": ("night-owl", None),
    "morning_share": ("morning", None),
    "afternoon_share": ("afternoon", None),
    "evening_share": ("evening", None),
    "tenure_days": ("long-standing", "recent"),
    "recency_days": ("lapsing", "recently-active"),
    "return_rate": ("returning-items", None),
}


@dataclass(frozen=True)
class ClusterSpec:
    """How to cluster.

    Parameters
    ----------
    features
        Column names or globs of ``customer_features``.
    k
        Number of clusters; ``None`` picks it by silhouette within ``k_range``.
    min_orders
        Only customers with at least this many purchases are clustered.
    """

    features: tuple[str, ...] = DEFAULT_FEATURES
    k: int | None = None
    k_range: tuple[int, int] = (2, 8)
    min_orders: int = 2
    seed: int = 0
    n_init: int = 10
    silhouette_sample: int = 5000
    standout_lift: float = 1.25


@dataclass
class ClusterResult:
    """Labels per customer and the profile of each cluster."""

    k: int
    features: list[str]
    transformed: list[str]
    silhouette: dict[int, float]
    labels: pd.DataFrame
    """``customer_id, cluster`` (cluster numbers from 0, largest cluster first)."""
    clusters: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, *, with_labels: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "k": self.k,
            "customers": len(self.labels),
            "features": self.features,
            "log_transformed": self.transformed,
            "silhouette": {str(k): v for k, v in self.silhouette.items()},
            "clusters": self.clusters,
        }
        if with_labels:
            doc["labels"] = self.labels.to_dict(orient="records")
        return doc


def resolve_features(patterns: Sequence[str], columns: Sequence[str]) -> list[str]:
    """Expand globs against ``columns``; an unknown plain name is an error."""
    out: list[str] = []
    for p in patterns:
        hits = fnmatch.filter(columns, p) if any(ch in p for ch in "*?[") else [p]
        for h in hits:
            if h not in columns:
                raise LoupeError(
                    f"unknown feature {h!r}",
                    where="--features",
                    fix="use columns of customer_features (numeric), e.g. aov, discount_share",
                )
            if h not in out:
                out.append(h)
    if not out:
        raise LoupeError("no features to cluster on", where="--features")
    return out


def prepare_matrix(df: pd.DataFrame, features: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Median-impute, log1p the skewed non-negative columns, standardise."""
    from sklearn.preprocessing import StandardScaler

    x = df[list(features)].astype("float64")
    x = x.fillna(x.median()).fillna(0.0)
    logged = []
    for c in features:
        col = x[c]
        if float(col.min()) >= 0 and float(col.skew()) > 1:  # type: ignore[arg-type]
            x[c] = np.log1p(col)
            logged.append(c)
    scaled = StandardScaler().fit_transform(x.to_numpy())
    return np.nan_to_num(scaled), logged


def choose_k(x: np.ndarray, spec: ClusterSpec) -> tuple[int, dict[int, float]]:
    """The k with the best silhouette in ``spec.k_range`` (scores for every k tried)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(spec.seed)
    n = len(x)
    idx = rng.choice(n, size=min(n, spec.silhouette_sample), replace=False)
    lo, hi = spec.k_range
    scores: dict[int, float] = {}
    for k in range(max(2, lo), min(hi, n - 1) + 1):
        km = KMeans(n_clusters=k, n_init=spec.n_init, random_state=spec.seed).fit(x)
        labels = km.labels_[idx]
        if len(set(labels)) < 2:
            continue
        scores[k] = round(float(silhouette_score(x[idx], labels)), 4)
    if not scores:
        return 1, scores
    return max(scores, key=lambda k: scores[k]), scores


def cluster_matrix(
    df: pd.DataFrame, features: Sequence[str], spec: ClusterSpec
) -> tuple[np.ndarray, list[str], int, dict[int, float]]:
    """Labels (relabelled so cluster 0 is the largest), transformed columns, k, silhouettes."""
    from sklearn.cluster import KMeans

    x, logged = prepare_matrix(df, features)
    scores: dict[int, float] = {}
    k = spec.k
    if k is None:
        k, scores = choose_k(x, spec)
    if k < 1 or k > len(x):
        raise LoupeError(
            f"cannot make {k} clusters of {len(x)} customers",
            where="--k",
            fix="choose a k between 2 and the number of customers",
        )
    labels = KMeans(n_clusters=k, n_init=spec.n_init, random_state=spec.seed).fit_predict(x)
    order = pd.Series(labels).value_counts().index.tolist()
    relabel = {old: new for new, old in enumerate(order)}
    return np.array([relabel[v] for v in labels]), logged, k, scores


def describe_clusters(
    df: pd.DataFrame,
    labels: np.ndarray,
    features: Sequence[str],
    spec: ClusterSpec,
    tags: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Size, revenue share, standout features (lift), top tags and a name per cluster."""
    d = df.assign(cluster=labels)
    pop = d[list(features)].mean()
    revenue = float(d["monetary"].sum()) if "monetary" in d else 0.0
    out = []
    names: set[str] = set()
    for c in sorted(d.cluster.unique()):
        part = d[d.cluster == c]
        means = part[list(features)].mean()
        lifts: list[dict[str, Any]] = []
        for f in features:
            p, m = float(pop[f]), float(means[f])
            if not math.isnan(p) and not math.isnan(m) and p > 0:
                lifts.append(
                    {"feature": f, "mean": float(m), "population": float(p), "lift": float(m / p)}
                )
        lifts.sort(key=lambda r: -abs(math.log(max(r["lift"], 1e-6))))
        standout = [
            r
            for r in lifts
            if r["lift"] >= spec.standout_lift or r["lift"] <= 1 / spec.standout_lift
        ]
        doc: dict[str, Any] = {
            "cluster": int(c),
            "size": len(part),
            "share": len(part) / len(d),
            "revenue_share": float(part["monetary"].sum()) / revenue if revenue else 0.0,
            "standout": standout[:5],
            "means": {f: float(means[f]) for f in features},
        }
        if tags is not None and len(tags):
            t = tags[tags.customer_id.isin(part.customer_id)]
            label = np.where(
                t["value"] == "true", t["tag"], t["tag"] + "=" + t["value"].astype(str)
            )
            top = pd.Series(label).value_counts().head(5)
            doc["top_tags"] = [{"tag": k, "share": int(v) / len(part)} for k, v in top.items()]
        else:
            doc["top_tags"] = []
        name = cluster_name(standout)
        base, i = name, 2
        while name in names:
            name, i = f"{base} #{i}", i + 1
        names.add(name)
        doc["name"] = name
        out.append(doc)
    return out


def cluster_name(standout: Sequence[dict[str, Any]]) -> str:
    """A short descriptive name: the strongest high standouts first, then telling lows."""
    highs = sorted((r for r in standout if r["lift"] > 1), key=lambda r: -r["lift"])
    lows = sorted((r for r in standout if r["lift"] < 1), key=lambda r: r["lift"])
    words: list[str] = []
    for r in [*highs, *lows]:
        f, high = r["feature"], r["lift"] > 1
        word: str | None
        if f.startswith("cat_share_"):
            word = f"{f.removeprefix('cat_share_').replace('_', ' ')}-loving" if high else None
        elif f in WORDS:
            word = WORDS[f][0 if high else 1]
        else:
            word = f"{'high' if high else 'low'} {f}"
        if word and word not in words:
            words.append(word)
        if len(words) == 3:
            break
    return (", ".join(words) + " shoppers") if words else "typical shoppers"


def cluster_customers(wh: Warehouse, spec: ClusterSpec | None = None) -> ClusterResult:
    """Cluster the customers of ``customer_features`` (see the module docstring)."""
    spec = spec or ClusterSpec()
    features_t = wh.table(FEATURES)
    numeric = [c for c, t in features_t.schema().items() if t.is_numeric() and c != "customer_id"]
    chosen = resolve_features(spec.features, numeric)
    pop = features_t.filter(features_t.frequency >= spec.min_orders)
    cols = ["customer_id", "monetary", *[c for c in chosen if c != "monetary"]]
    df = wh.to_pandas(pop.select(*cols).order_by("customer_id")).reset_index(drop=True)
    if len(df) < 3:
        raise LoupeError(
            f"only {len(df)} customers have {spec.min_orders}+ purchases; too few to cluster",
            where=FEATURES,
        )
    labels, logged, k, scores = cluster_matrix(df, chosen, spec)
    tags = None
    if wh.exists(TAGS):
        t = latest_tags(wh.table(TAGS))
        t = t.filter(t.customer_id.isin(pop.customer_id))
        tags = wh.to_pandas(t.select("customer_id", "tag", "value"))
    clusters = describe_clusters(df, labels, chosen, spec, tags)
    return ClusterResult(
        k=k,
        features=chosen,
        transformed=logged,
        silhouette=scores,
        labels=pd.DataFrame({"customer_id": df["customer_id"], "cluster": labels}),
        clusters=clusters,
    )


def save_clusters(wh: Warehouse, result: ClusterResult, prefix: str = "cluster") -> list[str]:
    """Save each cluster as a static segment ``"<prefix> <n>: <name>"`` (members as of now).

    A static segment has an empty expression; ``loupe segments refresh`` keeps its members.
    """
    from loupe.segments.settings import SegmentSettings
    from loupe.segments.store import save_definitions

    ensure_tables(wh)
    names = [f"{prefix} {c['cluster'] + 1}: {c['name']}" for c in result.clusters]
    by_cluster = dict(zip([c["cluster"] for c in result.clusters], names, strict=True))
    save_definitions(
        wh,
        [
            SegmentSettings(name=n, expr="", description=f"k-means cluster (k={result.k}), static")
            for n in names
        ],
    )
    rows = result.labels.assign(segment=result.labels.cluster.map(by_cluster))
    at = utcnow()
    table = pd.DataFrame(
        {
            "segment": rows["segment"],
            "customer_id": rows["customer_id"].astype(str),
            "computed_at": at,
        }
    )
    schema = ibis.schema({"segment": "string", "customer_id": "string", "computed_at": "timestamp"})
    wh.append(SEGMENT_MEMBERS, ibis.memtable(table, schema=schema), count=False)
    return names
