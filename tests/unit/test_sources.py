"""Every construct that runs the image refuses a plain value for ``image`` or ``model_artifact`` at once.

Without the check, ``image="<uri>"`` failed deep inside ``bind()`` as ``AttributeError: 'str' object has no
attribute 'bind'``. The TypeError names the parameter, what it got and the factory to pass instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from ml_inference_cdk import (
    ContainerImage,
    EksInferenceDeployment,
    FargateInferenceService,
    InferenceRepository,
    ModelArtifact,
    SageMakerEndpoint,
)

IMAGE_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference:1.0.0"
MODEL_URI = "s3://models-bucket/iris/model.tar.gz"
ENV = {"account": "123456789012", "region": "eu-west-1"}


def cluster_in(stack: Stack) -> eks.ICluster:
    provider = eks.KubectlProvider.from_kubectl_provider_attributes(
        stack,
        "KubectlProvider",
        service_token="arn:aws:lambda:eu-west-1:123456789012:function:kubectl-provider",
        role=iam.Role.from_role_arn(stack, "KubectlRole", "arn:aws:iam::123456789012:role/kubectl"),
    )
    return eks.Cluster.from_cluster_attributes(
        stack, "Cluster", cluster_name="existing", kubectl_provider=provider
    )


Build = Callable[[Stack, Any, Any], object]

CONSTRUCTS: dict[str, Build] = {
    "SageMakerEndpoint": lambda stack, image, artifact: SageMakerEndpoint(
        stack, "Inference", image=image, model_artifact=artifact
    ),
    "FargateInferenceService": lambda stack, image, artifact: FargateInferenceService(
        stack, "Inference", image=image, model_artifact=artifact
    ),
    "EksInferenceDeployment": lambda stack, image, artifact: EksInferenceDeployment(
        stack, "Inference", cluster=cluster_in(stack), image=image, model_artifact=artifact
    ),
}


def build(construct: str, *, image: Any = None, model_artifact: Any = None) -> Stack:
    stack = Stack(App(), "Test", env=ENV)
    CONSTRUCTS[construct](
        stack,
        image if image is not None else ContainerImage.from_image_uri(IMAGE_URI),
        model_artifact if model_artifact is not None else ModelArtifact.from_s3_uri(MODEL_URI),
    )
    return stack


def refused(construct: str, **sources: Any) -> str:
    with pytest.raises(TypeError) as raised:
        build(construct, **sources)
    return str(raised.value)


@pytest.mark.parametrize("construct", CONSTRUCTS)
def test_an_image_uri_string_is_refused_naming_from_image_uri(construct: str) -> None:
    message = refused(construct, image=IMAGE_URI)

    assert message == (
        f"image must be a ContainerImage, got the str {IMAGE_URI!r}; "
        f"pass ContainerImage.from_image_uri({IMAGE_URI!r}) to run an image already pushed"
    )


@pytest.mark.parametrize("construct", CONSTRUCTS)
def test_an_s3_uri_string_is_refused_naming_from_s3_uri(construct: str) -> None:
    message = refused(construct, model_artifact=MODEL_URI)

    assert message == (
        f"model_artifact must be a ModelArtifact, got the str {MODEL_URI!r}; "
        f"pass ModelArtifact.from_s3_uri({MODEL_URI!r}) to serve an object already in S3"
    )


@pytest.mark.parametrize("construct", CONSTRUCTS)
def test_a_refused_source_leaves_nothing_in_the_stack(construct: str) -> None:
    stack = Stack(App(), "Test", env=ENV)

    with pytest.raises(TypeError, match="image must be a ContainerImage"):
        CONSTRUCTS[construct](stack, IMAGE_URI, ModelArtifact.from_s3_uri(MODEL_URI))

    assert stack.node.try_find_child("Inference") is None


def test_a_build_folder_for_image_names_from_asset(tmp_path: Path) -> None:
    message = refused("SageMakerEndpoint", image=str(tmp_path))

    assert f"pass ContainerImage.from_asset({str(tmp_path)!r})" in message


def test_a_repository_for_image_names_from_repository() -> None:
    repository = InferenceRepository(Stack(App(), "Other"), "Repository")

    message = refused("SageMakerEndpoint", image=repository)

    assert message.startswith("image must be a ContainerImage, got an InferenceRepository; ")
    assert "ContainerImage.from_repository(repository, tag=...)" in message


def test_a_local_path_for_model_artifact_names_from_asset() -> None:
    message = refused("SageMakerEndpoint", model_artifact=Path("build/model/model.tar.gz"))

    assert message == (
        "model_artifact must be a ModelArtifact, got the PosixPath 'build/model/model.tar.gz'; "
        "pass ModelArtifact.from_asset('build/model/model.tar.gz') to upload a local archive"
    )


def test_a_bucket_for_model_artifact_names_from_bucket() -> None:
    bucket = s3.Bucket.from_bucket_name(Stack(App(), "Other"), "Models", "models-bucket")

    message = refused("SageMakerEndpoint", model_artifact=bucket)

    assert "ModelArtifact.from_bucket(bucket, key)" in message


def test_anything_else_lists_every_factory() -> None:
    message = refused("SageMakerEndpoint", image=42)

    assert message == (
        "image must be a ContainerImage, got an int; pass ContainerImage.from_asset(directory), "
        ".from_repository(repository, tag=...) or .from_image_uri(uri)"
    )
    assert re.search(
        r"ModelArtifact\.from_asset\(path\), \.from_bucket\(bucket, key\) or \.from_s3_uri\(uri\)",
        refused("SageMakerEndpoint", model_artifact=42),
    )
