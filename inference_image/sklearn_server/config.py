"""The server's configuration: the environment, read once at start into a frozen dataclass.

Every name here is also declared in ``ml_inference_cdk/constructs/contract.py`` (the constructs pass them
as container environment); a test keeps the two in step. Nothing else in the server reads ``os.environ``
(the supervisor only *sets* the BLAS thread variables before numpy is imported).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

CONTAINER_PORT: Final = 8080
"""The port SageMaker sends traffic to, unless SAGEMAKER_BIND_TO_PORT says otherwise."""

MODEL_DIR: Final = "/opt/ml/model"
"""Where SageMaker unpacks model.tar.gz; SM_MODEL_DIR overrides it."""

MULTI_MODEL_DIR: Final = "/opt/ml/models"
"""Where SageMaker unpacks each model of a multi-model endpoint (``/opt/ml/models/<name>/model``)."""

PING_PATH: Final = "/ping"
INVOCATIONS_PATH: Final = "/invocations"
EXECUTION_PARAMETERS_PATH: Final = "/execution-parameters"
MODELS_PATH: Final = "/models"
"""Multi-model mode's routes: ``/models``, ``/models/{name}`` and ``/models/{name}/invoke``."""

MODEL_FILENAMES: Final = ("model.joblib", "model.skops", "xgboost-model", "model.txt", "model.onnx")
"""The model files the server loads; exactly one must be present in the model directory."""

MODEL_METADATA_FILENAME: Final = "model-metadata.json"
"""Written next to the model by pack_model(): the scikit-learn version it was trained with, and its shape."""

CSV: Final = "text/csv"
JSON: Final = "application/json"
JSONLINES: Final = "application/jsonlines"
NPY: Final = "application/x-npy"
NPZ: Final = "application/x-npz"
CONTENT_TYPES: Final = (CSV, JSON, JSONLINES, NPY)
"""The media types /invocations writes, and reads."""
INPUT_ONLY_CONTENT_TYPES: Final = (NPZ,)
"""The media types /invocations reads but does not write."""
JSON_RESPONSES: Final = ("list", "predictions")
"""The shapes of a JSON answer: a bare list (AWS's scikit-learn container) or ``{"predictions": [...]}``."""

PREDICT_METHODS: Final = ("predict", "predict_proba")

# The sagemaker-inference-toolkit names users already know, then ours.
ENV_BIND_TO_PORT: Final = "SAGEMAKER_BIND_TO_PORT"
ENV_WORKERS: Final = "SAGEMAKER_MODEL_SERVER_WORKERS"
ENV_TIMEOUT: Final = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
ENV_DEFAULT_ACCEPT: Final = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
ENV_LOG_LEVEL: Final = "SAGEMAKER_CONTAINER_LOG_LEVEL"
ENV_MAX_PAYLOAD_MB: Final = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
ENV_MODEL_DIR: Final = "SM_MODEL_DIR"
ENV_PREDICT_METHOD: Final = "INFERENCE_PREDICT_METHOD"
ENV_MAX_BATCH_ROWS: Final = "INFERENCE_MAX_BATCH_ROWS"
ENV_MAX_BATCH_WAIT_MS: Final = "INFERENCE_MAX_BATCH_WAIT_MS"
ENV_JSON_RESPONSE: Final = "INFERENCE_JSON_RESPONSE"
ENV_PROGRAM: Final = "SAGEMAKER_PROGRAM"
ENV_SUBMIT_DIRECTORY: Final = "SAGEMAKER_SUBMIT_DIRECTORY"

CONTAINER_ENV_NAMES: Final = frozenset(
    {
        ENV_BIND_TO_PORT,
        ENV_WORKERS,
        ENV_TIMEOUT,
        ENV_DEFAULT_ACCEPT,
        ENV_LOG_LEVEL,
        ENV_MAX_PAYLOAD_MB,
        ENV_MODEL_DIR,
        ENV_PREDICT_METHOD,
        ENV_MAX_BATCH_ROWS,
        ENV_MAX_BATCH_WAIT_MS,
        ENV_JSON_RESPONSE,
        ENV_PROGRAM,
        ENV_SUBMIT_DIRECTORY,
    }
)
"""The variables the CDK constructs may set (contract.CONTAINER_ENV_NAMES)."""

ENV_SKOPS_TRUSTED_TYPES: Final = "INFERENCE_SKOPS_TRUSTED_TYPES"
"""Server-only: extra fully qualified type names a ``model.skops`` file may contain, comma-separated."""
ENV_USE_COMPILED: Final = "INFERENCE_USE_COMPILED"
"""Server-only: ``false`` serves the native model even when a verified ``model.onnx`` is beside it
(``loaders/compiled.py``)."""

# Server-only: the HTTP limits (README, "Security posture"). Every resource a client can make a worker hold
# is bounded by one of these or by SAGEMAKER_MAX_PAYLOAD_IN_MB.
ENV_MAX_REQUEST_LINE_BYTES: Final = "INFERENCE_MAX_REQUEST_LINE_BYTES"
ENV_MAX_HEADER_BYTES: Final = "INFERENCE_MAX_HEADER_BYTES"
ENV_MAX_HEADER_COUNT: Final = "INFERENCE_MAX_HEADER_COUNT"
ENV_HEADER_TIMEOUT: Final = "INFERENCE_HEADER_TIMEOUT_SECONDS"
ENV_BODY_TIMEOUT: Final = "INFERENCE_BODY_TIMEOUT_SECONDS"
ENV_KEEP_ALIVE: Final = "INFERENCE_KEEP_ALIVE_SECONDS"
ENV_MAX_CONNECTIONS: Final = "INFERENCE_MAX_CONNECTIONS"

LIMIT_ENV_NAMES: Final = frozenset(
    {
        ENV_MAX_REQUEST_LINE_BYTES,
        ENV_MAX_HEADER_BYTES,
        ENV_MAX_HEADER_COUNT,
        ENV_HEADER_TIMEOUT,
        ENV_BODY_TIMEOUT,
        ENV_KEEP_ALIVE,
        ENV_MAX_CONNECTIONS,
    }
)
"""The server-only HTTP limits; the CDK constructs pass them like any other variable (``environment=``)."""

# Multi-model mode (``registry.py``). SAGEMAKER_MULTI_MODEL is the switch AWS's own containers read.
ENV_MULTI_MODEL: Final = "SAGEMAKER_MULTI_MODEL"
ENV_MULTI_MODEL_DIR: Final = "INFERENCE_MULTI_MODEL_DIR"
ENV_MULTI_MODEL_MEMORY_MB: Final = "INFERENCE_MULTI_MODEL_MEMORY_MB"

MULTI_MODEL_ENV_NAMES: Final = frozenset({ENV_MULTI_MODEL, ENV_MULTI_MODEL_DIR, ENV_MULTI_MODEL_MEMORY_MB})
"""Multi-model mode's variables. Server-only for now: the constructs pass them through ``environment=``."""

LOG_LEVELS: Final = {
    "CRITICAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}

_T = TypeVar("_T")

MAX_TIMEOUT_SECONDS: Final = 3600.0
"""SageMaker batch transform's longest invocation timeout; real-time endpoints stop at 60 s."""


class ConfigError(ValueError):
    """An environment variable holds a value the server cannot run with."""

    def __init__(self, name: str, value: str, allowed: str) -> None:
        super().__init__(f"{name}={value!r} is not valid: {allowed}")
        self.name = name
        self.value = value


def usable_cpu_count(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may actually use: its affinity mask, capped by a cgroup CPU quota.

    ``os.cpu_count()`` reports the host's CPUs; a container limited to 2 CPUs on a 64-core host would
    otherwise fork 64 workers that fight over 2 CPUs.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota(root: Path) -> float | None:
    """CPUs granted by the cgroup (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), None when unlimited."""
    candidates = [root / "cpu.max"]
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::/"):
                candidates.insert(0, root / line[4:] / "cpu.max")
    except OSError:
        pass
    for cpu_max in candidates:
        try:
            quota, period = cpu_max.read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota == "max":
            return None
        try:
            return int(quota) / int(period)
        except (ValueError, ZeroDivisionError):
            return None
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
            period_us = int((v1 / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The bounds on what one client can make a worker hold; each broken bound has its HTTP status."""

    max_request_line_bytes: int = 8192
    """The request line (method, target, version), in bytes; longer is a 414. Default: 8192 (nginx's)."""
    max_header_bytes: int = 65536
    """The header section: each line's name and value plus 4 bytes (``: `` and CRLF); over is a 431.
    Default: 65536 (what an Application Load Balancer forwards at most)."""
    max_header_count: int = 100
    """Header lines per request; more is a 431. Default: 100 (Apache's LimitRequestFields)."""
    header_timeout_seconds: float = 10.0
    """From a request's first byte to the end of its headers; slower is a 408. A new connection that sends
    nothing is closed after this long too. Default: 10 s."""
    body_timeout_seconds: float = 30.0
    """From the end of the headers to the end of the body; slower is a 408. Default: 30 s (6 MiB at
    200 KB/s)."""
    keep_alive_seconds: float = 75.0
    """An idle connection between requests is closed after this long. Default: 75 s, longer than a load
    balancer's 60 s, so the balancer closes first and never sends on a connection being closed."""
    max_connections: int | None = None
    """Open connections per worker. At the limit the longest-waiting unanswered connections are closed to
    make room. Default: the open-file limit (RLIMIT_NOFILE) minus a reserve of 64, at most 10,000."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the server needs to know about its environment, read once by ``from_env``."""

    port: int = CONTAINER_PORT
    """TCP port to listen on; 0 takes a free one, which the start-up log line names (for tests and local
    runs: nothing can take the port between choosing and binding it). Default: 8080."""
    workers: int = field(default_factory=usable_cpu_count)
    """Worker processes. Default: the CPUs this container may use."""
    timeout_seconds: float = 60.0
    """Longest a request may wait for its prediction before a 504. Default: 60 s."""
    default_accept: str = JSON
    """Response type when the client sends no Accept, or ``*/*``. Default: application/json."""
    log_level: int = logging.INFO
    """Default: INFO."""
    max_payload_mb: int = 6
    """Largest request body, in MiB, before a 413. Default: 6 (SageMaker real-time's limit)."""
    model_dir: Path = Path(MODEL_DIR)
    """Default: /opt/ml/model."""
    predict_method: str = "predict"
    """``predict`` or ``predict_proba``. Default: predict."""
    max_batch_rows: int = 256
    """Most rows one coalesced predict call may hold. Default: 256."""
    max_batch_wait_ms: float = 0.0
    """How long the first request of a batch waits for company. Default: 0 (only natural coalescing)."""
    skops_trusted_types: tuple[str, ...] = ()
    """Extra types a model.skops file may contain. Default: none beyond skops' own and library classes."""
    json_response: str = "list"
    """``list``: a JSON answer is a bare list of predictions, as AWS's scikit-learn container answers;
    ``predictions``: ``{"predictions": [...]}``. Default: list."""
    program: str | None = None
    """SAGEMAKER_PROGRAM: the user's inference script. Default: ``inference.py`` in the code directory."""
    submit_directory: str | None = None
    """SAGEMAKER_SUBMIT_DIRECTORY: where the user's code is. Default: ``code/`` in the model directory."""
    use_compiled: bool = True
    """INFERENCE_USE_COMPILED: serve ``model.onnx`` with ONNX Runtime when pack_model verified it against the
    native model beside it (``loaders/compiled.py``); false serves the native model. Default: true."""
    limits: HttpLimits = field(default_factory=lambda: HttpLimits())
    """What a client may make a worker hold. Default: ``HttpLimits()``."""
    multi_model: bool = False
    """SAGEMAKER_MULTI_MODEL=true: serve the models SageMaker loads with ``POST /models`` instead of the one
    in ``model_dir`` (``registry.py``). The server then runs one worker process, whatever ``workers`` says
    (see ``registry.py`` for why). Default: false."""
    multi_model_dir: Path = Path(MULTI_MODEL_DIR)
    """INFERENCE_MULTI_MODEL_DIR: the directory every ``url`` of ``POST /models`` must lie in; any other path
    is a 400 (a model.joblib is a pickle: loading one runs its code). Default: /opt/ml/models, where
    SageMaker puts them."""
    multi_model_memory_mb: int | None = None
    """INFERENCE_MULTI_MODEL_MEMORY_MB: how much memory, in MiB, the loaded models may hold together; a load
    that would go over it is a 507, so SageMaker unloads a model and tries again. Each model is counted as
    the larger of the growth of the process's resident memory while it loaded and its files' size. Default:
    no budget (a load is still a 507 when the memory the container has left is smaller than the model's
    files, or when loading raises MemoryError)."""

    @property
    def worker_processes(self) -> int:
        """The processes the supervisor forks: ``workers``, or one in multi-model mode."""
        return 1 if self.multi_model else self.workers

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """Read and validate the environment. An empty value counts as unset.

        Raises:
            ConfigError: a variable holds a value outside what is allowed; the message names it.
        """
        env = os.environ if environ is None else environ

        def get(name: str, parse: Callable[[str, str], _T], default: _T) -> _T:
            raw = env.get(name, "").strip()
            return parse(name, raw) if raw else default

        return cls(
            port=get(ENV_BIND_TO_PORT, _int_between(0, 65535), CONTAINER_PORT),
            workers=get(ENV_WORKERS, _int_between(1, 1024), None) or usable_cpu_count(),
            timeout_seconds=get(
                ENV_TIMEOUT, _number("seconds", 0, MAX_TIMEOUT_SECONDS, above_low=True), 60.0
            ),
            default_accept=get(ENV_DEFAULT_ACCEPT, _one_of(CONTENT_TYPES), JSON),
            log_level=get(ENV_LOG_LEVEL, _log_level, logging.INFO),
            max_payload_mb=get(ENV_MAX_PAYLOAD_MB, _int_between(1, 1024), 6),
            model_dir=Path(get(ENV_MODEL_DIR, lambda _name, raw: raw, MODEL_DIR)),
            predict_method=get(ENV_PREDICT_METHOD, _one_of(PREDICT_METHODS), "predict"),
            max_batch_rows=get(ENV_MAX_BATCH_ROWS, _int_between(1, 1_000_000), 256),
            max_batch_wait_ms=get(ENV_MAX_BATCH_WAIT_MS, _number("milliseconds", 0, 1000), 0.0),
            skops_trusted_types=get(ENV_SKOPS_TRUSTED_TYPES, _name_list, ()),
            json_response=get(ENV_JSON_RESPONSE, _one_of(JSON_RESPONSES), "list"),
            use_compiled=get(ENV_USE_COMPILED, _boolean, True),
            program=get(ENV_PROGRAM, lambda _name, raw: raw, None),
            submit_directory=get(ENV_SUBMIT_DIRECTORY, lambda _name, raw: raw, None),
            multi_model=get(ENV_MULTI_MODEL, _boolean, False),
            multi_model_dir=Path(get(ENV_MULTI_MODEL_DIR, _absolute_path, MULTI_MODEL_DIR)),
            multi_model_memory_mb=get(ENV_MULTI_MODEL_MEMORY_MB, _int_between(1, 16 * 1024 * 1024), None),
            limits=HttpLimits(
                max_request_line_bytes=get(ENV_MAX_REQUEST_LINE_BYTES, _int_between(256, 1024 * 1024), 8192),
                max_header_bytes=get(ENV_MAX_HEADER_BYTES, _int_between(1024, 16 * 1024 * 1024), 65536),
                max_header_count=get(ENV_MAX_HEADER_COUNT, _int_between(8, 10_000), 100),
                header_timeout_seconds=get(ENV_HEADER_TIMEOUT, _seconds, 10.0),
                body_timeout_seconds=get(ENV_BODY_TIMEOUT, _seconds, 30.0),
                keep_alive_seconds=get(ENV_KEEP_ALIVE, _seconds, 75.0),
                max_connections=get(ENV_MAX_CONNECTIONS, _int_between(16, 1_000_000), None),
            ),
        )


def _int_between(low: int, high: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ConfigError(name, raw, f"must be a whole number from {low} to {high}")
        return value

    return parse


def _number(unit: str, low: float, high: float, *, above_low: bool = False) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not ((low < value) if above_low else (low <= value)) or not value <= high:
            bounds = f"above {low:g} and at most {high:g}" if above_low else f"from {low:g} to {high:g}"
            raise ConfigError(name, raw, f"must be a number of {unit} {bounds}")
        return value

    return parse


_seconds: Final = _number("seconds", 0, MAX_TIMEOUT_SECONDS, above_low=True)


def _one_of(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.lower()
        if value not in choices:
            raise ConfigError(name, raw, f"must be one of {', '.join(choices)}")
        return value

    return parse


def _log_level(name: str, raw: str) -> int:
    if raw.upper() in LOG_LEVELS:
        return LOG_LEVELS[raw.upper()]
    if raw.isdigit() and 0 <= int(raw) <= logging.CRITICAL:
        return int(raw)
    raise ConfigError(name, raw, "must be DEBUG, INFO, WARNING, ERROR, CRITICAL or a number from 0 to 50")


def _boolean(name: str, raw: str) -> bool:
    value = raw.lower()
    if value not in ("true", "false"):
        raise ConfigError(name, raw, "must be true or false")
    return value == "true"


def _absolute_path(name: str, raw: str) -> str:
    if not raw.startswith("/"):
        raise ConfigError(name, raw, "must be an absolute path")
    return raw


def _name_list(_name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())
