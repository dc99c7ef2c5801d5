"""The container contract every deployment target honours, written once for the constructs.

The inference server declares the same names in ``inference_image/sklearn_server/config.py``;
``tests/unit/test_contract.py`` checks that the two sides agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

CONTAINER_PORT: Final = 8080
"""The port SageMaker sends traffic to; ECS and Kubernetes use the same one."""

MODEL_DIR: Final = "/opt/ml/model"
"""Where model.tar.gz is unpacked before the server starts (read-only to the server)."""

PING_PATH: Final = "/ping"
INVOCATIONS_PATH: Final = "/invocations"
MODELS_PATH: Final = "/models"
"""Multi-model mode's routes: ``POST /models`` loads, ``POST /models/{name}/invoke`` invokes one model."""

MODEL_FILENAMES: Final = ("model.joblib", "model.skops", "xgboost-model", "model.txt", "model.onnx")
"""The model files the server loads; exactly one must be present in MODEL_DIR (but see below)."""

COMPILED_MODEL_FILENAME: Final = "model.onnx"
COMPILED_NATIVE_FILENAMES: Final = ("model.joblib", "model.skops")
"""A compiled archive (``pack_model(..., compile="onnx")``) holds COMPILED_MODEL_FILENAME beside one of
these native models; model-metadata.json's ``compiled`` record says whether the server may serve it."""

MODEL_METADATA_FILENAME: Final = "model-metadata.json"
"""Written by pack_model(): the scikit-learn version the model was trained with, and its shape."""

# Environment variable names (the sagemaker-inference-toolkit names users already know, then ours).
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
ENV_MULTI_MODEL: Final = "SAGEMAKER_MULTI_MODEL"
"""The switch AWS's own containers read: ``true`` serves the models SageMaker loads with ``POST /models``.
The SageMaker ``Model`` sets it for a multi-model artifact (``ModelArtifact.from_multi_model_prefix``) and
refuses it in ``environment``; the server reads it as a server-only setting (not in CONTAINER_ENV_NAMES)."""
MULTI_MODEL_ENABLED: Final = "true"

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

PREDICT_METHODS: Final = ("predict", "predict_proba")
CONTENT_TYPES: Final = ("text/csv", "application/json", "application/jsonlines", "application/x-npy")
"""The media types /invocations writes, and reads."""
INPUT_ONLY_CONTENT_TYPES: Final = ("application/x-npz",)
"""The media types /invocations reads but does not write."""
JSON_RESPONSES: Final = ("list", "predictions")


def container_environment(
    *,
    workers: int | None = None,
    timeout_seconds: int | None = None,
    default_accept: str | None = None,
    log_level: str | None = None,
    predict_method: str | None = None,
    json_response: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the container environment every target passes, with only the values the caller set.

    Args:
        workers: server worker processes. Default: the container's CPU count.
        timeout_seconds: per-request timeout. Default: 60 s (the server's default).
        default_accept: response type for ``Accept: */*`` or none. Default: application/json.
        log_level: DEBUG, INFO, WARNING or ERROR. Default: INFO.
        predict_method: ``predict`` or ``predict_proba``. Default: predict.
        json_response: ``list`` (a bare list, as AWS's scikit-learn container answers) or ``predictions``
            (``{"predictions": [...]}``). Default: list.
        extra: more variables, passed through unchanged. Default: none.

    Raises:
        ValueError: a value the server would reject at start.
    """
    env: dict[str, str] = {}
    if workers is not None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        env[ENV_WORKERS] = str(workers)
    if timeout_seconds is not None:
        if not 1 <= timeout_seconds <= 3600:
            raise ValueError(f"timeout_seconds must be 1-3600, got {timeout_seconds}")
        env[ENV_TIMEOUT] = str(timeout_seconds)
    if default_accept is not None:
        if default_accept not in CONTENT_TYPES:
            raise ValueError(
                f"default_accept must be one of {', '.join(CONTENT_TYPES)}, got {default_accept!r}"
            )
        env[ENV_DEFAULT_ACCEPT] = default_accept
    if log_level is not None:
        if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"log_level must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        env[ENV_LOG_LEVEL] = log_level.upper()
    if predict_method is not None:
        if predict_method not in PREDICT_METHODS:
            raise ValueError(
                f"predict_method must be one of {', '.join(PREDICT_METHODS)}, got {predict_method!r}"
            )
        env[ENV_PREDICT_METHOD] = predict_method
    if json_response is not None:
        if json_response not in JSON_RESPONSES:
            raise ValueError(
                f"json_response must be one of {', '.join(JSON_RESPONSES)}, got {json_response!r}"
            )
        env[ENV_JSON_RESPONSE] = json_response
    env.update(extra or {})
    return env
