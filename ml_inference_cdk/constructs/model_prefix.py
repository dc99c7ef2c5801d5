"""Model data under an S3 prefix, which only SageMaker serves: a multi-model endpoint's models, or one
model's files uncompressed.

Made by ``ModelArtifact.from_multi_model_prefix`` / ``.from_uncompressed_prefix`` (and their ``_s3_uri``
twins). Binding grants read on exactly the objects under the prefix, never the bucket: ``s3:GetObject`` on
``PREFIX*``, plus, for uncompressed data (SageMaker lists the prefix to copy every object under it),
``s3:ListBucket`` on the bucket limited by an ``s3:prefix`` condition. A multi-model endpoint downloads only
the object a request names (``PREFIX`` + ``TargetModel``), so its role gets no listing.
"""

from __future__ import annotations

import re
from typing import Final

from aws_cdk import Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ml_inference_cdk.constructs.model_artifact import ModelArtifact, ModelArtifactConfig, imported_bucket
from ml_inference_cdk.constructs.nag import acknowledge

_PREFIX_URI: Final = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>.+)")
_WILDCARDS: Final = ("*", "?")

_MULTI_MODEL_READ = (
    "A multi-model endpoint downloads the model.tar.gz a request names (TargetModel, a key under the prefix "
    "that callers choose at run time); read access is limited to the objects under the endpoint's prefix."
)
_UNCOMPRESSED_READ = (
    "Uncompressed model data is every object under the model's prefix, which SageMaker copies to "
    "/opt/ml/model; read access is limited to the objects under that prefix."
)


def validate_prefix(prefix: str) -> None:
    """A folder SageMaker accepts and IAM can grant exactly: ``models/`` (non-empty, ends with "/").

    Raises:
        ValueError: naming the prefix and what is allowed.
    """
    if Token.is_unresolved(prefix):
        return
    if not prefix or prefix.startswith("/") or not prefix.endswith("/"):
        raise ValueError(
            "prefix must be a non-empty S3 key prefix without a leading '/' and ending with '/' (the "
            "folder of the model data, e.g. 'models/'; the trailing '/' keeps the grant to exactly that "
            f"folder), got {prefix!r}"
        )
    if any(character in prefix for character in _WILDCARDS):
        raise ValueError(
            "prefix must not contain the IAM wildcards '*' or '?' (they would widen the grant), "
            f"got {prefix!r}"
        )


def parse_prefix_uri(uri: str) -> tuple[str, str]:
    """(bucket name, prefix) of ``s3://BUCKET/PREFIX/``.

    Raises:
        ValueError: not such a URI; the message shows one.
    """
    match = _PREFIX_URI.fullmatch(uri) if not Token.is_unresolved(uri) else None
    if match is None or not match["prefix"].endswith("/"):
        raise ValueError(
            "uri must be s3://BUCKET/PREFIX/ with a bucket name of 3-63 lowercase letters, digits, '.' and "
            f"'-' and a prefix ending with '/', e.g. s3://my-models/tenants/, got {uri!r}"
        )
    validate_prefix(match["prefix"])
    return match["bucket"], match["prefix"]


class PrefixArtifact(ModelArtifact):
    """An S3 prefix of model data (see the module docstring); made by the ``ModelArtifact`` factories."""

    def __init__(
        self,
        *,
        bucket: s3.IBucket | None,
        bucket_name: str | None,
        prefix: str,
        multi_model: bool,
        model_caching: bool = True,
    ) -> None:
        self._bucket = bucket
        self._bucket_name = bucket_name
        self._prefix = prefix
        self._multi_model = multi_model
        self._model_caching = model_caching

    @property
    def single_archive(self) -> bool:
        return False

    @property
    def multi_model(self) -> bool:
        return self._multi_model

    @property
    def prefix(self) -> str:
        """The key prefix, ending with "/"."""
        return self._prefix

    def bind(self, scope: Construct, grantable: iam.IGrantable) -> ModelArtifactConfig:
        bucket = self._bucket
        if bucket is None:
            assert self._bucket_name is not None
            bucket = imported_bucket(scope, self._bucket_name)
        objects = bucket.arn_for_objects(f"{self._prefix}*")
        iam.Grant.add_to_principal(grantee=grantable, actions=["s3:GetObject"], resource_arns=[objects])
        if not self._multi_model:
            grantable.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": f"{self._prefix}*"}},
                )
            )
        if bucket.encryption_key is not None:
            bucket.encryption_key.grant_decrypt(grantable)
        if isinstance(grantable, Construct):
            from ml_inference_cdk.constructs.sagemaker.permissions import wildcard_finding

            reason = _MULTI_MODEL_READ if self._multi_model else _UNCOMPRESSED_READ
            acknowledge(grantable, {wildcard_finding(scope, objects): reason})
        return ModelArtifactConfig(
            s3_uri=f"s3://{bucket.bucket_name}/{self._prefix}",
            bucket_name=bucket.bucket_name,
            object_key=self._prefix,
            mode="MultiModel" if self._multi_model else "SingleModel",
            compressed=self._multi_model,
            model_caching=self._model_caching,
        )
