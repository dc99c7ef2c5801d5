"""Run the native model and ONNX Runtime on the same sample and compare them, the way the server will trust.

The rule (shared with the server, see model-metadata.json's ``compiled`` record):

- ``predict`` of a classifier: the labels, converted to the native ``classes_`` dtype, are identical
  (``np.array_equal``);
- ``predict_proba``: ``np.allclose(onnx, native, rtol, atol)``;
- ``predict`` of a regressor: ``|onnx - native| <= atol + rtol * scale`` on every row, where ``scale`` is the
  largest ``|native|`` on the sample: ONNX Runtime sums a tree ensemble's float32 leaves in another order
  than the native library, so its error follows the size of the outputs, not of each prediction (a
  prediction near zero of a model whose outputs reach the hundreds differs by ~1e-6, measured);
- an ONNX output of shape [rows, 1] is read as [rows] where the native output is 1-D.

The native model sees the sample as float64, ONNX Runtime as float32 (its input type).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ml_inference_cdk.compiling.settings import Tolerance


class OutputMismatchError(Exception):
    """ONNX and native outputs differ on the sample; ``first_difference`` says where (None when the outputs
    could not be compared row by row: a different shape or label type)."""

    def __init__(self, reason: str, first_difference: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.first_difference = first_difference


def verify(estimator: Any, session: Any, sample: np.ndarray, tolerance: Tolerance) -> dict[str, Any]:
    """The ``methods`` entry of a verified record: one entry per method whose outputs agree.

    A classifier lists ``predict`` and, when it has one, ``predict_proba``; a regressor lists ``predict``.

    Raises:
        OutputMismatchError: any method's outputs differ (a classifier is refused as a whole).
    """
    outputs = [output.name for output in session.get_outputs()]
    results = session.run(None, {session.get_inputs()[0].name: sample.astype(np.float32)})
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return {"predict": _regression(estimator, sample, outputs[0], results[0], tolerance)}
    methods = {"predict": _labels(estimator, sample, outputs[0], results[0], np.asarray(classes).dtype)}
    if hasattr(estimator, "predict_proba"):
        if len(results) < 2:
            raise OutputMismatchError(f"the ONNX model has no probabilities output, only {outputs}")
        methods["predict_proba"] = _probabilities(estimator, sample, outputs[1], results[1], tolerance)
    return methods


def _labels(
    estimator: Any, sample: np.ndarray, output: str, onnx: Any, dtype: np.dtype[Any]
) -> dict[str, Any]:
    native = np.asarray(estimator.predict(sample))
    predicted = _as_native_shape(np.asarray(onnx), native, "predict", output)
    try:
        predicted = predicted.astype(dtype)
        native = native.astype(dtype)
    except (TypeError, ValueError) as error:
        raise OutputMismatchError(
            f"ONNX labels ({predicted.dtype}) cannot be read as the native classes ({dtype}): {error}"
        ) from error
    if not np.array_equal(predicted, native):
        row = int(np.flatnonzero(predicted != native)[0])
        raise _mismatch(
            estimator,
            sample,
            row,
            "predict",
            native[row],
            predicted[row],
            f"labels differ on sample row {row} "
            f"(native {_plain(native[row])}, ONNX {_plain(predicted[row])})",
        )
    return {"output": output, "rows": len(sample), "labels_identical": True}


def _probabilities(
    estimator: Any, sample: np.ndarray, output: str, onnx: Any, tolerance: Tolerance
) -> dict[str, Any]:
    native = np.asarray(estimator.predict_proba(sample), dtype=np.float64)
    predicted = _as_native_shape(np.asarray(onnx), native, "predict_proba", output).astype(np.float64)
    _check_close(estimator, sample, "predict_proba", "probabilities", native, predicted, tolerance)
    return {
        "output": output,
        "rows": len(sample),
        "max_abs_difference": float(np.max(np.abs(predicted - native))),
    }


def _regression(
    estimator: Any, sample: np.ndarray, output: str, onnx: Any, tolerance: Tolerance
) -> dict[str, Any]:
    native = np.asarray(estimator.predict(sample), dtype=np.float64)
    predicted = _as_native_shape(np.asarray(onnx), native, "predict", output).astype(np.float64)
    scale = float(np.max(np.abs(native))) if native.size and np.isfinite(native).all() else 0.0
    scaled = Tolerance(rtol=0.0, atol=tolerance.atol + tolerance.rtol * scale)
    bound = (
        f"atol + rtol * {scale:.3g} (the largest |prediction|) = {scaled.atol:.3g}, "
        f"rtol={tolerance.rtol:g}, atol={tolerance.atol:g}"
    )
    _check_close(estimator, sample, "predict", "predictions", native, predicted, scaled, bound)
    difference = np.abs(predicted - native)
    magnitude = np.abs(native)
    relative = difference[magnitude > 0] / magnitude[magnitude > 0]
    return {
        "output": output,
        "rows": len(sample),
        "max_abs_difference": float(np.max(difference)),
        "max_rel_difference": float(np.max(relative)) if relative.size else 0.0,
        "scale": scale,
    }


def _check_close(
    estimator: Any,
    sample: np.ndarray,
    method: str,
    what: str,
    native: np.ndarray,
    predicted: np.ndarray,
    tolerance: Tolerance,
    bound: str | None = None,
) -> None:
    """Raises OutputMismatchError unless ``np.allclose(predicted, native, tolerance)``; ``bound`` says what
    the limit was in the reason (default: the tolerance's rtol and atol)."""
    if np.allclose(predicted, native, rtol=tolerance.rtol, atol=tolerance.atol):
        return
    close = np.isclose(predicted, native, rtol=tolerance.rtol, atol=tolerance.atol).reshape(len(sample), -1)
    row = int(np.flatnonzero(~close.all(axis=1))[0])
    bound = bound or f"rtol={tolerance.rtol:g}, atol={tolerance.atol:g}"
    largest = float(np.max(np.abs(predicted[row] - native[row])))
    raise _mismatch(
        estimator,
        sample,
        row,
        method,
        native[row],
        predicted[row],
        f"{what} differ beyond {bound} on sample row {row} (|native - ONNX| up to {largest:.3g})",
        tolerance,
    )


def _as_native_shape(onnx: np.ndarray, native: np.ndarray, method: str, output: str) -> np.ndarray:
    if onnx.ndim == 2 and onnx.shape[1] == 1 and native.ndim == 1:
        onnx = onnx.reshape(-1)
    if onnx.shape != native.shape:
        raise OutputMismatchError(
            f"ONNX output {output!r} has shape {onnx.shape}, native {method} has shape {native.shape}"
        )
    return onnx


def _mismatch(
    estimator: Any,
    sample: np.ndarray,
    row: int,
    method: str,
    native: Any,
    onnx: Any,
    what: str,
    tolerance: Tolerance | None = None,
) -> OutputMismatchError:
    """The error, its reason saying whether float32 (ONNX's input type) explains the difference."""
    rounded = sample[row : row + 1].astype(np.float32).astype(np.float64)
    native_on_float32 = np.asarray(getattr(estimator, method)(rounded))[0]
    if _same(native_on_float32, onnx, tolerance):
        cause = (
            "the native model gives the ONNX answer too once the row is rounded to float32 (ONNX's input "
            "type), so the model separates values float32 cannot (thresholds or magnitudes beyond float32 "
            "precision)"
        )
    else:
        cause = "the converted model computes differently from the native one"
    return OutputMismatchError(
        f"{what}: {cause}",
        {
            "row": row,
            "method": method,
            "native": _plain(native),
            "onnx": _plain(onnx),
            "values": _plain(sample[row]),
        },
    )


def _same(first: Any, second: Any, tolerance: Tolerance | None) -> bool:
    """Labels (tolerance None) compare equal; numbers compare as the verification compares them."""
    if tolerance is None:
        return bool(np.array_equal(np.asarray(first), np.asarray(second)))
    return bool(
        np.allclose(
            np.asarray(second, dtype=np.float64),
            np.asarray(first, dtype=np.float64),
            rtol=tolerance.rtol,
            atol=tolerance.atol,
        )
    )


def _plain(value: Any) -> Any:
    """JSON-ready: NumPy scalars and arrays as Python numbers and lists; NaN and infinities as strings."""
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
