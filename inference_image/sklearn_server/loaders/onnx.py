"""ONNX models: ``model.onnx``, run by ONNX Runtime on the CPU.

The model must take one input of rank 2, [rows, features], as skl2onnx exports a scikit-learn model fitted on
numbers (``to_onnx(model, X[:1].astype(np.float32))``); the rows are fed in the element type that input
declares (float32 for skl2onnx). A model with several inputs (skl2onnx's per-column inputs for a DataFrame)
or an input of another rank is a start-up error.

Outputs: INFERENCE_PREDICT_METHOD=predict answers the label output (the output whose name holds "label",
else the first); predict_proba the probabilities (the output whose name holds "prob", else the second of
two). skl2onnx's default ZipMap output (a list of {class: probability} per row) is turned into rows of
probabilities in class order, so exports with and without ``zipmap=False`` answer alike.

One session per worker, with one thread for each of its thread pools: the server runs one worker per CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from sklearn_server.config import ServerConfig
from sklearn_server.errors import BadRequestError, ModelLoadError
from sklearn_server.loaders.calling import complaint
from sklearn_server.loaders.frameworks import require
from sklearn_server.loaders.sklearn import numeric_model
from sklearn_server.model import LoadedModel, ModelKind

FILENAMES: Final = ("model.onnx",)
INPUT_DTYPES: Final[dict[str, type[np.generic]]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
"""The input element types this server feeds, by ONNX Runtime's name for them."""


def load(path: Path, config: ServerConfig) -> LoadedModel:
    """Open an ONNX Runtime session on ``path`` and serve it on the numeric path.

    Raises:
        ModelLoadError: onnxruntime is missing, the file is not a model ONNX Runtime loads, its inputs or
            outputs are not what this server feeds and reads; the message names the file and what works.
    """
    onnxruntime, session = open_session(path)
    model_input = the_input(session, path)
    output = _output_for(config.predict_method, session.get_outputs(), path)
    return session_model(
        path,
        session,
        model_input,
        output.name,
        onnxruntime=onnxruntime,
        config=config,
        kind=f"ONNX model ({model_input.name}: {model_input.type} -> {output.name})",
    )


def session_model(
    path: Path,
    session: Any,
    model_input: Any,
    output_name: str,
    *,
    onnxruntime: Any,
    config: ServerConfig,
    kind: str,
    like_native: bool = False,
    details: dict[str, Any] | None = None,
) -> LoadedModel:
    """A LoadedModel answering ``output_name`` of ``session`` for rows fed to ``model_input``.

    ``like_native``: answer as the scikit-learn model it was compiled from answers (``loaders/compiled.py``):
    a [rows, 1] output as one value per row, and floats as float64.
    """
    dtype = INPUT_DTYPES[model_input.type]
    (output,) = (node for node in session.get_outputs() if node.name == output_name)
    zipmap = str(output.type).startswith("seq(map(")
    invalid_argument = onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument
    input_name = model_input.name

    def predict(data: Any) -> Any:
        if not isinstance(data, np.ndarray):
            raise BadRequestError(
                "ONNX models take dense rows: send text/csv, application/json, application/x-npy or a dense "
                "application/x-npz, not a sparse matrix"
            )
        try:
            (result,) = session.run([output_name], {input_name: _as_input(data, dtype)})
        except invalid_argument as error:
            raise ValueError(" ".join(str(error).split())) from error
        if zipmap:
            return _zipmap_rows(result)
        return _as_native(result) if like_native else result

    width = model_input.shape[1]
    return numeric_model(
        path,
        predict,
        kind=kind,
        method=config.predict_method,
        n_features=width if isinstance(width, int) and width > 0 else None,
        config=config,
        details={"input": model_input.name, "output": output_name, **(details or {})},
    )


def open_session(path: Path) -> tuple[Any, Any]:
    """(the onnxruntime module, a session on ``path``: one thread per pool, the CPU provider).

    Raises:
        ModelLoadError: onnxruntime is missing, or ``path`` is not a model it loads.
    """
    onnxruntime = require("onnxruntime", path, "an ONNX")
    return onnxruntime, _session(onnxruntime, path)


def _as_native(result: np.ndarray) -> np.ndarray:
    """An output as scikit-learn answers it: [rows, 1] as [rows], float32 as float64, text labels (ONNX
    Runtime's objects) as a unicode array."""
    if result.ndim == 2 and result.shape[1] == 1:
        result = result.reshape(-1)
    if result.dtype.kind == "f":
        return result.astype(np.float64)
    return result.astype(np.str_) if result.dtype.hasobject else result


def _session(onnxruntime: Any, path: Path) -> Any:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types: InvalidProtobuf, Fail, NoSuchFile, ...
        raise ModelLoadError(f"{path} cannot be loaded as an ONNX model: {complaint(error)}") from error


def the_input(session: Any, path: Path) -> Any:
    """The session's one input of rank 2 in a type this server feeds, or a ModelLoadError saying why."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(f"{node.name} {node.shape}" for node in inputs)
        raise ModelLoadError(
            f"{path} has {len(inputs)} inputs ({names}); this server feeds one input of shape "
            "[rows, features]: export the model with a single numeric input, e.g. "
            "skl2onnx.to_onnx(model, X[:1].astype(np.float32))"
        )
    (model_input,) = inputs
    if len(model_input.shape) != 2:
        raise ModelLoadError(
            f"{path}: its input {model_input.name!r} has rank {len(model_input.shape)} (shape "
            f"{model_input.shape}); this server feeds rank 2, [rows, features]"
        )
    if model_input.type not in INPUT_DTYPES:
        raise ModelLoadError(
            f"{path}: its input {model_input.name!r} is {model_input.type}; this server feeds "
            f"{', '.join(INPUT_DTYPES)}"
        )
    return model_input


def _output_for(method: str, outputs: Sequence[Any], path: Path) -> Any:
    names = [output.name for output in outputs]
    wanted = "label" if method == "predict" else "prob"
    for output in outputs:
        if wanted in output.name.lower():
            return output
    if method == "predict":
        return outputs[0]
    if len(outputs) == 2:
        return outputs[1]
    raise ModelLoadError(
        f"{path}: INFERENCE_PREDICT_METHOD=predict_proba needs a probabilities output (named like "
        f"'probabilities', or the second of two outputs, as skl2onnx exports classifiers); its outputs are "
        f"{', '.join(names)}: use INFERENCE_PREDICT_METHOD=predict"
    )


def _as_input(data: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    if np.issubdtype(dtype, np.integer) and not np.array_equal(data, np.round(data)):
        raise BadRequestError(
            f"this model's input is {np.dtype(dtype).name}: every value must be a whole number"
        )
    return np.ascontiguousarray(data, dtype=dtype)


def _zipmap_rows(result: list[dict[Any, float]]) -> np.ndarray:
    """skl2onnx's ZipMap output, one {class: probability} per row -> rows of probabilities in class order."""
    if not result:
        return np.empty((0, 0), dtype=np.float32)
    classes = list(result[0])
    return np.array([[row[label] for label in classes] for row in result], dtype=np.float64)


KIND = ModelKind("ONNX", FILENAMES, load)
