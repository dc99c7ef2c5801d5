"""Convert a fitted estimator to ONNX, verify it on a sample, and record the outcome for model-metadata.json.

The record is the contract with the server, which serves model.onnx only when the record says ``verified``,
the file's sha256 matches, and the method it is asked for is listed. A refusal is an outcome, not an error:
the record says why (``reason``) and, when outputs differed, where (``first_difference``).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any

from ml_inference_cdk.compiling.onnx_export import (
    INPUT_NAME,
    ConversionError,
    converter_name,
    export_onnx,
    require,
)
from ml_inference_cdk.compiling.samples import numeric_rows
from ml_inference_cdk.compiling.settings import COMPILED_FILENAME, Tolerance
from ml_inference_cdk.compiling.verification import OutputMismatchError, verify


@dataclass(frozen=True)
class CompiledModel:
    """What ``compile_model`` found: the record for model-metadata.json and, when verified, model.onnx."""

    record: dict[str, Any]
    """The ``compiled`` entry of model-metadata.json (status ``verified`` or ``refused``)."""
    onnx: bytes | None
    """model.onnx's bytes; None when refused."""

    @property
    def verified(self) -> bool:
        return bool(self.record["status"] == "verified")

    def summary(self) -> str:
        """One line: what was compiled and how closely it agrees, or why it was not."""
        return describe(self.record)


def compile_model(
    estimator: Any,
    sample: Any,
    *,
    tolerance: Tolerance | None = None,
    native_file: str = "model.joblib",
) -> CompiledModel:
    """Convert ``estimator`` to ONNX and verify it against the native model on ``sample``.

    ``pack_model(..., compile="onnx")`` calls this and packs the result; call it directly to see the record
    without writing an archive. Conversion failures and differing outputs are refusals (``record["reason"]``),
    never exceptions.

    Args:
        estimator: a fitted scikit-learn estimator or Pipeline, or an XGBoost / LightGBM estimator of their
            scikit-learn API, fitted on numeric rows.
        sample: the rows to verify on, a 2-D array-like of numbers (a few hundred representative rows; held
            out from training is best).
        tolerance: how far probabilities and regression outputs may stray. Default: rtol=1e-5, atol=1e-6.
        native_file: the native model's name in the archive, for the record. Default: model.joblib.

    Raises:
        ValueError: the sample is not a 2-D array of numbers with the estimator's number of columns.
        ImportError: skl2onnx, onnxmltools or onnxruntime is missing
            (``pip install 'ml-inference-cdk[compile]'``).
    """
    tolerance = tolerance or Tolerance()
    n_features = getattr(estimator, "n_features_in_", None)
    rows = numeric_rows(sample, int(n_features) if n_features is not None else None)
    onnxruntime = require("onnxruntime")
    converter = converter_name(estimator)
    base = {"format": "onnx", "native_file": native_file, "converter": converter, "sample_rows": len(rows)}

    def refused(reason: str, first_difference: dict[str, Any] | None = None) -> CompiledModel:
        record = {"format": "onnx", "status": "refused", "reason": reason, **base}
        if first_difference:
            record["first_difference"] = first_difference
        return CompiledModel(record=record, onnx=None)

    if getattr(estimator, "feature_names_in_", None) is not None:
        return refused("fitted on a pandas DataFrame: the compiled path serves numeric rows only")
    if isinstance(getattr(estimator, "classes_", None), list):
        return refused("a multi-output classifier: the compiled path serves one output only")
    try:
        exported = export_onnx(estimator, rows.shape[1])
    except ConversionError as error:
        return refused(str(error))
    try:
        session = _session(onnxruntime, exported.model)
    except Exception as error:  # ONNX Runtime raises its own exception types
        return refused(f"ONNX Runtime cannot load what {converter} wrote: {' '.join(str(error).split())}")
    try:
        methods = verify(estimator, session, rows, tolerance)
    except OutputMismatchError as mismatch:
        return refused(mismatch.reason, mismatch.first_difference)
    record = {
        "format": "onnx",
        "status": "verified",
        "file": COMPILED_FILENAME,
        "sha256": hashlib.sha256(exported.model).hexdigest(),
        **base,
        "onnxruntime": onnxruntime.__version__,
        "input": {"name": INPUT_NAME, "type": "tensor(float)", "features": int(rows.shape[1])},
        "tolerance": tolerance.as_record(),
        "methods": methods,
    }
    return CompiledModel(record=record, onnx=exported.model)


def describe(record: dict[str, Any]) -> str:
    """The one-line summary of a ``compiled`` record, as the CLI prints it and pack_model logs it."""
    if record.get("status") != "verified":
        return f"not compiled: {record.get('reason')}; the archive serves {record.get('native_file')}"
    methods = record["methods"]
    figures = []
    if methods.get("predict", {}).get("labels_identical"):
        figures.append("labels identical")
    if "predict_proba" in methods:
        figures.append(f"max |Δ| probabilities {methods['predict_proba']['max_abs_difference']:.2g}")
    elif "max_abs_difference" in methods.get("predict", {}):
        predict = methods["predict"]
        figures.append(
            f"max |Δ| {predict['max_abs_difference']:.2g}, max relative {predict['max_rel_difference']:.2g}"
        )
    return f"compiled: {record['file']} verified on {record['sample_rows']} rows ({'; '.join(figures)})"


def _session(onnxruntime: Any, model: bytes) -> Any:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
