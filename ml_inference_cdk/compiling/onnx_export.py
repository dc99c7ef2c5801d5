"""One ONNX converter per library: skl2onnx for scikit-learn, onnxmltools for XGBoost and LightGBM.

Every export has one float32 input ``X`` of shape [None, n_features]. A classifier's outputs are a label
tensor and a [rows, classes] float32 probabilities tensor (ZipMap disabled), the shapes the verification and
the server read. The converters are imported on first use: they come with the ``compile`` extra.
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

INPUT_NAME: Final = "X"
INSTALL_HINT: Final = "pip install 'ml-inference-cdk[compile]'"

_ONNXMLTOOLS_LIBRARIES: Final = ("xgboost", "lightgbm")
_MISSING_ERRORS: Final = frozenset({"MissingShapeCalculator", "MissingConverter"})
_MISSING_CLASS: Final = re.compile(r"<class '([^']+)'>")


class ConversionError(Exception):
    """The converter could not convert the estimator; the message says what failed, in one sentence."""


@dataclass(frozen=True)
class OnnxExport:
    """A converted model and the converter that wrote it."""

    model: bytes
    """The ONNX model's bytes, as model.onnx holds them."""
    converter: str
    """``<library> <version>``, e.g. ``skl2onnx 1.20.0``."""


def require(module: str) -> ModuleType:
    """Import one of the compile extra's libraries, or say how to install it.

    Raises:
        ImportError: the library is not installed; the message names the extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"compile='onnx' needs {module}, which is not installed here: {INSTALL_HINT}"
        ) from error


def qualified_name(estimator: Any) -> str:
    """``sklearn.linear_model._logistic.LogisticRegression``: the class as the reason names it."""
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


def converter_name(estimator: Any) -> str:
    """The converter ``export_onnx`` uses for ``estimator``, with its version (imports it).

    Raises:
        ImportError: the converter is not installed.
    """
    library = "onnxmltools" if _library(estimator) in _ONNXMLTOOLS_LIBRARIES else "skl2onnx"
    return f"{library} {require(library).__version__}"


def export_onnx(estimator: Any, n_features: int) -> OnnxExport:
    """Convert a fitted estimator to ONNX with one float32 input ``X`` of ``n_features`` columns.

    Raises:
        ConversionError: the converter refused the estimator, or failed while converting it.
        ImportError: the converter is not installed.
    """
    converter = converter_name(estimator)
    library = _library(estimator)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # converters' own deprecation notices are not the user's concern
            if library == "xgboost":
                model = _from_xgboost(estimator, n_features)
            elif library == "lightgbm":
                model = _from_lightgbm(estimator, n_features)
            else:
                model = _from_sklearn(estimator, n_features)
    except ImportError:
        raise
    except Exception as error:  # converters raise anything from NameError to RuntimeError
        raise ConversionError(_reason(converter, estimator, error)) from error
    _unpin_output_shapes(model)
    return OnnxExport(model=model.SerializeToString(), converter=converter)


def _library(estimator: Any) -> str:
    return type(estimator).__module__.split(".")[0]


def _from_sklearn(estimator: Any, n_features: int) -> Any:
    import numpy as np

    skl2onnx = require("skl2onnx")
    example = np.zeros((1, n_features), dtype=np.float32)
    # ZipMap turns probabilities into a list of dicts; off, they are a [rows, classes] tensor.
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    return skl2onnx.to_onnx(estimator, example, options=options)


# onnxmltools names the graph with a random UUID unless named; a fixed name keeps packing deterministic.


def _float_input(n_features: int) -> list[tuple[str, Any]]:
    data_types = require("onnxmltools.convert.common.data_types")
    return [(INPUT_NAME, data_types.FloatTensorType([None, n_features]))]


def _from_xgboost(estimator: Any, n_features: int) -> Any:
    onnxmltools = require("onnxmltools")
    return onnxmltools.convert_xgboost(
        estimator, name=type(estimator).__name__, initial_types=_float_input(n_features)
    )


def _from_lightgbm(estimator: Any, n_features: int) -> Any:
    onnxmltools = require("onnxmltools")
    return onnxmltools.convert_lightgbm(
        estimator, name=type(estimator).__name__, initial_types=_float_input(n_features), zipmap=False
    )


def _unpin_output_shapes(model: Any) -> None:
    """Declare the outputs' dimensions by name, not number (the verification checks the real shapes).

    Converters declare some wrongly: onnxmltools gives LightGBM's label [1], skl2onnx a two-output
    regressor's predictions [None, 1]. ONNX Runtime then logs a shape warning on every run.
    """
    for output in model.graph.output:
        for index, dim in enumerate(output.type.tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                dim.Clear()
                dim.dim_param = "N" if index == 0 else f"{output.name}_{index}"


def _reason(converter: str, estimator: Any, error: Exception) -> str:
    """One sentence: which converter failed on what, and why in the converter's own words."""
    name = qualified_name(estimator)
    text = " ".join(str(error).split())
    missing = _MISSING_CLASS.search(text) if type(error).__name__ in _MISSING_ERRORS else None
    if missing is not None:
        if missing[1] == name:
            return f"{converter} has no converter for {name}"
        return f"{converter} cannot convert {name}: it has no converter for {missing[1]} inside it"
    end = text.find(". ")
    sentence = (text if end < 0 else text[:end]).rstrip(".") or type(error).__name__
    return f"{converter} cannot convert {name}: {sentence}"
