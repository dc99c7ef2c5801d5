"""One FargateInferenceService in a stack of its own, as the Fargate unit tests build it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_cdk import App, Aspects, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk.assertions import Template

from ml_inference_cdk import ContainerImage, FargateInferenceService, ModelArtifact
from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn

IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-inference:1.0.0"
MODEL_URI = "s3://models-bucket/iris/v1/model.tar.gz"
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"

Configure = Callable[[Stack], dict[str, Any]]
"""Builds props that need the stack (a certificate, a hosted zone) and returns them."""


def build(configure: Configure | None = None, **props: Any) -> tuple[Stack, FargateInferenceService]:
    """A stack with one service on a pinned image and an S3 model (no assets to hash)."""
    stack = Stack(App(), "Test")
    Aspects.of(stack).add(DropImpliedDependsOn())  # as every stack of the app does (cfn-lint W3005)
    extra = configure(stack) if configure is not None else {}
    service = FargateInferenceService(
        stack,
        "Inference",
        image=ContainerImage.from_image_uri(IMAGE_URI),
        model_artifact=ModelArtifact.from_s3_uri(MODEL_URI),
        **{**props, **extra},
    )
    return stack, service


def template_of(configure: Configure | None = None, **props: Any) -> Template:
    return Template.from_stack(build(configure, **props)[0])


def with_certificate(stack: Stack) -> dict[str, Any]:
    return {"certificate": acm.Certificate.from_certificate_arn(stack, "Certificate", CERTIFICATE_ARN)}
