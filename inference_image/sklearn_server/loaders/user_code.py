"""User inference code: ``code/inference.py`` with AWS's hooks, around a built-in model kind or its own model.

Where the code is found, as AWS's framework containers do: ``code/inference.py`` in the model directory;
SAGEMAKER_PROGRAM names another script and SAGEMAKER_SUBMIT_DIRECTORY another (local) directory. When a
script is there it takes precedence over the plain model kind; ``code/`` and ``code/lib/`` go on
``sys.path``, and ``code/requirements.txt`` is installed first (``user_requirements``).

The hooks, each optional (a missing one falls back to the built-in):

- ``model_fn(model_dir)`` -> the model. Default: the model file of the directory, loaded by its kind.
- ``input_fn(body, content_type)`` -> the input. ``body`` is ``str`` for application/json and text/csv
  (UTF-8), ``bytes`` otherwise, as in AWS's containers; ``content_type`` has no parameters.
- ``predict_fn(input, model)`` -> the prediction. Default: the kind's predict, or ``model.predict``.
- ``output_fn(prediction, accept)`` -> ``bytes`` or ``str`` (sent as ``accept``), ``(body, content_type)``,
  or a ``worker.Response``.
- ``transform_fn(model, body, content_type, accept)`` instead of the last three (never with them).

Micro-batching joins several requests' inputs for one ``predict_fn`` call only when the module says
``BATCH_SAFE = True``: its ``predict_fn`` returns one output per input row, and its inputs are arrays,
DataFrames or sparse matrices that stack.

Errors: an exception with an int ``status_code`` of 400-599 (sagemaker_inference's
``GenericInferenceToolkitError``; any class of your own) is answered with that status and its ``message``
(or ``str()``) as ``{"error": ...}``, and so is an ``errors.InferenceError``. AWS's
``UnsupportedFormatError`` is a 415 from ``input_fn`` and a 406 from ``output_fn``. Anything else is a 500
whose traceback goes to the log only.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import numpy as np

from sklearn_server import codecs, user_requirements
from sklearn_server.config import CONTENT_TYPES, CSV, ENV_PROGRAM, ENV_SUBMIT_DIRECTORY, JSON, ServerConfig
from sklearn_server.errors import (
    BadRequestError,
    InferenceError,
    ModelFailedError,
    ModelLoadError,
    NotAcceptableError,
    UnsupportedMediaTypeError,
)
from sklearn_server.loaders.calling import checked_method
from sklearn_server.model import READABLE_CONTENT_TYPES, Join, LoadedModel, find_model, rows_of

logger = logging.getLogger(__name__)

CODE_DIRECTORY: Final = "code"
DEFAULT_PROGRAM: Final = "inference.py"
LIBRARY_DIRECTORY: Final = "lib"
REQUIREMENTS_FILE: Final = "requirements.txt"
BATCH_SAFE: Final = "BATCH_SAFE"
"""The module-level flag that lets micro-batching join requests for one ``predict_fn`` call."""
TEXT_TYPES: Final = (JSON, CSV)
"""Bodies ``input_fn`` receives as ``str``, as AWS's containers decode them (their UTF8_TYPES)."""
MAX_MESSAGE_CHARS: Final = 2000
"""Longest message of a status-carrying user exception sent to the client."""
AWS_COMPAT_DIRECTORY: Final = Path(__file__).resolve().parents[1] / "aws_compat"

_HOOK_ARGUMENTS: Final = {
    "model_fn": ("model_dir",),
    "input_fn": ("body", "content_type"),
    "predict_fn": ("input", "model"),
    "output_fn": ("prediction", "accept"),
    "transform_fn": ("model", "body", "content_type", "accept"),
}
_prepared: dict[Path, ModuleType] = {}
"""Scripts already prepared in this process (the supervisor's survive the fork into the workers)."""


def find_script(config: ServerConfig) -> Path | None:
    """The user's inference script, or None when there is none (the plain model kind is served).

    Raises:
        ModelLoadError: SAGEMAKER_SUBMIT_DIRECTORY is an S3 URI or names no directory, or
            SAGEMAKER_PROGRAM names a script that is not there.
    """
    program = config.program or DEFAULT_PROGRAM
    if Path(program).name != program:
        raise ModelLoadError(
            f"{ENV_PROGRAM}={program!r} must be a file name (the script in the code directory)"
        )
    if not program.endswith(".py"):
        program += ".py"  # AWS's containers accept a module name too
    submit = config.submit_directory
    code_dir = _submit_directory(submit) if submit is not None else config.model_dir / CODE_DIRECTORY
    script = code_dir / program
    if script.is_file():
        return script
    if config.program is not None or submit is not None:
        raise ModelLoadError(
            f"no user script at {script} ({ENV_PROGRAM}={config.program or ''!r}, "
            f"{ENV_SUBMIT_DIRECTORY}={submit or ''!r})"
        )
    others = sorted(path.name for path in code_dir.glob("*.py")) if code_dir.is_dir() else []
    if others:
        logger.warning(
            "%s holds %s but no %s: serving the model file alone (set %s to serve a script)",
            code_dir,
            ", ".join(others[:5]),
            DEFAULT_PROGRAM,
            ENV_PROGRAM,
        )
    return None


def _submit_directory(submit: str) -> Path:
    if submit.startswith("s3://"):
        raise ModelLoadError(
            f"{ENV_SUBMIT_DIRECTORY}={submit!r}: this server does not download code from S3; pack it into "
            f"model.tar.gz under {CODE_DIRECTORY}/ (pack_model(..., code_dir=...)) and unset "
            f"{ENV_SUBMIT_DIRECTORY}"
        )
    directory = Path(submit.removeprefix("file://"))
    if not directory.is_dir():
        raise ModelLoadError(f"{ENV_SUBMIT_DIRECTORY}={submit!r} is not a directory")
    return directory


def prepare(script: Path) -> ModuleType:
    """Install the code's requirements, put its directories on ``sys.path`` and import it; once per process.

    Raises:
        ModelLoadError: the requirements cannot be installed, or importing the script fails; the message
            names the file and line.
    """
    key = script.resolve()
    if key in _prepared:
        return _prepared[key]
    code_dir = script.parent
    requirements = code_dir / REQUIREMENTS_FILE
    front = [code_dir, code_dir / LIBRARY_DIRECTORY]
    if requirements.is_file():
        front += user_requirements.install(requirements)
    for directory in reversed(front):
        if directory.is_dir() and str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    if str(AWS_COMPAT_DIRECTORY) not in sys.path:
        sys.path.append(str(AWS_COMPAT_DIRECTORY))
    module = _import(script)
    _prepared[key] = module
    return module


def _import(script: Path) -> ModuleType:
    name = script.stem
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise ModelLoadError(f"{script} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as a plain import would: pickles and dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(name, None)
        raise ModelLoadError(
            f"{error.filename}:{error.lineno}: syntax error in user code: {error.msg}"
        ) from error
    except (Exception, SystemExit) as error:
        sys.modules.pop(name, None)
        logger.error("importing %s failed:\n%s", script, "".join(traceback.format_exception(error)))
        raise ModelLoadError(
            f"{_where(error, script)}: importing {script.name} raised {type(error).__name__}: {error}"
        ) from error
    return module


def _where(error: BaseException, script: Path) -> str:
    """``file:line`` of the deepest frame of the traceback in the user's code directory."""
    code_dir = str(script.parent.resolve())
    location = str(script)
    for frame in traceback.extract_tb(error.__traceback__):
        if str(Path(frame.filename).resolve()).startswith(code_dir):
            location = f"{frame.filename}:{frame.lineno}"
    return location


def load(script: Path, config: ServerConfig) -> LoadedModel:
    """The user's hooks around their model (or the directory's built-in one) as a ``LoadedModel``.

    Raises:
        ModelLoadError: the script fails to import, defines hooks that cannot be called as AWS calls them,
            mixes transform_fn with the other hooks, its model_fn fails, or (without a model_fn) the
            directory holds no model file.
    """
    module = prepare(script)
    hooks = _hooks(module, script)
    if "transform_fn" in hooks and hooks.keys() & {"input_fn", "predict_fn", "output_fn"}:
        raise ModelLoadError(
            f"{script}: transform_fn cannot be combined with input_fn, predict_fn or output_fn "
            "(as in AWS's containers); define transform_fn alone, or the other three"
        )
    builtin: LoadedModel | None = None
    if "model_fn" in hooks:
        model = _call_model_fn(hooks["model_fn"], config.model_dir, script)
    else:
        try:
            kind, path = find_model(config.model_dir)
        except ModelLoadError as error:
            raise ModelLoadError(
                f"{script} defines no model_fn, so the built-in model is loaded: {error}"
            ) from None
        builtin = kind.load(path, config)
        model = builtin.native if builtin.native is not None else builtin
    batch_safe = getattr(module, BATCH_SAFE, False) is True
    if "transform_fn" in hooks:
        return _transform_model(script, hooks["transform_fn"], model, builtin)
    return _hook_model(script, hooks, model, builtin, batch_safe, config)


def _hooks(module: ModuleType, script: Path) -> dict[str, Callable[..., Any]]:
    """The hooks the module defines, each checked to be callable with AWS's arguments."""
    found: dict[str, Callable[..., Any]] = {}
    for name, arguments in _HOOK_ARGUMENTS.items():
        hook = getattr(module, name, None)
        if hook is None:
            continue
        if not callable(hook):
            raise ModelLoadError(f"{script}: {name} is a {type(hook).__name__}, not a function")
        try:
            inspect.signature(hook).bind(*arguments)
        except TypeError:
            raise ModelLoadError(
                f"{script}: {name}{inspect.signature(hook)} cannot be called as "
                f"{name}({', '.join(arguments)}) "
                "(hooks that need a context argument are not supported: give it a default)"
            ) from None
        except ValueError:  # no signature to inspect (a builtin): let the call tell
            pass
        found[name] = hook
    return found


def _call_model_fn(model_fn: Callable[..., Any], model_dir: Path, script: Path) -> Any:
    try:
        return model_fn(str(model_dir))
    except Exception as error:
        logger.error("model_fn failed:\n%s", "".join(traceback.format_exception(error)))
        raise ModelLoadError(
            f"{_where(error, script)}: model_fn raised {type(error).__name__}: {error}"
        ) from error


def _hook_model(
    script: Path,
    hooks: dict[str, Callable[..., Any]],
    model: Any,
    builtin: LoadedModel | None,
    batch_safe: bool,
    config: ServerConfig,
) -> LoadedModel:
    input_fn = hooks.get("input_fn")
    predict_fn = hooks.get("predict_fn")
    output_fn = hooks.get("output_fn")
    if builtin is not None:
        default_decode, default_predict, default_encode = builtin.decode, builtin.predict, builtin.encode
    else:
        default_decode, default_encode = (
            codecs.model_decoder(None),
            codecs.model_encoder(config.json_response),
        )
        default_predict = _default_predict(model, config.predict_method, script, needed=predict_fn is None)

    decode = _user_decode(input_fn) if input_fn else default_decode
    predict = _user_predict(predict_fn, model, batch_safe) if predict_fn else default_predict
    encode = _user_encode(output_fn) if output_fn else _lenient(default_encode)
    join: Join | None
    if builtin is not None and not hooks.keys() & {"input_fn", "predict_fn"}:
        join = builtin.join  # the built-in model's own inputs and predict: as safe as the plain kind
    else:
        join = join_inputs if batch_safe else None
    defined = ", ".join(hooks) or "no hooks"
    return LoadedModel(
        path=script,
        kind=f"user code ({defined}) around {builtin.kind if builtin else type(model).__name__}",
        method=predict_fn.__name__ if predict_fn else (builtin.method if builtin else config.predict_method),
        n_features=builtin.n_features if builtin and not input_fn else None,
        decode=decode,
        predict=predict,
        encode=encode,
        join=join,
        input_types=None if input_fn else (builtin.input_types if builtin else READABLE_CONTENT_TYPES),
        output_types=None if output_fn else (builtin.output_types if builtin else CONTENT_TYPES),
        details={"batch_safe": join is not None},
        native=model,
    )


def _transform_model(
    script: Path, transform_fn: Callable[..., Any], model: Any, builtin: LoadedModel | None
) -> LoadedModel:
    """transform_fn does everything; it runs in the encode stage, the only one that knows the Accept type."""

    def decode(body: bytes, media_type: str) -> tuple[str | bytes, str]:
        return _content(body, media_type), media_type

    def encode(request: tuple[str | bytes, str], accept: str) -> tuple[bytes, str]:
        try:
            result = transform_fn(model, request[0], request[1], accept)
        except Exception as error:
            raise _answer_for(error, "transform_fn", UnsupportedMediaTypeError) from error
        return response_of(result, accept, "transform_fn")

    return LoadedModel(
        path=script,
        kind=f"user code (transform_fn) around {builtin.kind if builtin else type(model).__name__}",
        method="transform_fn",
        n_features=None,
        decode=decode,
        predict=_unchanged,
        encode=encode,
        join=None,
        input_types=None,
        output_types=None,
        native=model,
    )


def _unchanged(request: Any) -> Any:
    return request


# --- the stages around the user's hooks ---------------------------------------------------------------------


def _content(body: bytes, media_type: str) -> str | bytes:
    """What input_fn receives: text for JSON and CSV, as AWS's containers hand it over; bytes otherwise."""
    if media_type not in TEXT_TYPES:
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequestError(
            f"the {media_type} body is not valid UTF-8: {error.reason} at byte {error.start}"
        ) from None


def _user_decode(input_fn: Callable[..., Any]) -> Callable[[bytes, str], Any]:
    def decode(body: bytes, media_type: str) -> Any:
        content = _content(body, media_type)
        try:
            return input_fn(content, media_type)
        except Exception as error:
            raise _answer_for(error, "input_fn", UnsupportedMediaTypeError) from error

    return decode


def _user_predict(predict_fn: Callable[..., Any], model: Any, batch_safe: bool) -> Callable[[Any], Any]:
    def predict(data: Any) -> Any:
        try:
            result = predict_fn(data, model)
        except Exception as error:
            raise _answer_for(error, "predict_fn", ModelFailedError) from error
        if batch_safe:
            rows, answered = rows_of(data), _length(result)
            if answered != rows:
                raise ModelFailedError() from RuntimeError(
                    f"predict_fn is declared {BATCH_SAFE} but returned {answered} outputs for {rows} rows"
                )
        return result

    return predict


def _user_encode(output_fn: Callable[..., Any]) -> Callable[[Any, str], tuple[bytes, str]]:
    def encode(prediction: Any, accept: str) -> tuple[bytes, str]:
        try:
            result = output_fn(prediction, accept)
        except Exception as error:
            raise _answer_for(error, "output_fn", NotAcceptableError) from error
        return response_of(result, accept, "output_fn")

    return encode


def _lenient(encode: Callable[[Any, str], tuple[bytes, str]]) -> Callable[[Any, str], tuple[bytes, str]]:
    """The built-in encode for a user predict_fn's output, which may be a list rather than an array."""

    def encode_any(prediction: Any, accept: str) -> tuple[bytes, str]:
        if not hasattr(prediction, "shape"):
            prediction = np.asarray(prediction)
        try:
            return encode(prediction, accept)
        except InferenceError:
            raise
        except Exception as error:
            raise ModelFailedError() from error

    return encode_any


def _default_predict(model: Any, method: str, script: Path, *, needed: bool) -> Callable[[Any], Any]:
    if callable(getattr(model, method, None)):
        return checked_method(model, method)
    if needed:
        raise ModelLoadError(
            f"{script}: model_fn returned a {type(model).__name__}, which has no {method} method; "
            "define predict_fn(input, model)"
        )
    return _unchanged  # never called: the user's predict_fn is


def response_of(result: Any, accept: str, hook: str) -> tuple[bytes, str]:
    """(body, Content-Type) of what output_fn or transform_fn returned (see the module docstring)."""
    if isinstance(result, tuple) and len(result) == 2:
        body, content_type = result
        return _bytes(body, hook), str(content_type)
    if callable(getattr(result, "get_data", None)):  # worker.Response, or a real Flask response
        status = getattr(result, "status_code", 200)
        data = _bytes(result.get_data(), hook)
        if isinstance(status, int) and status >= 400:
            raise status_error(status, data.decode("utf-8", "replace")[:MAX_MESSAGE_CHARS])
        content_type = getattr(result, "mimetype", None) or getattr(result, "content_type", None) or accept
        return data, str(content_type)
    return _bytes(result, hook), accept


def _bytes(body: Any, hook: str) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise ModelFailedError() from TypeError(
        f"{hook} returned a {type(body).__name__}; return bytes, str, (body, content_type) or a "
        "worker.Response"
    )


def _answer_for(error: Exception, hook: str, unsupported: type[InferenceError]) -> InferenceError:
    """The HTTP answer to an exception from a user hook (see the module docstring)."""
    if isinstance(error, InferenceError):
        return error
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        message = getattr(error, "message", None)
        if not isinstance(message, str) or not message:
            message = str(error) or type(error).__name__
        return status_error(status, message[:MAX_MESSAGE_CHARS])
    if type(error).__name__ == "UnsupportedFormatError":  # AWS's encoders (or their stand-ins here)
        return unsupported(str(error).strip()[:MAX_MESSAGE_CHARS])
    return ModelFailedError(f"{hook} failed; the server's log has the traceback")


def status_error(status: int, message: str) -> InferenceError:
    """An InferenceError answered with ``status``."""
    return _error_class(status)(message)


@functools.cache
def _error_class(status: int) -> type[InferenceError]:
    return type(f"UserCodeError{status}", (InferenceError,), {"status": status})


def join_inputs(inputs: list[Any]) -> Any:
    """Several batch-safe requests' inputs as one: arrays, DataFrames and sparse matrices stack by rows.

    Raises:
        TypeError: inputs of another kind; the batcher then predicts each request alone.
    """
    first = inputs[0]
    if all(isinstance(x, np.ndarray) for x in inputs):
        return np.concatenate(inputs)
    module = type(first).__module__.split(".", 1)[0]
    if module == "pandas":
        import pandas as pd

        return pd.concat(inputs, ignore_index=True)
    if module == "scipy":
        import scipy.sparse

        return scipy.sparse.vstack(inputs, format="csr")
    raise TypeError(f"cannot join inputs of type {type(first).__name__}")


def _length(result: Any) -> int:
    shape = getattr(result, "shape", None)
    if shape:
        return int(shape[0])
    try:
        return len(result)
    except TypeError:
        return 1
