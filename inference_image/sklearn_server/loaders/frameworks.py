"""What the XGBoost, LightGBM and ONNX loaders share: importing their library, the numeric model around it.

Their libraries are optional: the image's ``sklearn`` flavour leaves them out (inference_image/Dockerfile,
build argument FLAVOUR). A model file whose library is missing is a start-up error that names the file,
the library and the flavour that has it, never an ImportError traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import numpy as np

from sklearn_server.errors import ModelLoadError
from sklearn_server.loaders.calling import complaint

FULL_FLAVOUR: Final = "full"
"""The image flavour with xgboost, lightgbm and onnxruntime (the Dockerfile's FLAVOUR build argument)."""


def require(module: str, path: Path, framework: str) -> ModuleType:
    """Import ``module`` for the model file ``path``.

    Raises:
        ModelLoadError: the library is not installed; the message names the file, the library and the image
            flavour that includes it.
    """
    try:
        return importlib.import_module(module)
    except OSError as error:  # installed, but a shared library it links is missing (libgomp1 for lightgbm)
        raise ModelLoadError(
            f"{path} is {framework} model, and {module} is installed but cannot be imported: "
            f"{complaint(error)}"
        ) from error
    except ImportError as error:
        raise ModelLoadError(
            f"{path} is {framework} model, but {module} is not installed in this image "
            f"({complaint(error)}): build the image with --build-arg FLAVOUR={FULL_FLAVOUR} "
            f"(scripts/build-image.sh: FLAVOUR={FULL_FLAVOUR}), which includes xgboost, lightgbm and "
            "onnxruntime"
        ) from error


def two_classes(predict: Callable[[Any], Any]) -> Callable[[Any], np.ndarray]:
    """``predict`` answering P(class 1) per row, turned into rows of [P(class 0), P(class 1)], as
    scikit-learn's predict_proba answers for two classes."""

    def predict_proba(data: Any) -> np.ndarray:
        positive = np.asarray(predict(data), dtype=np.float64).reshape(-1)
        return np.column_stack((1.0 - positive, positive))

    return predict_proba


def refuse_predict_proba(path: Path, objective: str, allowed: str) -> ModelLoadError:
    """The start-up error for INFERENCE_PREDICT_METHOD=predict_proba on a model without probabilities."""
    return ModelLoadError(
        f"{path}: INFERENCE_PREDICT_METHOD=predict_proba needs a classifier whose output is probabilities "
        f"({allowed}); this model's objective is {objective!r}: use INFERENCE_PREDICT_METHOD=predict"
    )
