"""Churn and purchase propensity: a LightGBM booster, a logistic-regression baseline, both
calibrated, validated on a later period, explained by their own contribution values.

The scheme (see ``docs/models.md``):

* **snapshots** (:mod:`loupe.models.snapshots`): features as of a cutoff, label from after it;
* **time-based validation**: fit on the snapshot(s) ending at cutoff ``c1``, measure on the
  snapshot at ``c2 = c1 + max(validation_days, horizon)``, whose labels the fit never saw
  (default ``c2`` = data end − horizon, the latest cutoff whose labels are complete);
* **calibration**: a stratified fifth of the training rows is held out and each model's scores
  are mapped to probabilities on it by scikit-learn's ``CalibratedClassifierCV`` around the
  frozen model (isotonic with enough rows, Platt otherwise);
* **final model**: the same recipe refitted on the snapshot at ``c2`` (the newest complete
  labels) is what gets registered and scored; the metrics stored with it are those of the
  validation above.

Drivers come from the models themselves: LightGBM's ``pred_contrib`` (TreeSHAP values in
log-odds) for the booster, ``coefficient × standardised value`` for the baseline (the exact
SHAP values of a linear model with independent inputs).
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Self

import ibis
import numpy as np
import pandas as pd

from loupe.errors import LoupeError
from loupe.models.features import FEATURES, merge_into_features
from loupe.models.registry import ModelRecord, get_model, list_models, load_model, save_model
from loupe.models.report import evaluate, global_drivers
from loupe.models.settings import LabelSettings, PropensitySettings
from loupe.models.snapshots import (
    DriverSpec,
    SnapshotBuilder,
    check_label_window,
    data_end,
    numeric_features,
)
from loupe.warehouse import Warehouse, utcnow
from loupe.warehouse import schemas as s

Progress = Callable[[str, int, int], None]
ModelName = Literal["booster", "baseline"]
MODELS: tuple[ModelName, ...] = ("booster", "baseline")
KIND = "propensity"
SCORES = "model_scores"

#: LightGBM settings for per-customer tables of a few thousand to a few million rows: small,
#: strongly regularised trees (a churn label is noisy; deep trees fit the noise, which shows up
#: as contribution given to shuffled copies of real features).
BOOSTER_PARAMS: dict[str, Any] = {
    "n_estimators": 250,
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 5.0,
    "n_jobs": 1,
    "verbose": -1,
}


class PropensityModel:
    """A booster and a baseline for one label, each with its calibrator.

    Parameters
    ----------
    features
        Input columns, in order.
    calibration
        ``isotonic``, ``sigmoid`` (Platt) or ``auto`` (isotonic from 1,000 calibration rows).
    seed
        Seeds the calibration split and the booster.
    """

    def __init__(
        self,
        features: Sequence[str],
        *,
        calibration: Literal["auto", "isotonic", "sigmoid"] = "auto",
        seed: int = 0,
        booster_params: dict[str, Any] | None = None,
    ) -> None:
        self.features = list(features)
        self.validation_: dict[str, Any] | None = None
        """Validation report of the recipe (set by training; aggregates only)."""
        self.label_: dict[str, Any] = {}
        self.calibration = calibration
        self.seed = seed
        self.booster_params = {**BOOSTER_PARAMS, **(booster_params or {})}

    def fit(self, frame: pd.DataFrame, label: str = "label") -> Self:
        """Fit both models on four fifths of ``frame`` and calibrate them on the rest."""
        from lightgbm import LGBMClassifier
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x, y = self._matrix(frame), frame[label].to_numpy(dtype=np.int64)
        x_fit, x_cal, y_fit, y_cal = train_test_split(
            x, y, test_size=0.2, stratify=y, random_state=self.seed
        )
        booster = LGBMClassifier(random_state=self.seed, **self.booster_params)
        booster.fit(x_fit, y_fit)
        baseline = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=1.0, max_iter=2000),
        )
        baseline.fit(x_fit, y_fit)
        method = self.calibration
        if method == "auto":
            method = "isotonic" if len(y_cal) >= 1000 else "sigmoid"
        self.calibration_method_ = method
        self.models_ = {"booster": booster, "baseline": baseline}
        self.calibrated_ = {
            name: CalibratedClassifierCV(FrozenEstimator(m), method=method).fit(x_cal, y_cal)
            for name, m in self.models_.items()
        }
        self.n_train_ = len(y)
        self.positive_rate_ = float(y.mean())
        return self

    def _matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise LoupeError(
                f"the model needs feature(s) the snapshot lacks: {', '.join(missing)}",
                where="model features",
                fix="retrain the model on the current data (`loupe models train`)",
            )
        return frame[self.features].astype("float64")

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            from loupe.models.base import NotFittedError

            raise NotFittedError("PropensityModel is not fitted")

    def predict_proba(self, frame: pd.DataFrame, model: ModelName = "booster") -> np.ndarray:
        """Calibrated probability of the label for every row of ``frame``."""
        self._check_fitted()
        return np.asarray(self.calibrated_[model].predict_proba(self._matrix(frame))[:, 1])

    def contributions(self, frame: pd.DataFrame, model: ModelName = "booster") -> pd.DataFrame:
        """Per-row contribution of each feature to the model's log-odds, plus ``bias``.

        Rows sum to the uncalibrated log-odds.  Booster: LightGBM's TreeSHAP values.
        Baseline: coefficient × standardised (imputed) value; ``bias`` is the intercept.
        """
        self._check_fitted()
        x = self._matrix(frame)
        if model == "booster":
            values = self.models_["booster"].booster_.predict(x, pred_contrib=True)
            return pd.DataFrame(values, columns=[*self.features, "bias"], index=frame.index)
        pipe = self.models_["baseline"]
        z = pipe[:-1].transform(x)
        logit = pipe[-1]
        values = z * logit.coef_[0]
        out = pd.DataFrame(values, columns=self.features, index=frame.index)
        out["bias"] = float(logit.intercept_[0])
        return out

    def summary(self) -> pd.DataFrame:
        """The baseline's standardised coefficients and the booster's split importance."""
        self._check_fitted()
        booster, pipe = self.models_["booster"], self.models_["baseline"]
        return pd.DataFrame(
            {
                "coefficient": pipe[-1].coef_[0],
                "booster_splits": booster.booster_.feature_importance("split"),
                "booster_gain": booster.booster_.feature_importance("gain"),
            },
            index=pd.Index(self.features, name="feature"),
        )


# -- training --------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What training one label produced."""

    label: str
    version: str
    cutoffs: dict[str, Any]
    rows: dict[str, int]
    positive_rate: dict[str, float]
    metrics: dict[str, Any]
    drivers: list[dict[str, Any]]
    seconds: float
    features: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "version": self.version,
            "cutoffs": self.cutoffs,
            "rows": self.rows,
            "positive_rate": self.positive_rate,
            "metrics": self.metrics,
            "drivers": self.drivers,
            "features": len(self.features),
            "seconds": self.seconds,
        }


def propensity_settings(wh: Warehouse) -> PropensitySettings:
    return wh.settings.models.propensity  # type: ignore[no-any-return]


def configured_labels(wh: Warehouse) -> list[LabelSettings]:
    return list(wh.settings.models.labels)


def find_label(wh: Warehouse, name: str) -> LabelSettings:
    """The configured label called ``name``."""
    labels = configured_labels(wh)
    for label in labels:
        if label.name == name:
            return label
    known = ", ".join(label.name for label in labels) or "none"
    raise LoupeError(
        f"No label {name!r} is configured",
        where="[[models.labels]] in loupe.toml",
        fix=f"configured labels: {known}",
    )


def select_features(frame: pd.DataFrame, patterns: Sequence[str]) -> list[str]:
    """The numeric snapshot columns matching ``patterns`` (all of them when empty)."""
    available = numeric_features(frame)
    if not patterns:
        return available
    chosen: list[str] = []
    for pattern in patterns:
        hits = [c for c in available if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise LoupeError(
                f"feature {pattern!r} matches no numeric snapshot column",
                where="[models.propensity] features",
                fix=f"available: {', '.join(available)}",
            )
        chosen.extend(c for c in hits if c not in chosen)
    return chosen


def _check_positives(frame: pd.DataFrame, label: LabelSettings, cutoff: date, least: int) -> None:
    pos = int(frame["label"].sum())
    neg = len(frame) - pos
    if min(pos, neg) < least:
        raise LoupeError(
            f"label {label.name!r} at cutoff {cutoff} has {pos} positive and {neg} negative "
            f"customers; at least {least} of each are needed",
            where=f"label {label.name}",
            fix="use more data, a longer horizon, or lower [models.propensity] min_positives",
        )


def cutoffs_for(
    wh: Warehouse, label: LabelSettings, settings: PropensitySettings, cutoff: date | None
) -> tuple[date, list[date]]:
    """``(validation cutoff, training cutoffs newest first)``."""
    end = data_end(wh)
    c2 = cutoff or end - timedelta(days=label.horizon_days)
    check_label_window(wh, c2, label)
    gap = timedelta(days=max(settings.validation_days, label.horizon_days))
    return c2, [c2 - gap * (k + 1) for k in range(settings.train_snapshots)]


def _stack(builder: SnapshotBuilder, cutoffs: Sequence[date], label: LabelSettings) -> pd.DataFrame:
    frames = [builder.training(c, label) for c in cutoffs]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else builder.training(cutoffs[0], label)


def train_label(
    wh: Warehouse,
    label: LabelSettings,
    *,
    cutoff: date | None = None,
    builder: SnapshotBuilder | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Validate, refit and register the propensity models of one label."""
    start = time.perf_counter()
    settings = propensity_settings(wh)
    builder = builder or SnapshotBuilder(wh, DriverSpec(app_sources=tuple(settings.app_sources)))
    step = f"train {label.name}"
    c2, train_cutoffs = cutoffs_for(wh, label, settings, cutoff)
    if progress:
        progress(step, 0, 4)
    train = _stack(builder, train_cutoffs, label)
    _check_positives(train, label, train_cutoffs[0], settings.min_positives)
    valid = builder.training(c2, label)
    _check_positives(valid, label, c2, settings.min_positives)
    features = select_features(train, settings.features)
    if progress:
        progress(step, 1, 4)
    recipe = {"calibration": settings.calibration, "seed": settings.seed}
    model = PropensityModel(features, **recipe).fit(train)  # type: ignore[arg-type]
    y = valid["label"].to_numpy(dtype=np.int64)
    validation: dict[str, Any] = {}
    for name in MODELS:
        p = model.predict_proba(valid, name)
        contrib = model.contributions(valid, name)
        validation[name] = {
            **evaluate(y, p),
            "drivers": global_drivers(contrib, valid[features]),
        }
    if progress:
        progress(step, 2, 4)
    final = PropensityModel(features, **recipe).fit(valid)  # type: ignore[arg-type]
    final.validation_ = validation
    final.label_ = label.model_dump()
    if progress:
        progress(step, 3, 4)
    metrics: dict[str, Any] = {
        name: {k: validation[name][k] for k in ("auc", "pr_auc", "brier", "base_rate", "n")}
        for name in MODELS
    }
    cutoffs = {
        "train": [c.isoformat() for c in train_cutoffs],
        "validation": c2.isoformat(),
        "final": c2.isoformat(),
        "horizon_days": label.horizon_days,
    }
    record = save_model(
        wh,
        final,
        name=label.name,
        kind=KIND,
        target=label.kind,
        features=features,
        train_start=c2,
        train_end=c2 + timedelta(days=label.horizon_days - 1),
        metrics=metrics,
        params={
            "label": label.model_dump(),
            "cutoffs": cutoffs,
            "booster": model.booster_params,
            "calibration": final.calibration_method_,
            "rows": {"train": len(train), "validation": len(valid)},
        },
    )
    if progress:
        progress(step, 4, 4)
    return TrainResult(
        label=label.name,
        version=record.version,
        cutoffs=cutoffs,
        rows={"train": len(train), "validation": len(valid)},
        positive_rate={
            "train": float(train["label"].mean()),
            "validation": float(valid["label"].mean()),
        },
        metrics=metrics,
        drivers=validation["booster"]["drivers"]["features"][: settings.top_drivers * 2],
        seconds=round(time.perf_counter() - start, 3),
        features=features,
    )


def train(
    wh: Warehouse,
    labels: Sequence[str] = (),
    *,
    cutoff: date | None = None,
    progress: Progress | None = None,
) -> list[TrainResult]:
    """Train the named labels (default: every configured label)."""
    chosen = [find_label(wh, n) for n in labels] if labels else configured_labels(wh)
    if not chosen:
        raise LoupeError(
            "No labels to train", where="[[models.labels]]", fix="declare a label in loupe.toml"
        )
    settings = propensity_settings(wh)
    builder = SnapshotBuilder(wh, DriverSpec(app_sources=tuple(settings.app_sources)))
    return [train_label(wh, lb, cutoff=cutoff, builder=builder, progress=progress) for lb in chosen]


# -- scoring ---------------------------------------------------------------------------------
@dataclass
class ScoreResult:
    """One scoring run of one model."""

    model: str
    version: str
    as_of: date
    scored_at: datetime
    customers: int
    mean_score: float
    top_decile_mean: float
    merged: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def propensity_models(wh: Warehouse) -> list[ModelRecord]:
    """The newest version of every propensity model."""
    if not wh.exists("model_registry"):
        return []
    newest: dict[str, ModelRecord] = {}
    for record in list_models(wh):
        if record.kind == KIND and record.name not in newest:
            newest[record.name] = record
    return list(newest.values())


def deciles(scores: np.ndarray) -> np.ndarray:
    """Decile 1 = the tenth with the highest scores … 10 = the lowest (ties by position)."""
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return (rank * 10 // max(n, 1) + 1).astype(np.int64)


def top_drivers(contrib: pd.DataFrame, values: pd.DataFrame, k: int) -> list[str]:
    """JSON per row: the ``k`` contributions largest in absolute value, with the feature's
    value and the sign of its push."""
    c = contrib.drop(columns="bias").to_numpy()
    names = list(contrib.columns.drop("bias"))
    v = values[names].to_numpy(dtype=np.float64)
    idx = np.argsort(-np.abs(c), axis=1, kind="stable")[:, :k]
    out = []
    for i in range(len(c)):
        row = []
        for j in idx[i]:
            value = v[i, j]
            row.append(
                {
                    "feature": names[j],
                    "value": None if not np.isfinite(value) else round(float(value), 4),
                    "contribution": round(float(c[i, j]), 4),
                }
            )
        out.append(json.dumps(row, ensure_ascii=False))
    return out


def score_model(
    wh: Warehouse,
    model: str,
    *,
    as_of: date | None = None,
    builder: SnapshotBuilder | None = None,
    progress: Progress | None = None,
) -> ScoreResult:
    """Score every customer of the model's population as of ``as_of`` (default: data end).

    Appends to ``model_scores`` and sets ``score_<model>`` in ``customer_features``.
    """
    record, obj = load_model(wh, model)
    if record.kind != KIND or not isinstance(obj, PropensityModel):
        raise LoupeError(
            f"model {record.name!r} is a {record.kind!r} model, not a propensity model",
            where="model_registry",
            fix="score it with the command of its own stage",
        )
    settings = propensity_settings(wh)
    builder = builder or SnapshotBuilder(wh, DriverSpec(app_sources=tuple(settings.app_sources)))
    day = as_of or data_end(wh)
    step = f"score {record.name}"
    if progress:
        progress(step, 0, 3)
    frame = builder.features(day)
    if getattr(obj, "label_", {}).get("kind") == "churn":
        frame = frame[frame["frequency"] > 0].reset_index(drop=True)
    if frame.empty:
        raise LoupeError(
            f"no customers to score as of {day}", where=record.name, fix="check --as-of"
        )
    p = obj.predict_proba(frame)
    contrib = obj.contributions(frame)
    if progress:
        progress(step, 1, 3)
    at = utcnow()
    rows = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str),
            "model": record.name,
            "version": record.version,
            "score": p,
            "decile": deciles(p),
            "drivers": top_drivers(contrib, frame, settings.top_drivers),
            "scored_at": at,
        }
    )
    schema = s.schema(s.MODEL_SCORES)
    wh.create_empty(SCORES, schema)
    wh.append(SCORES, ibis.memtable(rows[list(schema.names)], schema=schema), count=False)
    if progress:
        progress(step, 2, 3)
    merged = False
    if wh.exists(FEATURES):
        merge_into_features(wh, rows[["customer_id"]].assign(**{f"score_{record.name}": p}))
        merged = True
    if progress:
        progress(step, 3, 3)
    top = p[rows["decile"].to_numpy() == 1]
    return ScoreResult(
        model=record.name,
        version=record.version,
        as_of=day,
        scored_at=at,
        customers=len(rows),
        mean_score=round(float(p.mean()), 6),
        top_decile_mean=round(float(top.mean()), 6) if len(top) else 0.0,
        merged=merged,
    )


def score(
    wh: Warehouse,
    models: Sequence[str] = (),
    *,
    as_of: date | None = None,
    progress: Progress | None = None,
) -> list[ScoreResult]:
    """Score the named models (default: every propensity model)."""
    names = list(models) or [r.name for r in propensity_models(wh)]
    if not names:
        raise LoupeError(
            "No propensity model is trained yet",
            where="model_registry",
            fix="train one with `loupe models train`",
        )
    for name in names:
        get_model(wh, name)  # unknown names fail before any work
    settings = propensity_settings(wh)
    builder = SnapshotBuilder(wh, DriverSpec(app_sources=tuple(settings.app_sources)))
    return [score_model(wh, n, as_of=as_of, builder=builder, progress=progress) for n in names]


def run_models_propensity(wh: Warehouse, progress: Progress | None = None) -> dict[str, Any]:
    """The ``loupe run`` step: train each configured label that has no model yet, then score
    every label's newest model.  A label that cannot be trained (too little data) is
    reported under ``skipped`` instead of stopping the run."""
    settings = propensity_settings(wh)
    builder = SnapshotBuilder(wh, DriverSpec(app_sources=tuple(settings.app_sources)))
    have = {r.name for r in propensity_models(wh)}
    trained, scored, skipped = [], [], {}
    for label in configured_labels(wh):
        if label.name not in have:
            try:
                result = train_label(wh, label, builder=builder, progress=progress)
            except LoupeError as exc:
                skipped[label.name] = exc.what
                continue
            trained.append(result.to_dict())
        scored.append(score_model(wh, label.name, builder=builder, progress=progress).to_dict())
    return {"trained": trained, "scored": scored, "skipped": skipped}
