"""FargateInferenceService refuses at synth time what Fargate, ECS or ELB would refuse or break at deploy."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Duration, Stack, Token
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53

from ml_inference_cdk import ContainerImage, FargateInferenceService, ModelArtifact
from ml_inference_cdk.constructs import fargate_validation

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


def test_memory_must_be_on_the_step_fargate_offers_for_the_cpu() -> None:
    with pytest.raises(
        ValueError, match=r"memory_limit_mib must be 16384-61440 in steps of 4096 for cpu 8192"
    ):
        create(cpu=8192, memory_limit_mib=18432)


def test_the_smallest_task_offers_only_half_one_and_two_gib() -> None:
    with pytest.raises(ValueError, match=r"memory_limit_mib must be 512, 1024 or 2048 for cpu 256.*got 1536"):
        create(cpu=256, memory_limit_mib=1536)


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        (256, 512),
        (256, 2048),
        (512, 4096),
        (1024, 8192),
        (2048, 16384),
        (4096, 30720),
        (8192, 61440),
        (16384, 122880),
    ],
)
def test_every_edge_of_the_fargate_table_is_accepted(cpu: int, memory: int) -> None:
    fargate_validation.fargate_cpu_memory(cpu, memory)


@pytest.mark.parametrize("port", [0, 65536])
def test_the_container_port_must_be_a_tcp_port(port: int) -> None:
    with pytest.raises(ValueError, match=rf"container_port must be 1-65535, got {port}"):
        create(container_port=port)


def test_the_desired_count_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="desired_count must be >= 0, got -1"):
        create(desired_count=-1)


def test_the_minimum_capacity_cannot_exceed_the_maximum() -> None:
    with pytest.raises(
        ValueError, match="min_capacity must be <= max_capacity, got min_capacity=5 and max_capacity=3"
    ):
        create(min_capacity=5, max_capacity=3)


def test_the_minimum_capacity_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="min_capacity must be >= 0, got -1"):
        create(min_capacity=-1)


def test_the_maximum_capacity_must_allow_a_task() -> None:
    with pytest.raises(ValueError, match="max_capacity must be >= 1, got 0"):
        create(min_capacity=0, max_capacity=0)


def test_the_minimum_healthy_percent_is_a_percentage() -> None:
    with pytest.raises(ValueError, match="min_healthy_percent must be 0-100, got 150"):
        create(min_healthy_percent=150, max_healthy_percent=300)


def test_the_maximum_percent_must_leave_room_to_replace_a_task() -> None:
    with pytest.raises(ValueError, match="max_healthy_percent must be greater than min_healthy_percent"):
        create(min_healthy_percent=100, max_healthy_percent=100)


def test_the_grace_period_must_fit_what_ecs_stores() -> None:
    with pytest.raises(
        ValueError, match=r"health_check_grace_period must be 0-2147483647 seconds, got 2147483648"
    ):
        create(health_check_grace_period=Duration.seconds(2**31))


def test_log_retention_must_be_a_retention_days_member() -> None:
    with pytest.raises(ValueError, match=r"log_retention must be a aws_logs.RetentionDays member.*got 30"):
        create(log_retention=30)


def test_the_cpu_architecture_is_x86_64_or_arm64() -> None:
    with pytest.raises(ValueError, match="cpu_architecture must be 'X86_64' or 'ARM64', got 'arm'"):
        create(cpu_architecture="arm")


def test_fargate_spot_is_refused_for_arm64_tasks() -> None:
    with pytest.raises(ValueError, match="spot=True is not available with cpu_architecture ARM64"):
        create(spot=True, cpu_architecture="ARM64")


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


@pytest.mark.parametrize("user", ["0", "root", "0:0", "root:root"])
def test_the_server_never_runs_as_root(user: str) -> None:
    with pytest.raises(ValueError, match=rf"user must be an unprivileged user.*got '{user}'"):
        create(user=user)


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


def test_allowed_cidrs_must_be_cidrs() -> None:
    with pytest.raises(
        ValueError, match=r"allowed_cidrs entries must be IPv4 or IPv6 CIDRs.*got '10\.0\.0\.1'"
    ):
        create(allowed_cidrs=["10.0.0.1"])


@pytest.mark.parametrize("size", [20, 201])
def test_ephemeral_storage_is_21_to_200_gib(size: int) -> None:
    with pytest.raises(ValueError, match=rf"ephemeral_storage_gib must be 21-200, got {size}"):
        create(ephemeral_storage_gib=size)


@pytest.mark.parametrize("percent", [0, 101])
def test_the_cpu_setpoint_is_a_percentage(percent: int) -> None:
    with pytest.raises(ValueError, match=rf"target_cpu_utilization_percent must be 1-100, got {percent}"):
        create(target_cpu_utilization_percent=percent)


def test_the_request_setpoint_must_be_positive() -> None:
    with pytest.raises(ValueError, match="target_requests_per_target must be >= 1, got 0"):
        create(target_requests_per_target=0)


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
