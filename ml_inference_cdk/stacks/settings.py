"""The app's configuration: cdk.json context keys, parsed once, with defaults that synth out of the box.

Every key can be overridden on the command line, e.g.
``npx cdk deploy SageMakerStack -c instanceType=ml.c5.xlarge``. Values given with ``-c`` arrive as strings;
they are converted here, then checked when the app starts by the constructs' own checks (context_checks.py).
A bad value is a ``ValueError`` that starts with the key and the value (``context instanceType=m5.large:
instance_type must be ...``), so it points at what the user typed, not at a construct parameter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constructs import Node

from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact
from ml_inference_cdk.stacks import context_checks


@dataclass(frozen=True)
class Settings:
    """Deployment settings shared by SageMakerStack, EcsStack and EksStack."""

    base_dir: Path
    """Relative paths in the context are resolved against this folder (the app's folder, never the cwd)."""
    image_directory: str = "inference_image"
    """Context ``imageDirectory``: the image's build context. Default: inference_image."""
    image_uri: str | None = None
    """Context ``imageUri``: run this already-built image instead of building the asset (local deploys,
    images built by CI). Default: none (build ``imageDirectory``)."""
    model_artifact: str = "build/model/model.tar.gz"
    """Context ``modelArtifact``: a local model.tar.gz uploaded as an asset. Default: the demo model."""
    model_s3_uri: str | None = None
    """Context ``modelS3Uri``: serve an artifact already in S3 instead. Default: none."""
    instance_type: str = "ml.m5.large"
    """Context ``instanceType``: SageMaker instance type. Default: ml.m5.large."""
    instance_count: int = 1
    """Context ``instanceCount``: SageMaker instances. Default: 1."""
    copy_image_to_repository: bool = True
    """Context ``copyImageToRepository``: copy the built image into the stack's own ECR repository
    (the ``my-repo:TAG`` flow). Ignored with ``imageUri``. Default: true."""
    training_data_s3_uri: str | None = None
    """Context ``trainingDataS3Uri``: ``s3://bucket/prefix/`` of training data; adds the retraining workflow
    (train with the image, then update the endpoint). Default: none (no workflow)."""
    training_output_s3_uri: str | None = None
    """Context ``trainingOutputS3Uri``: where retrained models go. Default: ``retraining/`` in the data's
    bucket."""
    training_hyperparameters: dict[str, str] = field(default_factory=dict)
    """Context ``trainingHyperparameters``: a JSON object, the training job's hyperparameters. Default: {}."""
    destroy_on_delete: bool = False
    """Context ``destroyOnDelete``: ``cdk destroy`` deletes the repository and its images. Default: false."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Target-specific keys (``ecs*``, ``eks*``) read by their stacks."""

    @classmethod
    def from_context(cls, node: Node, *, base_dir: Path) -> Settings:
        """Read the context keys from ``node`` (usually ``app.node``) and check their values.

        Raises:
            ValueError: a value of the wrong type, or one the constructs would refuse; the message starts
                with the context key and its value, e.g. ``context instanceType=m5.large: ...``.
        """

        def get(key: str) -> Any:
            return node.try_get_context(key)

        defaults = cls(base_dir=base_dir)
        settings = cls(
            base_dir=base_dir,
            image_directory=_text(get("imageDirectory"), "imageDirectory", defaults.image_directory),
            image_uri=_optional_text(get("imageUri")),
            model_artifact=_text(get("modelArtifact"), "modelArtifact", defaults.model_artifact),
            model_s3_uri=_optional_text(get("modelS3Uri")),
            instance_type=_text(get("instanceType"), "instanceType", defaults.instance_type),
            instance_count=_integer(get("instanceCount"), "instanceCount", defaults.instance_count),
            copy_image_to_repository=_boolean(
                get("copyImageToRepository"), "copyImageToRepository", defaults.copy_image_to_repository
            ),
            destroy_on_delete=_boolean(get("destroyOnDelete"), "destroyOnDelete", defaults.destroy_on_delete),
            training_data_s3_uri=_optional_text(get("trainingDataS3Uri")),
            training_output_s3_uri=_optional_text(get("trainingOutputS3Uri")),
            training_hyperparameters=_string_map(get("trainingHyperparameters"), "trainingHyperparameters"),
            extra={key: get(key) for key in _TARGET_KEYS if get(key) is not None},
        )
        context_checks.check(settings)
        return settings

    def image(self, **asset_options: Any) -> ContainerImage:
        """The image: ``imageUri`` when set, else an asset built from ``imageDirectory``."""
        if self.image_uri:
            with context_checks.naming({"imageUri": self.image_uri}):
                return ContainerImage.from_image_uri(self.image_uri)
        with context_checks.naming({"imageDirectory": self.image_directory}):
            return ContainerImage.from_asset(self.base_dir / self.image_directory, **asset_options)

    def model(self) -> ModelArtifact:
        """The model artifact: ``modelS3Uri`` when set, else the local ``modelArtifact`` file."""
        if self.model_s3_uri:
            with context_checks.naming({"modelS3Uri": self.model_s3_uri}):
                return ModelArtifact.from_s3_uri(self.model_s3_uri)
        with context_checks.naming({"modelArtifact": self.model_artifact}):
            return ModelArtifact.from_asset(self.base_dir / self.model_artifact)

    def integer(self, key: str, default: int) -> int:
        """A target-specific integer key (``ecsDesiredCount``, ``eksReplicas``...)."""
        return _integer(self.extra.get(key), key, default)

    def text(self, key: str) -> str | None:
        """A target-specific optional string key (``ecsCertificateArn``...)."""
        return _optional_text(self.extra.get(key))

    def boolean(self, key: str, default: bool) -> bool:
        return _boolean(self.extra.get(key), key, default)


_TARGET_KEYS = (
    "ecsDesiredCount",
    "ecsMinCapacity",
    "ecsMaxCapacity",
    "ecsCertificateArn",
    "ecsDomainName",
    "ecsHostedZoneName",
    "ecsRestrictDefaultSecurityGroup",
    "ecsExposure",
    "ecsAllowedCidrs",
    "ecsJwtIssuer",
    "ecsJwksEndpoint",
    "ecsAllowPublicHttp",
    "ecsWaf",
    "eksReplicas",
    "eksMaxReplicas",
    "eksNamespace",
    "eksPublicEndpointCidrs",
    "eksExposure",
    "eksInternetFacing",
    "eksAllowedCidrs",
    "eksCertificateArn",
    "eksAllowedNamespaces",
)
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _optional_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _string_map(value: Any, key: str) -> dict[str, str]:
    """A JSON object (or its text, as ``-c key={...}`` gives it) of string values."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"context key {key} must be a JSON object, got {value!r} ({error.msg})"
            ) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"context key {key} must be a JSON object of strings, got {value!r}")
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def _text(value: Any, key: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value:
        raise ValueError(f"context key {key} must be a non-empty string, got {value!r}")
    return value


def _integer(value: Any, key: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"context key {key} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value)
    raise ValueError(f"context key {key} must be an integer, got {value!r}")


def _boolean(value: Any, key: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"context key {key} must be true or false, got {value!r}")
