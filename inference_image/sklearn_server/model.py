"""Model loading: find the one model file, load it as its format demands, check that it can answer.

``model.joblib`` is a pickle: loading it runs whatever code it names, so only serve files you trust.
``model.skops`` is the safe alternative: skops rebuilds the object without unpickling and refuses types it
does not trust. This server trusts what skops trusts by default, plus *classes* (never functions) defined
in scikit-learn and numpy, plus whatever INFERENCE_SKOPS_TRUSTED_TYPES lists.
"""

from __future__ import annotations

import importlib
import json
import logging
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sklearn_server.config import MODEL_FILENAMES, MODEL_METADATA_FILENAME
from sklearn_server.errors import BadRequestError, ModelFailedError, ModelLoadError

logger = logging.getLogger(__name__)

_LIBRARY_PACKAGES = ("sklearn", "numpy")
_MAX_COMPLAINT_CHARS = 300


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A loaded estimator and the one method the server calls on it."""

    estimator: Any
    path: Path
    method: str
    n_features: int | None
    """Features per row the estimator was fitted on (``n_features_in_``), None when it does not say."""

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Run the configured method on a 2-D array; one output row per input row.

        Raises:
            BadRequestError: the estimator raised ValueError: it refuses this input (NaN, wrong shape, ...).
            ModelFailedError: it raised anything else, or answered with the wrong number of rows.
        """
        try:
            result = np.asarray(getattr(self.estimator, self.method)(rows))
        except ValueError as error:
            complaint = str(error).strip().split("\n", 1)[0][:_MAX_COMPLAINT_CHARS]
            raise BadRequestError(f"the model rejected the input: {complaint}") from error
        except Exception as error:
            raise ModelFailedError() from error
        if result.ndim == 0 or result.shape[0] != rows.shape[0]:
            raise ModelFailedError() from RuntimeError(
                f"{self.method} returned shape {result.shape} for {rows.shape[0]} rows"
            )
        return result


def find_model_file(model_dir: Path) -> Path:
    """The single model file in ``model_dir``.

    Raises:
        ModelLoadError: the directory is missing, holds no model file, or holds both kinds.
    """
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist or is not a directory")
    present = []
    for name in MODEL_FILENAMES:
        path = model_dir / name
        if path.is_file():
            present.append(path)
        elif path.is_symlink() or path.exists():
            raise ModelLoadError(f"{path} is {_describe_non_file(path)}, not a regular file")
    if not present:
        found = sorted(entry.name for entry in model_dir.iterdir())[:20]
        raise ModelLoadError(
            f"no model file in {model_dir}: expected one of {', '.join(MODEL_FILENAMES)}, "
            f"found {', '.join(found) or 'nothing'}"
        )
    if len(present) > 1:
        raise ModelLoadError(
            f"ambiguous model in {model_dir}: both {' and '.join(p.name for p in present)} are present; "
            "keep exactly one"
        )
    return present[0]


def load_model(
    path: Path, *, method: str = "predict", skops_trusted_types: tuple[str, ...] = ()
) -> LoadedModel:
    """Load ``path`` (model.joblib or model.skops) and check it has ``method``.

    Raises:
        ModelLoadError: the file cannot be loaded, or the estimator lacks ``method``; the message names the
            file and the reason.
    """
    try:
        if path.suffix == ".skops":
            estimator = _load_skops(path, skops_trusted_types)
        else:
            import joblib

            estimator = joblib.load(path)
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(f"{path} cannot be loaded: {_describe_load_error(error)}") from error

    if not callable(getattr(estimator, method, None)):
        raise ModelLoadError(
            f"{path} holds a {type(estimator).__name__}, which has no {method} method "
            "(INFERENCE_PREDICT_METHOD chooses predict or predict_proba)"
        )
    metadata = _read_metadata(path.parent / MODEL_METADATA_FILENAME)
    _warn_on_version_mismatch(metadata, path)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        n_features = metadata.get("n_features_in")
    return LoadedModel(
        estimator=estimator,
        path=path,
        method=method,
        n_features=int(n_features) if isinstance(n_features, int | np.integer) else None,
    )


def _describe_non_file(path: Path) -> str:
    if path.is_symlink():
        target = path.readlink()
        if not path.exists():
            return f"a symbolic link to {target}, which does not exist"
        kind = "a directory" if path.is_dir() else "not a regular file"
        return f"a symbolic link to {target}, which is {kind}"
    return "a directory" if path.is_dir() else "a special file (a device, socket or pipe)"


def _describe_load_error(error: Exception) -> str:
    """``EOFError: `` says nothing: name what an empty message means for the usual suspects."""
    detail = str(error).strip()[:_MAX_COMPLAINT_CHARS]
    if isinstance(error, EOFError):
        return "the file ends early: it is truncated or empty (EOFError)"
    if isinstance(error, pickle.UnpicklingError | struct.error) or "EOF" in detail:
        return f"it is truncated or corrupt ({type(error).__name__}: {detail or 'no detail'})"
    if not detail:
        return f"{type(error).__name__} with no message: the file is probably corrupt"
    return f"{type(error).__name__}: {detail}"


def _load_skops(path: Path, extra_trusted: tuple[str, ...]) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    trusted = [name for name in untrusted if name in extra_trusted or _is_library_class(name)]
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise ModelLoadError(
            f"{path} holds types skops does not trust: {', '.join(refused)}; "
            "if you trust them, list them in INFERENCE_SKOPS_TRUSTED_TYPES (comma-separated)"
        )
    return skops.io.load(path, trusted=trusted)


def _is_library_class(name: str) -> bool:
    """Whether ``name`` is a class defined in scikit-learn or numpy (functions can do anything: never)."""
    if name.split(".", 1)[0] not in _LIBRARY_PACKAGES:
        return False
    module_name, _, attribute = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(found, type)


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        logger.warning("%s cannot be read (%s); skipping the version check", path, error)
        return {}
    try:
        metadata = json.loads(text)
    except ValueError as error:
        logger.warning("%s is not valid JSON (%s); skipping the version check", path, error)
        return {}
    if not isinstance(metadata, dict):
        logger.warning("%s does not hold a JSON object; skipping the version check", path)
        return {}
    return metadata


def _warn_on_version_mismatch(metadata: dict[str, Any], model_path: Path) -> None:
    import sklearn

    trained_with = metadata.get("sklearn_version")
    if trained_with and str(trained_with) != sklearn.__version__:
        logger.warning(
            "%s was trained with scikit-learn %s but this server runs scikit-learn %s: predictions may "
            "differ or fail; pin scikit-learn==%s in the image or retrain",
            model_path,
            trained_with,
            sklearn.__version__,
            trained_with,
        )
