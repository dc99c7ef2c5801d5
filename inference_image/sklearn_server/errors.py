"""One exception family for everything a request can run into, each class carrying its HTTP status.

The stages raise these with a message written for the client; the HTTP boundary (``app.py``) turns any of
them into ``{"error": message}`` with ``status``. Anything else that escapes is a bug: the boundary logs
its traceback and answers a bare 500, so no traceback ever reaches a client.
"""

from __future__ import annotations

from typing import ClassVar

from sklearn_server.config import ENV_MAX_PAYLOAD_MB


class InferenceError(Exception):
    """A request that cannot be answered with a prediction; ``str(error)`` is safe to send."""

    status: ClassVar[int] = 500
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(InferenceError):
    """The body cannot be decoded, or the model refuses what it holds (a ValueError of its own)."""

    status = 400


class NotFoundError(InferenceError):
    status = 404


class MethodNotAllowedError(InferenceError):
    status = 405

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"method {method} is not allowed here; allowed: {', '.join(allowed)}")
        self.headers = ((b"allow", ", ".join(allowed).encode()),)


class NotAcceptableError(InferenceError):
    status = 406


class ConflictError(InferenceError):
    """Multi-model mode: the model is already loaded, or is being loaded or unloaded right now."""

    status = 409


class PayloadTooLargeError(InferenceError):
    """The body is over SAGEMAKER_MAX_PAYLOAD_IN_MB. The connection is closed: the rest is never read."""

    status = 413
    headers = ((b"connection", b"close"),)

    @classmethod
    def for_size(cls, size: str, limit: int) -> PayloadTooLargeError:
        """``size`` (e.g. "7000000 bytes") against ``limit`` bytes, naming the variable that sets it."""
        megabytes = limit // (1024 * 1024)
        return cls(f"the body is {size}; the limit is {limit} bytes ({ENV_MAX_PAYLOAD_MB}={megabytes})")


class UnsupportedMediaTypeError(InferenceError):
    status = 415


class ModelFailedError(InferenceError):
    """The model raised something other than a ValueError about its input: a server-side failure.

    The cause stays on ``__cause__`` for the log; the client only learns that the model failed.
    """

    status = 500

    def __init__(self, message: str = "model failed") -> None:
        super().__init__(message)


class ModelNotReadyError(InferenceError):
    status = 503


class PredictionTimeoutError(InferenceError):
    """The prediction did not finish within SAGEMAKER_MODEL_SERVER_TIMEOUT."""

    status = 504


class InsufficientStorageError(InferenceError):
    """Multi-model mode: not enough memory for one more model. SageMaker answers this status by unloading a
    model it chooses and trying the load again."""

    status = 507


class ModelLoadError(Exception):
    """The model file is missing, ambiguous, unreadable or unsuitable; the message names file and reason."""
