"""The trained model in /opt/ml/model, exactly as ``pack_model()`` lays out model.tar.gz: ``model.joblib``
and ``model-metadata.json`` with the same fields.

SageMaker tars /opt/ml/model into model.tar.gz after the job, so what is written here is what ``serve``
unpacks. The fields are the ones ml_inference_cdk/constructs/model_artifact.py writes (the image cannot import
the library); tests/training/test_model_output.py checks that the two write the same metadata.
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path
from typing import Any

from sklearn_server.config import MODEL_FILENAMES, MODEL_METADATA_FILENAME

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
CODE_DIRECTORY = "code"


def model_metadata(estimator: Any, serialization: str = "joblib") -> dict[str, Any]:
    """What pack_model() records about ``estimator``: versions, class, shape, classes, DataFrame columns."""
    import sklearn

    from sklearn_server.loaders.dataframe import column_kinds

    metadata: dict[str, Any] = {
        "format": serialization,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "n_features_in": int(estimator.n_features_in_) if hasattr(estimator, "n_features_in_") else None,
        "classes": _classes(estimator),
    }
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        names = [str(name) for name in names]
        kinds = column_kinds(estimator, names)
        metadata["feature_names"] = names
        metadata["feature_dtypes"] = {
            name: kind for name, kind in zip(names, kinds, strict=True) if kind is not None
        }
    return metadata


def write_model(estimator: Any, model_dir: Path) -> Path:
    """Write ``model.joblib`` and ``model-metadata.json`` into ``model_dir``; the model file's path."""
    import joblib

    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / MODEL_FILE
    joblib.dump(estimator, path)
    write_metadata(estimator, model_dir)
    return path


def write_metadata(estimator: Any, model_dir: Path) -> None:
    (model_dir / MODEL_METADATA_FILENAME).write_text(json.dumps(model_metadata(estimator), indent=2))


def check_model_dir(model_dir: Path) -> str:
    """After a user's script: the model file ``serve`` will load, or ``code/`` (user inference code).

    A ``model.joblib`` without ``model-metadata.json`` gets one, as pack_model() would write it, so the
    server can warn about a scikit-learn version mismatch and decode DataFrame columns by their kind.

    Raises:
        ValueError: the script wrote no model file (or several); the message lists what serve accepts.
    """
    present = [name for name in MODEL_FILENAMES if (model_dir / name).is_file()]
    has_code = (model_dir / CODE_DIRECTORY).is_dir()
    if len(present) > 1:
        raise ValueError(
            f"the script wrote {', '.join(present)} to {model_dir}: serve loads exactly one model file; "
            "keep one"
        )
    if not present:
        if has_code:
            return CODE_DIRECTORY
        raise ValueError(
            f"the script wrote no model to {model_dir} (SM_MODEL_DIR): write one of "
            f"{', '.join(MODEL_FILENAMES)} "
            f"(e.g. joblib.dump(model, os.path.join(os.environ['SM_MODEL_DIR'], 'model.joblib'))), or "
            f"inference code in {CODE_DIRECTORY}/"
        )
    if present == [MODEL_FILE] and not (model_dir / MODEL_METADATA_FILENAME).exists():
        _add_metadata(model_dir)
    return present[0]


def _add_metadata(model_dir: Path) -> None:
    import joblib

    try:
        estimator = joblib.load(model_dir / MODEL_FILE)
        write_metadata(estimator, model_dir)
    except Exception as error:  # the user's object: serve loads it anyway, the metadata only helps
        logger.warning(
            "model.joblib was written without %s, and none could be added: %s", MODEL_METADATA_FILENAME, error
        )
        return
    logger.info("added %s beside the script's model.joblib", MODEL_METADATA_FILENAME)


def _classes(estimator: Any) -> list[Any] | None:
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return None
    if isinstance(classes, list):
        return [[_plain(c) for c in part] for part in classes]
    return [_plain(c) for c in classes]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
