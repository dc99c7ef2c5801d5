"""A compiled model: ``model.onnx`` beside the native model it was converted from, served by ONNX Runtime.

``pack_model(compile="onnx")`` and ``ml-inference-pack --compile onnx`` convert the estimator, run the native
model and the ONNX one on the user's sample, and keep ``model.onnx`` only when they agree. What they proved
is ``model-metadata.json``'s ``compiled`` record: the file's sha256, the native file it was checked against,
and, per method (``predict``, ``predict_proba``), the ONNX output that answers it and how close it came.

The compiled model serves when all of these hold; otherwise the native model serves, and the start-up log
says which path serves and why:
- INFERENCE_USE_COMPILED is not ``false``;
- the record says ``verified``, against this native file;
- ``model.onnx`` is the file that was verified (its sha256 matches the record's);
- the record lists the method INFERENCE_PREDICT_METHOD asks for;
- onnxruntime is installed (the image's ``full`` flavour) and opens the file.

It answers as the native model answers (``onnx.session_model(like_native=True)``): the output the record
names, a [rows, 1] output as one value per row, floats as float64, text labels as text: the rule the
verifier compared by.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn_server.config import ENV_PREDICT_METHOD, ENV_USE_COMPILED, MODEL_METADATA_FILENAME, ServerConfig
from sklearn_server.errors import ModelLoadError
from sklearn_server.loaders import onnx
from sklearn_server.loaders.sklearn import read_metadata
from sklearn_server.model import COMPILED_FILENAME, LoadedModel

logger = logging.getLogger(__name__)

VERIFIED = "verified"
PACK_HINT = "pack it with `ml-inference-pack MODEL --sample SAMPLE.csv --compile onnx`"


@dataclass(frozen=True, slots=True)
class Decision:
    """Which path serves, and the sentence the start-up log gives for it."""

    compiled: bool
    reason: str
    record: dict[str, Any]


def decide(native: Path, config: ServerConfig) -> Decision | None:
    """Whether ``native``'s compiled form serves instead of it; None when it has none (no model.onnx beside
    it and no compiled record)."""
    onnx_path = native.parent / COMPILED_FILENAME
    record = read_metadata(native.parent / MODEL_METADATA_FILENAME).get("compiled")
    if record is None and not onnx_path.exists():
        return None

    def native_serves(reason: str) -> Decision:
        return Decision(False, reason, record if isinstance(record, dict) else {})

    if not config.use_compiled:
        return native_serves(f"{ENV_USE_COMPILED}=false")
    if not isinstance(record, dict):
        return native_serves(
            f"{onnx_path.name} has no verification record in {MODEL_METADATA_FILENAME}: {PACK_HINT}"
        )
    if record.get("status") != VERIFIED:
        reason = record.get("reason") or f"its status is {record.get('status')!r}, not {VERIFIED!r}"
        return native_serves(f"the model was not compiled when it was packed: {reason}")
    if record.get("file") != COMPILED_FILENAME or not onnx_path.is_file():
        return native_serves(
            f"the record says {record.get('file')!r} was verified, and {onnx_path} is missing"
        )
    if record.get("native_file") != native.name:
        return native_serves(
            f"{onnx_path.name} was verified against {record.get('native_file')!r}, not {native.name}"
        )
    if _sha256(onnx_path) != record.get("sha256"):
        return native_serves(
            f"{onnx_path} is not the file that was verified: its sha256 differs from the record's"
        )
    methods = record.get("methods")
    if not isinstance(methods, dict) or config.predict_method not in methods:
        verified = ", ".join(methods) if isinstance(methods, dict) and methods else "none"
        return native_serves(
            f"{ENV_PREDICT_METHOD}={config.predict_method} was not verified (verified: {verified})"
        )
    return Decision(True, _verified_summary(record, config.predict_method), record)


def load_if_verified(native: Path, config: ServerConfig) -> LoadedModel | None:
    """The compiled model when ``decide`` says it serves; None (and the reason logged) when the native one
    does; None silently when there is nothing compiled."""
    decision = decide(native, config)
    if decision is None:
        return None
    if not decision.compiled:
        logger.info("serving %s, not %s: %s", native.name, COMPILED_FILENAME, decision.reason)
        return None
    onnx_path = native.parent / COMPILED_FILENAME
    try:
        model = _load(onnx_path, native, decision, config)
    except ModelLoadError as error:
        logger.warning("serving %s, not %s: %s", native.name, COMPILED_FILENAME, error)
        return None
    logger.info(
        "serving %s with ONNX Runtime, compiled from %s: %s", onnx_path.name, native.name, decision.reason
    )
    return model


def _load(onnx_path: Path, native: Path, decision: Decision, config: ServerConfig) -> LoadedModel:
    onnxruntime, session = onnx.open_session(onnx_path)
    model_input = onnx.the_input(session, onnx_path)
    output_name = decision.record["methods"][config.predict_method].get("output")
    outputs = [node.name for node in session.get_outputs()]
    if output_name not in outputs:
        raise ModelLoadError(
            f"the record names output {output_name!r} for {config.predict_method}; {onnx_path} has "
            f"{', '.join(outputs)}"
        )
    converter = decision.record.get("converter", "a converter")
    verified_with = decision.record.get("onnxruntime")
    if verified_with and verified_with != onnxruntime.__version__:
        logger.warning(
            "%s was verified with onnxruntime %s; this server runs %s",
            onnx_path,
            verified_with,
            onnxruntime.__version__,
        )
    return onnx.session_model(
        onnx_path,
        session,
        model_input,
        output_name,
        onnxruntime=onnxruntime,
        config=config,
        kind=f"ONNX Runtime (compiled from {native.name} by {converter})",
        like_native=True,
        details={"compiled_from": native.name},
    )


def _verified_summary(record: dict[str, Any], method: str) -> str:
    figures = record["methods"][method]
    rows = figures.get("rows", record.get("sample_rows", "?"))
    if figures.get("labels_identical"):
        agreement = "labels identical"
    else:
        agreement = f"max |difference| {figures.get('max_abs_difference', '?')}"
        tolerance = record.get("tolerance")
        if isinstance(tolerance, dict):
            agreement += f" (rtol {tolerance.get('rtol')}, atol {tolerance.get('atol')})"
    return f"{method} verified on {rows} sample rows, {agreement}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
