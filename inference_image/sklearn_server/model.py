"""What the server serves: a ``LoadedModel``, whatever kind of model it came from.

A model kind (scikit-learn, a DataFrame pipeline, XGBoost, LightGBM, ONNX, user code) lives in
``loaders/``. Each kind names the files it loads, and its loader turns them into a ``LoadedModel``: three
functions (decode, predict, encode) and what the batcher and the HTTP layer need to know about them. The
HTTP layer never learns which kind it serves.

``find_model`` picks the kind from the files present in the model directory, once, at start: none or two
kinds is a start-up error that lists what was found and what is allowed. The one exception: ``model.onnx``
beside a native model is that model compiled, and ``loaders/compiled.py`` decides which of the two serves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sklearn_server.config import CONTENT_TYPES, INPUT_ONLY_CONTENT_TYPES, ServerConfig
from sklearn_server.errors import ModelLoadError

READABLE_CONTENT_TYPES = (*CONTENT_TYPES, *INPUT_ONLY_CONTENT_TYPES)
COMPILED_FILENAME = "model.onnx"
"""Beside a native model file, its compiled form (``loaders/compiled.py``); alone, a model of its own."""

Decode = Callable[[bytes, str], Any]
"""(body, media type without parameters) -> the model's input. Raises BadRequestError (400) or
UnsupportedMediaTypeError (415)."""
Predict = Callable[[Any], Any]
"""The model's input -> one output per input row. Raises BadRequestError (400) or ModelFailedError (500)."""
Encode = Callable[[Any, str], tuple[bytes, str]]
"""(predictions, the media type the client accepts) -> (body, Content-Type)."""
Join = Callable[[list[Any]], Any]
"""Several requests' inputs -> one input (rows stacked in order), for one coalesced predict call."""


def rows_of(data: Any) -> int:
    """How many rows an input holds: its first dimension, or 1 for an input without a shape."""
    shape = getattr(data, "shape", None)
    return int(shape[0]) if shape else 1


def width_of(data: Any) -> int | None:
    """Columns per row, None for an input that is not a table."""
    shape = getattr(data, "shape", None)
    return int(shape[1]) if shape is not None and len(shape) > 1 else None


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model ready to answer: decode a body, predict, encode the predictions.

    The batcher joins concurrent requests' inputs with ``join`` and slices the output back per request, so
    ``predict`` must return one output per input row, in order. A kind whose inputs cannot be joined (user
    code that has not declared its ``predict_fn`` batch-safe) sets ``join`` to None: each request is then
    predicted alone.
    """

    path: Path
    """The file (or code directory) the model came from; named in the start-up log."""
    kind: str
    """What was loaded, for the log: "scikit-learn LogisticRegression", "XGBoost Booster", ..."""
    method: str
    n_features: int | None
    """Columns per row the model was fitted on, None when it does not say."""
    decode: Decode
    predict: Predict
    encode: Encode
    join: Join | None = np.concatenate
    input_types: tuple[str, ...] | None = READABLE_CONTENT_TYPES
    """The media types ``decode`` reads; another is a 415 before the body is read. None: any (user code's
    ``input_fn`` decides)."""
    output_types: tuple[str, ...] | None = CONTENT_TYPES
    """The media types ``encode`` can write, in the server's order of preference; None: whatever the client
    asks for (user ``output_fn``), the server's default accept when it asks for nothing or ``*/*``."""
    details: dict[str, Any] = field(default_factory=dict)
    """Kind-specific facts for the start-up log line."""
    native: Any = None
    """The object the loader loaded (an estimator, a booster, a session): what user code's ``predict_fn``
    receives as ``model`` when the code has no ``model_fn`` of its own. None: the LoadedModel is passed."""


@dataclass(frozen=True, slots=True)
class ModelKind:
    """One kind of model: the file names that select it and the function that loads it."""

    name: str
    filenames: tuple[str, ...]
    load: Callable[[Path, ServerConfig], LoadedModel]


def find_model(model_dir: Path, kinds: Sequence[ModelKind] | None = None) -> tuple[ModelKind, Path]:
    """The one kind of model ``model_dir`` holds and the file that selects it.

    Raises:
        ModelLoadError: the directory is missing, holds no model file, or holds files of two kinds (or
            two files of one kind); the message names what was found and what is allowed.
    """
    from sklearn_server.loaders import MODEL_KINDS

    kinds = MODEL_KINDS if kinds is None else kinds
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist or is not a directory")
    present: list[tuple[ModelKind, Path]] = []
    for kind in kinds:
        for name in kind.filenames:
            path = model_dir / name
            if path.is_file():
                present.append((kind, path))
            elif path.is_symlink() or path.exists():
                raise ModelLoadError(f"{path} is {_describe_non_file(path)}, not a regular file")
    allowed = ", ".join(name for kind in kinds for name in kind.filenames)
    if len(present) == 2 and COMPILED_FILENAME in (present[0][1].name, present[1][1].name):
        # model.onnx beside a native model is its compiled form (loaders/compiled.py), not a second model
        present = [entry for entry in present if entry[1].name != COMPILED_FILENAME]
    if not present:
        found = sorted(entry.name for entry in model_dir.iterdir())[:20]
        raise ModelLoadError(
            f"no model file in {model_dir}: expected one of {allowed}, found {', '.join(found) or 'nothing'}"
        )
    if len(present) > 1:
        names = [path.name for _, path in present]
        listed = (
            f"both {names[0]} and {names[1]}"
            if len(names) == 2
            else ", ".join(names[:-1]) + f" and {names[-1]}"
        )
        raise ModelLoadError(f"ambiguous model in {model_dir}: {listed} are present; keep exactly one")
    return present[0]


def find_model_file(model_dir: Path) -> Path:
    """The file that selects the model in ``model_dir`` (see ``find_model``)."""
    return find_model(model_dir)[1]


def find_model_source(config: ServerConfig) -> Path:
    """What the server loads: the user's inference script when there is one (it takes precedence over the
    model file beside it), else the model file ``find_model`` picks.

    Raises:
        ModelLoadError: see ``find_model`` and ``loaders.user_code.find_script``.
    """
    from sklearn_server.loaders import user_code

    script = user_code.find_script(config)
    return script if script is not None else find_model_file(config.model_dir)


def prepare_model_source(path: Path) -> None:
    """Work done once, before the workers fork: user code installs its requirements and is imported, so a
    broken script stops the server at once, naming the file and line. Nothing for a plain model file.

    Raises:
        ModelLoadError: the requirements cannot be installed or the script cannot be imported.
    """
    if path.suffix == ".py":
        from sklearn_server.loaders import user_code

        user_code.prepare(path)


def load_model(path: Path, config: ServerConfig | None = None) -> LoadedModel:
    """Load ``path``: a user script (``find_model_source``), or a model file with the loader of its kind
    (chosen by its name)."""
    from sklearn_server.loaders import MODEL_KINDS

    config = config or ServerConfig(workers=1)
    if path.suffix == ".py":
        from sklearn_server.loaders import user_code

        return user_code.load(path, config)
    for kind in MODEL_KINDS:
        if path.name in kind.filenames:
            if path.name != COMPILED_FILENAME:
                from sklearn_server.loaders import compiled

                served = compiled.load_if_verified(path, config)
                if served is not None:
                    return served
            return kind.load(path, config)
    raise ModelLoadError(f"{path.name} is not a model file this server knows")  # pragma: no cover


def load_model_directory(model_dir: Path, config: ServerConfig) -> LoadedModel:
    """Everything single-model start-up does for ``model_dir``, in one call: find the model (or the user's
    script), prepare it and load it, with ``config`` read as if ``model_dir`` were SM_MODEL_DIR. What
    multi-model mode runs for each ``POST /models``.

    Raises:
        ModelLoadError: see ``find_model_source``, ``prepare_model_source`` and the loaders.
    """
    config = dataclasses.replace(config, model_dir=model_dir)
    path = find_model_source(config)
    prepare_model_source(path)
    return load_model(path, config)


def _describe_non_file(path: Path) -> str:
    if path.is_symlink():
        target = path.readlink()
        if not path.exists():
            return f"a symbolic link to {target}, which does not exist"
        kind = "a directory" if path.is_dir() else "not a regular file"
        return f"a symbolic link to {target}, which is {kind}"
    return "a directory" if path.is_dir() else "a special file (a device, socket or pipe)"
