"""Endpoint-wide options that write to S3: asynchronous inference and data capture.

Both name a bucket and key prefixes rather than raw ``s3://`` strings, so the endpoint can grant its role
``s3:PutObject`` on exactly those prefixes (and the bucket's KMS key, when it has one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import Token
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

_CONTENT_TYPE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*/[a-zA-Z0-9](-*[a-zA-Z0-9.])*")
_MAX_CONTENT_TYPES: Final = 10
MAX_PREFIX_LENGTH: Final = 400
"""Leaves room for ``s3://`` and a 63-character bucket name in SageMaker's 512-character S3 URIs."""


@dataclass(frozen=True, kw_only=True)
class AsyncInference:
    """Queue requests and write responses to S3: for payloads up to 1 GB and runs up to an hour.

    Callers upload the request to ``input_prefix`` and call InvokeEndpointAsync; SageMaker writes the
    response under ``output_prefix`` (or the error under ``failure_prefix``) and can notify SNS topics.
    """

    bucket: s3.IBucket
    """The bucket holding requests, responses and failures (SageMaker's S3 output path). Required."""
    output_prefix: str = "async-inference/output/"
    """Key prefix of responses. Default: async-inference/output/."""
    failure_prefix: str = "async-inference/failures/"
    """Key prefix of failed inferences. Default: async-inference/failures/."""
    input_prefix: str = "async-inference/input/"
    """Key prefix callers upload requests to (all the endpoint reads). Default: async-inference/input/."""
    success_topic: sns.ITopic | None = None
    """SNS topic notified when an inference succeeds. Default: no notification."""
    error_topic: sns.ITopic | None = None
    """SNS topic notified when an inference fails. Default: no notification."""
    max_concurrent_invocations_per_instance: int | None = None
    """Requests SageMaker sends to one instance at a time (1-1000). Default: chosen by SageMaker."""
    encryption_key: kms.IKey | None = None
    """KMS key SageMaker encrypts the responses with. Default: the bucket's encryption."""

    def __post_init__(self) -> None:
        require(
            "async_inference.bucket", self.bucket, "an S3 bucket (the output path responses are written to)"
        )
        for name in ("output_prefix", "failure_prefix", "input_prefix"):
            validate_prefix(f"async_inference.{name}", getattr(self, name))
        concurrency = self.max_concurrent_invocations_per_instance
        if concurrency is not None and not Token.is_unresolved(concurrency) and not 1 <= concurrency <= 1000:
            raise ValueError(f"max_concurrent_invocations_per_instance must be 1-1000, got {concurrency}")

    @property
    def output_path(self) -> str:
        return s3_uri(self.bucket, self.output_prefix)

    @property
    def failure_path(self) -> str:
        return s3_uri(self.bucket, self.failure_prefix)


@dataclass(frozen=True, kw_only=True)
class DataCapture:
    """Record a sample of requests and responses to S3, for Model Monitor or your own drift checks."""

    bucket: s3.IBucket
    """Where captured records are written. Required."""
    prefix: str = "data-capture/"
    """Key prefix of captured records. Default: data-capture/."""
    sampling_percentage: int = 100
    """Share of requests captured, 0-100. Default: 100."""
    capture_input: bool = True
    """Record request payloads. Default: True."""
    capture_output: bool = True
    """Record response payloads. Default: True."""
    csv_content_types: Sequence[str] = ("text/csv",)
    """Content types recorded as CSV (up to 10). Default: text/csv."""
    json_content_types: Sequence[str] = ("application/json",)
    """Content types recorded as JSON (up to 10). Default: application/json."""
    encryption_key: kms.IKey | None = None
    """KMS key SageMaker encrypts the captured records with. Default: the bucket's encryption."""

    def __post_init__(self) -> None:
        require("data_capture.bucket", self.bucket, "an S3 bucket (the destination of captured records)")
        validate_prefix("data_capture.prefix", self.prefix)
        percentage = self.sampling_percentage
        if not Token.is_unresolved(percentage) and not 0 <= percentage <= 100:
            raise ValueError(f"sampling_percentage must be 0-100, got {percentage}")
        if not (self.capture_input or self.capture_output):
            raise ValueError("data_capture needs capture_input or capture_output (or both), got neither")
        for name in ("csv_content_types", "json_content_types"):
            types = list(getattr(self, name))
            if len(types) > _MAX_CONTENT_TYPES:
                raise ValueError(f"{name} takes at most {_MAX_CONTENT_TYPES} content types, got {len(types)}")
            for content_type in types:
                if not Token.is_unresolved(content_type) and not _CONTENT_TYPE.fullmatch(content_type):
                    raise ValueError(f"{name} must hold media types like text/csv, got {content_type!r}")

    @property
    def destination(self) -> str:
        return s3_uri(self.bucket, self.prefix)

    @property
    def capture_modes(self) -> list[str]:
        if self.capture_input and self.capture_output:
            return ["InputAndOutput"]
        return ["Input"] if self.capture_input else ["Output"]


def require(name: str, value: object, allowed: str) -> None:
    """A required value that an untyped caller left out."""
    if value is None:
        raise ValueError(f"{name} must be {allowed}, got None")


def validate_prefix(name: str, prefix: str) -> None:
    if Token.is_unresolved(prefix):
        return
    if prefix.startswith(("/", "s3://")) or "*" in prefix:
        raise ValueError(
            f"{name} must be an S3 key prefix such as 'output/' (no leading '/', no s3://, no '*'), "
            f"got {prefix!r}"
        )
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(f"{name} must be at most {MAX_PREFIX_LENGTH} characters, got {len(prefix)}")


def s3_uri(bucket: s3.IBucket, prefix: str) -> str:
    return f"s3://{bucket.bucket_name}/{prefix}"
