"""Where the inference image comes from: built from a directory, or already in a repository.

Modelled on aws-sagemaker-alpha's ``ContainerImage``: a small strategy object with static factories,
bound once per scope by the construct that runs it. Binding grants the pull permission, so no caller
writes ECR IAM by hand.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cdk_ecr_deployment
from aws_cdk import Stack, Token
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from ml_inference_cdk.constructs.control_tower import exempt
from ml_inference_cdk.constructs.nag import acknowledge, skip_checkov
from ml_inference_cdk.constructs.repository import InferenceRepository

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# REGISTRY[:PORT]/NAME then :TAG, @DIGEST or both; NAME holds no ':' or '@', so a short digest is no tag.
_IMAGE_URI = re.compile(
    rf"[^\s/:@]+(?::\d+)?/[^\s:@]+(?::{_TAG.pattern}|(?::{_TAG.pattern})?@{_DIGEST.pattern})"
)
_ECR_URI = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<name>[a-z0-9._/-]+?)(?P<ref>[:@].+)"
)


@dataclass(frozen=True)
class ContainerImageConfig:
    """What a bound image gives the construct that runs it."""

    image_uri: str
    """The full image reference (``REGISTRY/NAME:TAG`` or ``...@sha256:...``)."""
    dependable: IDependable | None = None
    """Something the consumer must be created after (the image copy), or None."""


class ContainerImage(abc.ABC):
    """The inference image a SageMaker model, ECS task or Kubernetes pod runs."""

    @staticmethod
    def from_asset(
        directory: str | Path,
        *,
        build_args: Mapping[str, str] | None = None,
        platform: ecr_assets.Platform | None = None,
        file: str | None = None,
        target: str | None = None,
        exclude: Sequence[str] | None = None,
        copy_to: InferenceRepository | ecr.IRepository | None = None,
        tag: str | None = None,
    ) -> ContainerImage:
        """Build the image from a directory with a Dockerfile, as a CDK Docker image asset.

        Args:
            directory: the build context (for this project: ``inference_image/``).
            build_args: Docker build arguments, e.g. ``{"BASE_IMAGE": ...}``. Default: none.
            platform: target platform. Default: linux/amd64 (what SageMaker and Fargate x86 run).
            file: Dockerfile path relative to ``directory``. Default: ``Dockerfile``.
            target: multi-stage build target. Default: the last stage.
            exclude: extra glob patterns to leave out of the context. Default: only ``.dockerignore``.
            copy_to: also copy the built image into this repository (with cdk-ecr-deployment) and run it
                from there, so it has a stable, human-readable name. Default: run it from the CDK asset
                repository.
            tag: the tag in ``copy_to``. Default: the asset hash (a new tag per build, which suits
                immutable tags).

        Raises:
            ValueError: the directory or Dockerfile is missing, or ``tag`` is not a valid image tag.
        """
        return _AssetImage(
            Path(directory),
            build_args=dict(build_args or {}),
            platform=platform or ecr_assets.Platform.LINUX_AMD64,
            file=file,
            target=target,
            exclude=list(exclude or []),
            copy_to=copy_to,
            tag=tag,
        )

    @staticmethod
    def from_repository(
        repository: InferenceRepository | ecr.IRepository,
        *,
        tag: str | None = None,
        digest: str | None = None,
    ) -> ContainerImage:
        """Run an image already pushed to an ECR repository, by tag or (better) by digest.

        Args:
            repository: the repository holding the image.
            tag: the image tag. Default: ``latest`` when no digest is given.
            digest: ``sha256:<64 hex>``; pins the exact image. Default: none.

        Raises:
            ValueError: both tag and digest, or a malformed one.
        """
        if tag is not None and digest is not None:
            raise ValueError("give either tag or digest, not both")
        if digest is not None:
            _validate_digest(digest)
            return _RepositoryImage(repository, f"@{digest}")
        tag = "latest" if tag is None else tag
        _validate_tag(tag)
        return _RepositoryImage(repository, f":{tag}")

    @staticmethod
    def from_image_uri(image_uri: str) -> ContainerImage:
        """Run an image by its full URI, e.g. one built and pushed outside CDK.

        An ECR URI (``ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME:TAG``) gets a pull grant on that
        repository; any other registry gets no grant (SageMaker needs ECR, or a private registry in a VPC).

        Raises:
            ValueError: the URI has no tag or digest.
        """
        if Token.is_unresolved(image_uri):
            raise ValueError("image_uri must be a literal string; use from_repository() for a token")
        if not _IMAGE_URI.fullmatch(image_uri):
            raise ValueError(
                f"image_uri must be REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST, got {image_uri!r}"
            )
        return _UriImage(image_uri)

    @abc.abstractmethod
    def bind(self, scope: Construct, grantable: iam.IGrantable) -> ContainerImageConfig:
        """Create what the image needs in ``scope`` (once) and let ``grantable`` pull it."""


class _AssetImage(ContainerImage):
    def __init__(
        self,
        directory: Path,
        *,
        build_args: dict[str, str],
        platform: ecr_assets.Platform,
        file: str | None,
        target: str | None,
        exclude: list[str],
        copy_to: InferenceRepository | ecr.IRepository | None,
        tag: str | None,
    ) -> None:
        if not directory.is_dir():
            raise ValueError(
                f"directory must be an existing folder with a Dockerfile, got {str(directory)!r}"
            )
        dockerfile = directory / (file or "Dockerfile")
        if not dockerfile.is_file():
            raise ValueError(f"file: no Dockerfile at {str(dockerfile)!r}")
        if tag is not None:
            if copy_to is None:
                raise ValueError("tag only applies with copy_to (the asset repository names images by hash)")
            _validate_tag(tag)
        self._directory = directory.resolve()
        self._build_args = build_args
        self._platform = platform
        self._file = file
        self._target = target
        self._exclude = exclude
        self._copy_to = copy_to
        self._tag = tag
        self._bound: dict[str, tuple[ecr_assets.DockerImageAsset, ContainerImageConfig]] = {}

    def bind(self, scope: Construct, grantable: iam.IGrantable) -> ContainerImageConfig:
        # One asset (and one copy) per stack, made in the scope that binds first: the models of a shadow test
        # or of several endpoints in one stack share the image.
        key = Stack.of(scope).node.path
        if key not in self._bound:
            self._bound[key] = self._create(scope)
        asset, config = self._bound[key]
        if self._copy_to is None:
            asset.repository.grant_pull(grantable)
        else:
            self._copy_to.grant_pull(grantable)
        return config

    def _create(self, scope: Construct) -> tuple[ecr_assets.DockerImageAsset, ContainerImageConfig]:
        asset = ecr_assets.DockerImageAsset(
            scope,
            "ImageAsset",
            directory=str(self._directory),
            build_args=self._build_args or None,
            platform=self._platform,
            file=self._file,
            target=self._target,
            exclude=self._exclude or None,
        )
        if self._copy_to is None:
            return asset, ContainerImageConfig(image_uri=asset.image_uri)
        destination = f"{self._copy_to.repository_uri}:{self._tag or asset.asset_hash}"
        copy = cdk_ecr_deployment.ECRDeployment(
            scope,
            "CopyImage",
            src=cdk_ecr_deployment.DockerImageName(asset.image_uri),
            dest=cdk_ecr_deployment.DockerImageName(destination),
        )
        _acknowledge_copy_function(scope)
        return asset, ContainerImageConfig(image_uri=destination, dependable=copy)


class _RepositoryImage(ContainerImage):
    def __init__(self, repository: InferenceRepository | ecr.IRepository, reference: str) -> None:
        self._repository = repository
        self._reference = reference

    def bind(self, scope: Construct, grantable: iam.IGrantable) -> ContainerImageConfig:
        self._repository.grant_pull(grantable)
        return ContainerImageConfig(image_uri=f"{self._repository.repository_uri}{self._reference}")


class _UriImage(ContainerImage):
    def __init__(self, image_uri: str) -> None:
        self._image_uri = image_uri
        self._ecr = _ECR_URI.fullmatch(image_uri)

    def bind(self, scope: Construct, grantable: iam.IGrantable) -> ContainerImageConfig:
        if self._ecr is not None:
            name = self._ecr["name"]
            construct_id = "ImportedRepository" + re.sub(r"[^A-Za-z0-9]", "", name)
            repository = scope.node.try_find_child(construct_id)
            if repository is None:
                arn = f"arn:aws:ecr:{self._ecr['region']}:{self._ecr['account']}:repository/{name}"
                repository = ecr.Repository.from_repository_attributes(
                    scope, construct_id, repository_arn=arn, repository_name=name
                )
            # jsii interfaces are not runtime-checkable: isinstance(x, ecr.IRepository) raises TypeError.
            cast(ecr.IRepository, repository).grant_pull(grantable)
        return ContainerImageConfig(image_uri=self._image_uri)


def _validate_tag(tag: str) -> None:
    if not Token.is_unresolved(tag) and not _TAG.fullmatch(tag):
        raise ValueError(
            f"tag must be 1-128 characters of letters, digits, _ . - (not starting with . or -), got {tag!r}"
        )


def _validate_digest(digest: str) -> None:
    if not Token.is_unresolved(digest) and not _DIGEST.fullmatch(digest):
        raise ValueError(f"digest must be sha256:<64 lowercase hex digits>, got {digest!r}")


def _acknowledge_copy_function(scope: Construct) -> None:
    """cdk-ecr-deployment's copy function is a stack singleton: acknowledge its findings where it lives."""
    stack = Stack.of(scope)
    for child in stack.node.children:
        if child.node.id.startswith("Custom::CDKECRDeployment"):
            acknowledge(
                child,
                {
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]": "cdk-ecr-deployment's copy function writes only its own "
                    "CloudWatch Logs with this policy; it runs during deployment only.",
                    "AwsSolutions-IAM5[Resource::*]": "The copy function needs ecr:GetAuthorizationToken, "
                    "which has no resource-level permissions; push and pull are granted per repository.",
                },
            )
            exempt(
                child,
                {
                    "CT.LAMBDA.PR.3": "cdk-ecr-deployment's copy function runs during deployments only, "
                    "copying the built image between two ECR repositories; the library offers no VPC "
                    "placement. copyImageToRepository=false (ContainerImage.from_asset without copy_to) "
                    "removes it.",
                },
            )
            role = child.node.try_find_child("ServiceRole")
            policy = role.node.try_find_child("DefaultPolicy") if role is not None else None
            if policy is not None:
                reason = (
                    "cdk-ecr-deployment's copy function: ecr:GetAuthorizationToken has no resource-level "
                    "permissions; reads and writes are granted on the two repositories only."
                )
                skip_checkov(policy, {"CKV_AWS_111": reason, "CKV_AWS_108": reason})
