"""The toolkit's errors, as in aws/sagemaker-inference-toolkit ``errors.py``: ``status_code`` is the answer's
HTTP status and ``message`` its ``{"error": ...}``."""

from __future__ import annotations

from typing import Any


class UnsupportedFormatError(Exception):
    def __init__(self, content_type: str, **kwargs: Any) -> None:
        self._message = (
            f"Content type {content_type} is not supported by this framework. Please implement input_fn to "
            "deserialize the request data or an output_fn to serialize the response."
        )
        super().__init__(self._message, **kwargs)


class BaseInferenceToolkitError(Exception):
    def __init__(self, status_code: int, message: str, phrase: str) -> None:
        self.status_code = status_code
        self.message = message
        self.phrase = phrase
        super().__init__(status_code, message, phrase)


class GenericInferenceToolkitError(BaseInferenceToolkitError):
    def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None) -> None:
        message = message or "Invalid Request"
        super().__init__(status_code, message, phrase or message)
