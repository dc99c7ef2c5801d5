"""scikit-learn models: ``model.joblib`` or ``model.skops``, an estimator or Pipeline.

A model fitted on a pandas DataFrame (it has ``feature_names_in_``) is served by ``loaders/dataframe.py``.

``model.joblib`` is a pickle: loading it runs whatever code it names, so only serve files you trust.
``model.skops`` is the safe alternative: skops rebuilds the object without unpickling and refuses types it
does not trust. This server trusts what skops trusts by default, plus *classes* (never functions) defined
in scikit-learn and numpy, plus whatever INFERENCE_SKOPS_TRUSTED_TYPES lists.

The numeric fast path: the body is decoded straight to a float64 array by ``codecs`` and handed to the
estimator's method; nothing else stands between the bytes and the model.
"""

from __future__ import annotations

import importlib
import json
import logging
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sklearn_server import codecs
from sklearn_server.config import MODEL_METADATA_FILENAME, ServerConfig
from sklearn_server.errors import ModelLoadError
from sklearn_server.loaders.calling import checked
from sklearn_server.model import LoadedModel, ModelKind

logger = logging.getLogger(__name__)

FILENAMES = ("model.joblib", "model.skops")
_LIBRARY_PACKAGES = ("sklearn", "numpy")
_MAX_COMPLAINT_CHARS = 300


def load(path: Path, config: ServerConfig) -> LoadedModel:
    """Load ``path``: on the numeric fast path, or (fitted on a DataFrame) as ``loaders/dataframe.py`` says.

    Raises:
        ModelLoadError: the file cannot be loaded, or the estimator lacks the configured method; the
            message names the file and the reason.
    """
    estimator = load_estimator(path, config.skops_trusted_types)
    method = config.predict_method
    if not callable(getattr(estimator, method, None)):
        raise ModelLoadError(
            f"{path} holds a {type(estimator).__name__}, which has no {method} method "
            "(INFERENCE_PREDICT_METHOD chooses predict or predict_proba)"
        )
    metadata = read_metadata(path.parent / MODEL_METADATA_FILENAME)
    _warn_on_version_mismatch(metadata, path)
    if getattr(estimator, "feature_names_in_", None) is not None:  # fitted on a DataFrame
        from sklearn_server.loaders import dataframe  # pandas is imported for these models only

        schema = dataframe.schema_of(estimator, metadata, path)
        return dataframe.dataframe_model(path, estimator, method, schema, config=config)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        n_features = metadata.get("n_features_in")
    width = int(n_features) if isinstance(n_features, int | np.integer) else None
    return numeric_model(
        path,
        getattr(estimator, method),
        kind=f"scikit-learn {type(estimator).__name__}",
        method=method,
        n_features=width,
        config=config,
        native=estimator,
    )


def numeric_model(
    path: Path,
    predict: Callable[[Any], Any],
    *,
    kind: str,
    method: str,
    n_features: int | None,
    config: ServerConfig,
    native: Any = None,
    details: dict[str, Any] | None = None,
) -> LoadedModel:
    """A model that takes rows of numbers: the codecs' decoders and encoders around ``predict``.

    ``predict`` goes through ``calling.checked``: a ValueError about the input is a 400, anything else a 500.
    Every kind fed float rows (scikit-learn, XGBoost, LightGBM, ONNX) is built here.
    """
    return LoadedModel(
        path=path,
        kind=kind,
        method=method,
        n_features=n_features,
        decode=codecs.model_decoder(n_features),
        predict=checked(predict, f"{kind}.{method}"),
        encode=codecs.model_encoder(config.json_response),
        join=codecs.join_rows,
        native=native,
        details=details or {},
    )


def load_estimator(path: Path, skops_trusted_types: tuple[str, ...] = ()) -> Any:
    """The object in ``model.joblib`` or ``model.skops``.

    Raises:
        ModelLoadError: the file cannot be loaded; the message names the file and the reason.
    """
    try:
        if path.suffix == ".skops":
            return _load_skops(path, skops_trusted_types)
        import joblib

        return joblib.load(path)
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(f"{path} cannot be loaded: {_describe_load_error(error)}") from error


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


def read_metadata(path: Path) -> dict[str, Any]:
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


KIND = ModelKind("scikit-learn", FILENAMES, load)
