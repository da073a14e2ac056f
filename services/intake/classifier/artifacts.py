"""Versioned model artifacts (`services/intake/models/`): `classifier-<version>.joblib` (the
model and its tuned parameters), `classifier-<version>.json` (its training and held-out figures),
and `current`, the promoted version's name. Intake loads the version `INTAKE_CLASSIFIER_VERSION`
names, else the promoted one, else classifies on evidence alone."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import joblib

from .core import Classifier, Params
from .model import LinearModel

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
VERSION_ENV, DIR_ENV = "INTAKE_CLASSIFIER_VERSION", "INTAKE_MODELS_DIR"
POINTER = "current"

_lock = threading.Lock()
_loaded: dict[tuple[str, str], Classifier] = {}


def models_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or MODELS_DIR)


def artifact_path(version: str, directory: Path | None = None) -> Path:
    return (directory or models_dir()) / f"classifier-{version}.joblib"


def metrics_path(version: str, directory: Path | None = None) -> Path:
    return (directory or models_dir()) / f"classifier-{version}.json"


def current_version(directory: Path | None = None) -> str:
    pointer = (directory or models_dir()) / POINTER
    return pointer.read_text(encoding="utf-8").strip() if pointer.exists() else ""


def promote(version: str, directory: Path | None = None) -> None:
    d = directory or models_dir()
    tmp = d / f".{POINTER}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    tmp.replace(d / POINTER)


def save(version: str, model: LinearModel, urgency: LinearModel | None, params: Params, metrics: dict,
         directory: Path | None = None) -> Path:
    d = directory or models_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = artifact_path(version, d)
    joblib.dump({"version": version, "model": model.to_dict(), "params": params.to_dict(),
                 "urgency": urgency.to_dict() if urgency is not None else None}, path, compress=3)
    metrics_path(version, d).write_text(json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def load(version: str = "", directory: Path | None = None) -> Classifier:
    """The classifier of `version` (default: the environment's, else the promoted one)."""
    d = directory or models_dir()
    version = version or os.environ.get(VERSION_ENV, "") or current_version(d)
    if not version:
        return Classifier(None)
    path = artifact_path(version, d)
    if not path.exists():
        raise FileNotFoundError(f"classifier version {version!r}: no {path}")
    doc = joblib.load(path)
    urgency = LinearModel.from_dict(doc["urgency"]) if doc.get("urgency") else None
    return Classifier(LinearModel.from_dict(doc["model"]), Params.from_dict(doc["params"]), doc["version"], urgency)


def metrics_of(version: str, directory: Path | None = None) -> dict:
    path = metrics_path(version, directory)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def default() -> Classifier:
    """The process's classifier, loaded once (the environment's version, else the promoted one)."""
    key = (str(models_dir()), os.environ.get(VERSION_ENV, ""))
    with _lock:
        if key not in _loaded:
            _loaded[key] = load()
        return _loaded[key]
