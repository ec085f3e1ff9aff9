"""The model a serving app answers with: loaded from a model folder, swapped when it changes.

Following the folder (the default), the app serves its newest version and moves
to another whenever the newest changes — a new one published, or the newest
removed (withdrawing a bad model). Pinned (``version``), it serves that version
only, so a new model rolls out by a new recipe and rolls back with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.model_folder import ModelVersion, find_version, newest_version

log = logging.getLogger(__name__)


class BadInstances(ValueError):
    """The request's instances cannot be predicted; the message says why and where."""


@dataclass(frozen=True)
class Loaded:
    """A loaded model version: its booster, metadata and feature count."""

    version: str
    booster: Any
    metadata: dict[str, Any]
    features: int
    loaded_at: float = field(default_factory=time.time)


def cuda_available() -> bool:
    """True where a GPU is visible and XGBoost was built with CUDA."""
    if not os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return False
    import xgboost

    return bool(xgboost.build_info().get("USE_CUDA"))


class ServedModel:
    """The current model of one model folder; thread-safe."""

    def __init__(self, folder: Path, version: str | None = None, device: str = "cpu") -> None:
        self.folder = folder
        self.pinned = version
        self.device = "cuda" if device == "cuda" and cuda_available() else "cpu"
        if device == "cuda" and self.device != "cuda":
            log.warning("device cuda asked for but no GPU or CUDA build of XGBoost: using cpu")
        self.current: Loaded | None = None
        self.last_error: str | None = None
        self._failed: dict[str, float] = {}  # versions that would not load: their mtime
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Load the version to serve if it is not the current one; True if it changed.
        A version that fails to load is logged, kept out until its folder changes, and
        the current model goes on serving."""
        with self._lock:
            wanted = self._wanted()
            if wanted is None or (self.current and self.current.version == wanted.name):
                return False
            stamp = _mtime(wanted)
            if self._failed.get(wanted.name) == stamp:
                return False
            try:
                loaded = self._load(wanted)
            except Exception as exc:  # a corrupt or foreign file must not stop serving
                self._failed[wanted.name] = stamp
                self.last_error = f"version {wanted.name} did not load: {exc}"
                log.error("model folder %s: %s", self.folder, self.last_error)
                return False
            previous = self.current.version if self.current else None
            self.current, self.last_error = loaded, None
            log.info("serving model version %s (was %s)", loaded.version, previous)
            return True

    def predict(self, instances: Any) -> tuple[list[float], str]:
        """Predictions for ``instances`` (a list of rows of numbers or nulls, null being a
        missing value) and the version that made them. BadInstances names what is wrong;
        LookupError if no model is loaded yet."""
        import numpy as np

        loaded = self.current
        if loaded is None:
            raise LookupError(self.waiting_reason())
        rows = check_instances(instances, loaded.features)
        matrix = np.array(rows, dtype=np.float32)  # None becomes NaN: missing
        predictions = loaded.booster.inplace_predict(matrix)
        return [float(value) for value in np.asarray(predictions).ravel()], loaded.version

    def waiting_reason(self) -> str:
        """Why no model is served yet."""
        which = f"version {self.pinned}" if self.pinned else "a model version"
        reason = f"no model loaded yet: waiting for {which} in {self.folder}"
        return f"{reason} ({self.last_error})" if self.last_error else reason

    def description(self) -> dict[str, Any]:
        """What is served: version, metadata, features, device, folder, mode, last error."""
        loaded = self.current
        return {
            "model_version": loaded.version if loaded else None,
            "loaded_at": _iso(loaded.loaded_at) if loaded else None,
            "features": loaded.features if loaded else None,
            "metadata": loaded.metadata if loaded else None,
            "device": self.device,
            "model_dir": str(self.folder),
            "follows": "pinned version" if self.pinned else "newest version",
            "last_error": self.last_error,
        }

    def _wanted(self) -> ModelVersion | None:
        if self.pinned:
            return find_version(self.folder, self.pinned)
        return newest_version(self.folder)

    def _load(self, version: ModelVersion) -> Loaded:
        import xgboost

        metadata = version.metadata()
        booster = xgboost.Booster(model_file=str(version.model_file))
        booster.set_param({"device": self.device})
        features = int(booster.num_features())
        declared = metadata.get("features", {}).get("count")
        if declared is not None and declared != features:
            raise ValueError(f"metadata says {declared} features, the model has {features}")
        return Loaded(version.name, booster, metadata, features)


def check_instances(instances: Any, features: int) -> list[list[float | None]]:
    """``instances`` as rows of ``features`` numbers (or null); BadInstances naming the
    first wrong place otherwise."""
    example = ", ".join(["0.5"] * min(features, 3)) + (", ..." if features > 3 else "")
    if not isinstance(instances, list) or not instances:
        raise BadInstances(
            f"'instances' must be a non-empty list of rows, e.g. {{\"instances\": [[{example}]]}}"
        )
    for i, row in enumerate(instances):
        if not isinstance(row, list):
            raise BadInstances(f"instances[{i}] must be a list of {features} numbers")
        if len(row) != features:
            raise BadInstances(
                f"instances[{i}] has {len(row)} values; the model takes {features} features"
            )
        for j, value in enumerate(row):
            if value is not None and not _is_number(value):
                raise BadInstances(
                    f"instances[{i}][{j}] is {_shown(value)}: values must be finite numbers "
                    "up to 3.4e38 in size (null for a missing value)"
                )
    return instances


FLOAT32_MAX = 3.4028234e38


def _is_number(value: Any) -> bool:
    """A finite number a float32 holds (JSON's true and false are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= FLOAT32_MAX  # False for NaN; ints of any size compare exactly


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"the text {value!r}"
    return text if len(text) <= 40 else text[:39] + "…"


def _mtime(version: ModelVersion) -> float:
    try:
        return version.model_file.stat().st_mtime
    except OSError:
        return 0.0


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
