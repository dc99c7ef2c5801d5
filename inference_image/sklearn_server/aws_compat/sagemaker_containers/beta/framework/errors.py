"""The errors user scripts raise or catch, as in aws/sagemaker-containers ``_errors.py``."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Error class used to separate framework and user errors."""


class UnsupportedFormatError(Exception):
    """A content type the encoders cannot read or write: a 415 from input_fn, a 406 from output_fn."""

    def __init__(self, content_type: str, **kwargs: Any) -> None:
        self.message = (
            f"Content type {content_type} is not supported by this framework. Please implement input_fn to "
            "deserialize the request data or an output_fn to serialize the response."
        )
        super().__init__(self.message, **kwargs)
