"""FargateInferenceService refuses at synth time what Fargate, ECS or ELB would refuse or break at deploy.

Each numeric limit is pinned on both edges in test_fargate_boundaries.py; this module holds the messages,
the shapes and the combinations.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Stack, Token
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53

from ml_inference_cdk import ContainerImage, FargateInferenceService, ModelArtifact

IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-inference:1.0.0"
MODEL_URI = "s3://models-bucket/iris/v1/model.tar.gz"


def create(stack: Stack | None = None, **props: Any) -> FargateInferenceService:
    return FargateInferenceService(
        stack or Stack(App(), "Test"),
        "Inference",
        image=ContainerImage.from_image_uri(IMAGE_URI),
        model_artifact=ModelArtifact.from_s3_uri(MODEL_URI),
        **props,
    )


def test_cpu_must_be_a_fargate_size() -> None:
    with pytest.raises(
        ValueError, match=r"cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384.*got 3072"
    ):
        create(cpu=3072, memory_limit_mib=6144)


def test_memory_must_be_in_the_range_fargate_offers_for_the_cpu() -> None:
    with pytest.raises(
        ValueError, match=r"memory_limit_mib must be 2048-8192 in steps of 1024 for cpu 1024.*got 1024"
    ):
        create(cpu=1024, memory_limit_mib=1024)


def test_the_smallest_task_offers_only_half_one_and_two_gib() -> None:
    with pytest.raises(ValueError, match=r"memory_limit_mib must be 512, 1024 or 2048 for cpu 256.*got 1536"):
        create(cpu=256, memory_limit_mib=1536)


def test_log_retention_must_be_a_retention_days_member() -> None:
    with pytest.raises(ValueError, match=r"log_retention must be a aws_logs.RetentionDays member.*got 30"):
        create(log_retention=30)


def test_the_cpu_architecture_is_x86_64_or_arm64() -> None:
    with pytest.raises(ValueError, match="cpu_architecture must be 'X86_64' or 'ARM64', got 'arm'"):
        create(cpu_architecture="arm")


def test_a_domain_name_needs_its_hosted_zone() -> None:
    with pytest.raises(ValueError, match=r"domain_name 'ml\.example\.com' needs hosted_zone"):
        create(domain_name="ml.example.com")


def test_a_hosted_zone_needs_a_domain_name() -> None:
    stack = Stack(App(), "Test")
    zone = route53.HostedZone.from_hosted_zone_attributes(
        stack, "Zone", hosted_zone_id="Z1", zone_name="example.com"
    )

    with pytest.raises(ValueError, match="hosted_zone was given without domain_name"):
        create(stack, hosted_zone=zone)


def test_ecs_exec_must_be_asked_for_together_with_a_writable_root_filesystem() -> None:
    with pytest.raises(ValueError, match="enable_execute_command=True needs read_only_root_filesystem=False"):
        create(enable_execute_command=True)


def test_the_family_must_be_a_valid_task_definition_family() -> None:
    with pytest.raises(
        ValueError, match=r"family must be 1-255 letters, digits, hyphens or underscores, got 'ml inference'"
    ):
        create(family="ml inference")


def test_the_container_name_must_be_valid() -> None:
    with pytest.raises(ValueError, match="container_name must be 1-255 letters"):
        create(container_name="inference/server")


def test_the_container_name_cannot_be_the_loaders() -> None:
    with pytest.raises(ValueError, match="container_name 'model-loader' is taken by the model loader"):
        create(container_name="model-loader")


def test_allowed_cidrs_cannot_be_empty() -> None:
    with pytest.raises(ValueError, match=r"allowed_cidrs must hold at least one CIDR"):
        create(allowed_cidrs=[])


def test_nothing_is_created_when_validation_fails() -> None:
    stack = Stack(App(), "Test")

    with pytest.raises(ValueError, match="desired_count"):
        create(stack, desired_count=-1)

    assert stack.node.children == []


def test_unresolved_tokens_are_left_for_deploy_time() -> None:
    stack = Stack(App(), "Test")
    count = CfnParameter(stack, "Count", type="Number", default=2).value_as_number
    assert Token.is_unresolved(count)

    create(
        stack, desired_count=count, min_capacity=1, max_capacity=4, log_retention=logs.RetentionDays.ONE_WEEK
    )
