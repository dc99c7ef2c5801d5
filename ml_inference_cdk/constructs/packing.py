"""``pack_model``: a fitted estimator into model.tar.gz, the artifact every target serves.

The archive holds the native model (``model.joblib`` or ``model.skops``), ``model-metadata.json`` and, with
``code_dir``, user inference code under ``code/``. With ``compile="onnx"`` the estimator is also converted to
ONNX and verified on a sample (``ml_inference_cdk.compiling``); ``model.onnx`` is added only when the
verification passed, and the metadata's ``compiled`` record says which, and why.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import logging
import platform
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from ml_inference_cdk.compiling.settings import COMPILE_FORMATS, COMPILED_FILENAME, Tolerance
from ml_inference_cdk.constructs.contract import MODEL_METADATA_FILENAME
from ml_inference_cdk.constructs.feature_schema import feature_schema

if TYPE_CHECKING:
    from ml_inference_cdk.compiling.record import CompiledModel

CODE_DIRECTORY: Final = "code"
"""Where user inference code sits in model.tar.gz (AWS's framework-container convention)."""
USER_SCRIPT: Final = f"{CODE_DIRECTORY}/inference.py"
_SKIPPED_CODE_NAMES: Final = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".git"})

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())  # a library logs; the application decides where to


def pack_model(
    estimator: Any,
    output: str | Path,
    *,
    serialization: Literal["joblib", "skops"] = "joblib",
    code_dir: str | Path | None = None,
    compile: Literal["onnx"] | None = None,
    sample: Any = None,
    tolerance: Tolerance | None = None,
) -> Path:
    """Pack a fitted scikit-learn estimator into model.tar.gz, the artifact every target serves.

    The archive holds ``model.joblib`` (or ``model.skops``, the format that loads without unpickling) and
    ``model-metadata.json`` recording the scikit-learn and Python versions it was trained with, so the
    server can warn when it runs a different scikit-learn. For an estimator fitted on a pandas DataFrame it
    also records the column names and each column's kind, ``number`` or ``string`` (see
    ``feature_schema``), which the server coerces each request's columns to.

    With ``compile="onnx"`` the estimator is converted to ONNX (skl2onnx for scikit-learn, onnxmltools for
    XGBoost and LightGBM) and both are run on ``sample``. ``model.onnx`` joins the archive only when the
    labels are identical and probabilities and regression outputs agree within ``tolerance``; otherwise the
    archive holds the native model alone. Either way the metadata's ``compiled`` record says what happened
    (``compile_model`` returns the same record without packing), and the outcome is logged on this module's
    logger. A refusal is not an exception: the archive still serves the native model.

    Args:
        estimator: a fitted estimator or pipeline with ``predict``.
        output: the archive to write; must end with .tar.gz.
        serialization: ``joblib`` or ``skops``. Default: joblib.
        code_dir: a folder holding ``inference.py`` (user inference code: model_fn, input_fn, predict_fn,
            output_fn) and anything it needs (``lib/``, ``requirements.txt``); packed as ``code/``.
            Default: no user code, the estimator is served as it is.
        compile: ``onnx`` to add a verified ONNX copy the server runs with ONNX Runtime. Needs ``sample``
            and the ``compile`` extra (``pip install 'ml-inference-cdk[compile]'``); not with ``code_dir``
            (the compiled path serves the built-in model only). Default: None, the native model only.
        sample: with ``compile``, the rows to verify on: a 2-D array-like of numbers with the estimator's
            number of columns, ideally held out from training. Default: None.
        tolerance: with ``compile``, how far probabilities and regression outputs may stray (labels never
            may). Default: ``Tolerance()``, rtol=1e-5 and atol=1e-6.

    Returns:
        The path written.

    Raises:
        ValueError: an unfitted/unsuitable estimator, a bad output name or serialization, a code_dir
            that is missing, lacks inference.py or holds a script that is not valid Python, or compile
            without a numeric 2-D sample, with code_dir, or with a format other than ``onnx``.
        ImportError: compile="onnx" without the ``compile`` extra installed.
    """
    import sklearn
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    output = Path(output)
    if not output.name.endswith(".tar.gz"):
        raise ValueError(f"output must end with .tar.gz, got {str(output)!r}")
    if serialization not in ("joblib", "skops"):
        raise ValueError(f"serialization must be 'joblib' or 'skops', got {serialization!r}")
    if not callable(getattr(estimator, "predict", None)):
        raise ValueError(f"estimator must have a predict method, got {type(estimator).__name__}")
    try:
        check_is_fitted(estimator)
    except NotFittedError as error:
        raise ValueError(f"estimator must be fitted before packing: {error}") from error
    _validate_compile(compile, code_dir, sample, tolerance)

    code_files = _code_files(Path(code_dir)) if code_dir is not None else []
    native_file = f"model.{serialization}"
    compiled = _compiled(estimator, sample, tolerance, native_file) if compile is not None else None
    model_bytes = _serialize(estimator, serialization)
    metadata: dict[str, Any] = {
        "format": serialization,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "n_features_in": int(estimator.n_features_in_) if hasattr(estimator, "n_features_in_") else None,
        "classes": _classes(estimator),
    }
    metadata.update(feature_schema(estimator))  # a DataFrame's columns and their kinds
    if compiled is not None:
        metadata["compiled"] = compiled.record
    output.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 everywhere and no file name in the gzip header: the same model packs to the same bytes
    # whatever the archive is called, so CDK sees the same asset hash.
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        _add_bytes(archive, native_file, model_bytes)
        if compiled is not None and compiled.onnx is not None:
            _add_bytes(archive, COMPILED_FILENAME, compiled.onnx)
        _add_bytes(archive, MODEL_METADATA_FILENAME, json.dumps(metadata, indent=2).encode())
        for name, data in code_files:
            _add_bytes(archive, f"{CODE_DIRECTORY}/{name}", data)
    return output


def packed_metadata(archive: str | Path) -> dict[str, Any]:
    """The model-metadata.json of an archive ``pack_model`` wrote (``["compiled"]`` is the compile record).

    Raises:
        ValueError: the file is not a gzip tarball holding model-metadata.json at its top level.
    """
    try:
        with tarfile.open(archive, "r:gz") as packed:
            member = next(
                (m for m in packed.getmembers() if m.name.removeprefix("./") == MODEL_METADATA_FILENAME), None
            )
            data = packed.extractfile(member) if member is not None else None
            if data is None:
                raise ValueError(f"{str(archive)!r} holds no {MODEL_METADATA_FILENAME} at its top level")
            metadata: dict[str, Any] = json.loads(data.read())
            return metadata
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError) as error:
        raise ValueError(f"{str(archive)!r} is not a model.tar.gz that pack_model wrote: {error}") from error


def parsed_python(source: bytes, where: str) -> ast.Module:
    """``source`` parsed, or a ValueError naming ``where`` and the line."""
    try:
        return ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"{where}:{error.lineno}: is not valid Python: {error.msg}") from error


def _validate_compile(compile: Any, code_dir: Any, sample: Any, tolerance: Any) -> None:
    if compile is None:
        for name, value in (("sample", sample), ("tolerance", tolerance)):
            if value is not None:
                raise ValueError(f"{name} is used only with compile='onnx', which was not given")
        return
    if compile not in COMPILE_FORMATS:
        raise ValueError(f"compile must be 'onnx' or None, got {compile!r}")
    if code_dir is not None:
        raise ValueError(
            "compile='onnx' cannot be combined with code_dir: the compiled path serves the built-in model "
            "only, and user inference code would bypass it"
        )
    if sample is None:
        raise ValueError("compile='onnx' needs sample: a 2-D array-like of numeric rows to verify on")
    if tolerance is not None and not isinstance(tolerance, Tolerance):
        raise ValueError(f"tolerance must be a Tolerance(rtol=..., atol=...), got {tolerance!r}")


def _compiled(estimator: Any, sample: Any, tolerance: Tolerance | None, native_file: str) -> CompiledModel:
    from ml_inference_cdk.compiling.record import compile_model

    compiled = compile_model(estimator, sample, tolerance=tolerance, native_file=native_file)
    if compiled.verified:
        logger.info("%s", compiled.summary())
    else:
        logger.warning("%s", compiled.summary())
    return compiled


def _code_files(code_dir: Path) -> list[tuple[str, bytes]]:
    """(path inside code/, content) of every file under ``code_dir``, sorted; every script parsed."""
    if not code_dir.is_dir():
        raise ValueError(f"code_dir must be a folder holding inference.py, got {str(code_dir)!r}")
    if not (code_dir / "inference.py").is_file():
        raise ValueError(
            f"code_dir must hold inference.py (the script the server runs), found none in {str(code_dir)!r}"
        )
    files = []
    for file in sorted(code_dir.rglob("*")):
        relative = file.relative_to(code_dir)
        if not file.is_file() or _SKIPPED_CODE_NAMES.intersection(relative.parts) or file.suffix == ".pyc":
            continue
        data = file.read_bytes()
        if file.suffix == ".py":
            parsed_python(data, str(file))
        files.append((relative.as_posix(), data))
    return files


def _serialize(estimator: Any, serialization: str) -> bytes:
    if serialization == "skops":
        import skops.io

        data: bytes = skops.io.dumps(estimator)
        return data
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _classes(estimator: Any) -> list[Any] | None:
    """``classes_`` as plain lists; a multi-output classifier has one array of classes per output."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return None
    if isinstance(classes, list):
        return [[_plain(c) for c in part] for part in classes]
    return [_plain(c) for c in classes]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
