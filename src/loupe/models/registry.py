"""The model registry: every trained model version, its artefact, and how it was made.

A trained model is pickled to ``<project>/models/<name>/<version>.pkl``; one row in
``model_registry`` records its features, training window, metrics, parameters, the versions of
the libraries that made it and the SHA-256 of the artefact, so a score can always be traced back
to the exact model (``model_scores.version``) and an artefact that changed on disk is refused.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import ibis

from loupe.errors import LoupeError
from loupe.jsonable import json_ready
from loupe.warehouse import Warehouse
from loupe.warehouse import schemas as s

REGISTRY = "model_registry"

#: Libraries whose versions are recorded with every model (the ones installed, at least).
LIBRARIES = (
    "loupe",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "xgboost-cpu",
    "statsforecast",
    "ibis-framework",
    "duckdb",
)


@dataclass(frozen=True)
class ModelRecord:
    """One row of ``model_registry``, with the JSON columns decoded."""

    name: str
    version: str
    kind: str
    target: str
    trained_at: datetime
    train_start: date | None
    train_end: date | None
    features: list[str]
    metrics: dict[str, Any]
    params: dict[str, Any]
    libraries: dict[str, str]
    content_hash: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "target": self.target,
            "trained_at": self.trained_at,
            "train_start": self.train_start,
            "train_end": self.train_end,
            "features": self.features,
            "metrics": self.metrics,
            "params": self.params,
            "libraries": self.libraries,
            "content_hash": self.content_hash,
            "path": self.path,
        }


def library_versions() -> dict[str, str]:
    found = {}
    for lib in LIBRARIES:
        try:
            found[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return found


def _dumps(value: Any) -> str:
    return json.dumps(json_ready(value), ensure_ascii=False, sort_keys=True, default=str)


def save_model(
    wh: Warehouse,
    obj: Any,
    *,
    name: str,
    kind: str,
    target: str = "",
    features: list[str] | None = None,
    train_start: date | None = None,
    train_end: date | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> ModelRecord:
    """Pickle ``obj`` under the project and register it as a new version of ``name``."""
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(blob).hexdigest()
    trained_at = datetime.now(UTC).replace(tzinfo=None)
    version = f"{name}@{trained_at:%Y%m%dT%H%M%S}-{digest[:8]}"
    rel = Path("models") / name / f"{trained_at:%Y%m%dT%H%M%S}-{digest[:8]}.pkl"
    path = wh.settings.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    record = ModelRecord(
        name=name,
        version=version,
        kind=kind,
        target=target,
        trained_at=trained_at,
        train_start=train_start,
        train_end=train_end,
        features=list(features or []),
        metrics=dict(metrics or {}),
        params=dict(params or {}),
        libraries=library_versions(),
        content_hash=digest,
        path=rel.as_posix(),
    )
    row = {
        **record.to_dict(),
        "features": _dumps(record.features),
        "metrics": _dumps(record.metrics),
        "params": _dumps(record.params),
        "libraries": _dumps(record.libraries),
    }
    schema = s.schema(s.MODEL_REGISTRY)
    wh.append(REGISTRY, ibis.memtable({k: [row[k]] for k in schema.names}, schema=schema))
    return record


def _record(row: dict[str, Any]) -> ModelRecord:
    def day(v: Any) -> date | None:
        if v is None or v != v:  # None or NaT
            return None
        return v.date() if isinstance(v, datetime) else v

    return ModelRecord(
        name=row["name"],
        version=row["version"],
        kind=row["kind"],
        target=row["target"] or "",
        trained_at=row["trained_at"].to_pydatetime()
        if hasattr(row["trained_at"], "to_pydatetime")
        else row["trained_at"],
        train_start=day(row["train_start"]),
        train_end=day(row["train_end"]),
        features=json.loads(row["features"] or "[]"),
        metrics=json.loads(row["metrics"] or "{}"),
        params=json.loads(row["params"] or "{}"),
        libraries=json.loads(row["libraries"] or "{}"),
        content_hash=row["content_hash"],
        path=row["path"],
    )


def list_models(wh: Warehouse, name: str | None = None) -> list[ModelRecord]:
    """Every registered version (of ``name``, if given), newest first."""
    t = wh.table(REGISTRY)
    if name is not None:
        t = t.filter(t.name == name)
    df = wh.to_pandas(t.order_by([ibis.desc("trained_at"), ibis.desc("version")]))
    return [_record(r) for r in df.to_dict("records")]


def get_model(wh: Warehouse, name_or_version: str) -> ModelRecord:
    """The newest version of a model name, or one exact version (``name@…``)."""
    name = name_or_version.split("@", 1)[0]
    versions = list_models(wh, name)
    if "@" in name_or_version:
        versions = [r for r in versions if r.version == name_or_version]
    if not versions:
        known = sorted({r.name for r in list_models(wh)})
        raise LoupeError(
            f"No trained model {name_or_version!r}",
            where="model_registry",
            fix=(
                f"trained models: {', '.join(known)}"
                if known
                else "train one first with `loupe models train`"
            ),
        )
    return versions[0]


def load_model(wh: Warehouse, name_or_version: str) -> tuple[ModelRecord, Any]:
    """The record and the unpickled artefact, after checking the artefact's hash."""
    record = get_model(wh, name_or_version)
    path = wh.settings.root / record.path
    if not path.exists():
        raise LoupeError(
            f"The artefact of model {record.version} is missing",
            where=str(path),
            fix="retrain the model with `loupe models train`",
        )
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != record.content_hash:
        raise LoupeError(
            f"The artefact of model {record.version} changed since it was trained",
            where=str(path),
            fix="retrain the model; never edit model files by hand",
        )
    return record, pickle.loads(blob)  # our own artefact, hash checked above
