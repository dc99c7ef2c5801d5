"""Every value and combination SageMaker would reject at deploy time is a ValueError at synth time."""

from __future__ import annotations

import pytest
from aws_cdk import CfnParameter, Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match

from ml_inference_cdk.constructs.sagemaker_deployment import (
    CapacitySize,
    DeploymentGuardrails,
    TrafficRouting,
)
from ml_inference_cdk.constructs.sagemaker_endpoint import SageMakerEndpoint
from ml_inference_cdk.constructs.sagemaker_options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker_variants import InstanceVariant, ServerlessVariant
from tests.unit.test_sagemaker_endpoint import build_endpoint, new_stack, template_of


def bucket(name: str = "some-bucket") -> s3.IBucket:
    return s3.Bucket.from_bucket_name(new_stack(), "Bucket", name)


def test_a_rejected_endpoint_creates_nothing() -> None:
    stack = new_stack()

    with pytest.raises(ValueError, match="initial_instance_count must be >= 1"):
        build_endpoint(stack, initial_instance_count=0)
    assert stack.node.try_find_child("Endpoint") is None


# --- serverless variants ----------------------------------------------------------------------------------


@pytest.mark.parametrize("memory", [512, 3000, 7168])
def test_serverless_memory_must_be_1024_to_6144_in_steps_of_1024(memory: int) -> None:
    with pytest.raises(ValueError, match=rf"memory_size_mb must be 1024-6144 in steps of 1024, got {memory}"):
        ServerlessVariant(memory_size_mb=memory)


@pytest.mark.parametrize("concurrency", [0, 201])
def test_serverless_max_concurrency_must_be_1_to_200(concurrency: int) -> None:
    with pytest.raises(ValueError, match=rf"max_concurrency must be 1-200, got {concurrency}"):
        ServerlessVariant(max_concurrency=concurrency)


@pytest.mark.parametrize("provisioned", [0, 11])
def test_serverless_provisioned_concurrency_must_be_1_to_max_concurrency(provisioned: int) -> None:
    with pytest.raises(
        ValueError, match=rf"provisioned_concurrency must be 1 to max_concurrency \(10\), got {provisioned}"
    ):
        ServerlessVariant(max_concurrency=10, provisioned_concurrency=provisioned)


# --- instance variants ------------------------------------------------------------------------------------


@pytest.mark.parametrize("instance_type", ["m5.large", "ml.m5", "ML.M5.LARGE", "t3.medium"])
def test_instance_type_must_be_an_ml_instance_type(instance_type: str) -> None:
    with pytest.raises(
        ValueError, match=rf"instance_type must be a SageMaker ML instance type .*{instance_type}"
    ):
        InstanceVariant(instance_type=instance_type)


def test_instance_type_of_the_default_variant_is_checked_too() -> None:
    with pytest.raises(ValueError, match="instance_type must be a SageMaker ML instance type"):
        build_endpoint(instance_type="c5.xlarge")


def test_initial_instance_count_must_be_at_least_1() -> None:
    with pytest.raises(ValueError, match="initial_instance_count must be >= 1, got 0"):
        build_endpoint(initial_instance_count=0)


def test_initial_weight_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match=r"initial_weight must be >= 0, got -1"):
        InstanceVariant(initial_weight=-1)


def test_at_least_one_variant_must_have_weight() -> None:
    variants = [
        InstanceVariant(name="Blue", initial_weight=0),
        InstanceVariant(name="Green", initial_weight=0),
    ]

    with pytest.raises(ValueError, match=r"at least one initial_weight must be > 0.*\[0, 0\]"):
        build_endpoint(variants=variants)


@pytest.mark.parametrize("name", ["", "-blue", "blue-", "blue_green", "a" * 64, "blue.1"])
def test_variant_name_must_match_sagemakers_pattern(name: str) -> None:
    with pytest.raises(ValueError, match="variant name must be 1-63 letters, digits or hyphens"):
        InstanceVariant(name=name)


def test_variant_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match=r"variants must have unique names, got 'Blue' more than once"):
        build_endpoint(variants=[InstanceVariant(name="Blue"), InstanceVariant(name="Blue")])


@pytest.mark.parametrize("count", [0, 11])
def test_variants_must_hold_1_to_10_variants(count: int) -> None:
    variants = [InstanceVariant(name=f"V{i}") for i in range(count)]

    with pytest.raises(ValueError, match=rf"variants must hold 1-10 variants, got {count}"):
        build_endpoint(variants=variants)


def test_instance_type_and_count_conflict_with_variants() -> None:
    with pytest.raises(
        ValueError, match="instance_type and initial_instance_count describe the default variant"
    ):
        build_endpoint(variants=[InstanceVariant()], instance_type="ml.c5.large")


# --- timeouts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [59, 3601, 90.5])
def test_container_startup_health_check_timeout_must_be_60_to_3600_whole_seconds(seconds: float) -> None:
    with pytest.raises(
        ValueError, match="container_startup_health_check_timeout must be 60-3600 whole seconds"
    ):
        build_endpoint(container_startup_health_check_timeout=Duration.millis(seconds * 1000))


@pytest.mark.parametrize("seconds", [30, 7200])
def test_model_data_download_timeout_must_be_60_to_3600_seconds(seconds: int) -> None:
    with pytest.raises(ValueError, match="model_data_download_timeout must be 60-3600 whole seconds"):
        build_endpoint(model_data_download_timeout=Duration.seconds(seconds))


def test_a_variants_own_timeout_is_checked_too() -> None:
    with pytest.raises(ValueError, match="container_startup_health_check_timeout must be 60-3600"):
        InstanceVariant(container_startup_health_check_timeout=Duration.hours(2))


# --- endpoint name ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["-iris", "iris-", "iris_classifier", "iris.v1", "x" * 64])
def test_endpoint_name_must_match_sagemakers_pattern(name: str) -> None:
    with pytest.raises(ValueError, match="endpoint_name must be 1-63 letters, digits or hyphens"):
        build_endpoint(endpoint_name=name)


def test_an_imported_endpoint_name_is_checked_too() -> None:
    with pytest.raises(ValueError, match="endpoint_name must be 1-63 letters"):
        SageMakerEndpoint.from_endpoint_name(new_stack(), "Imported", "not_valid")


# --- data capture -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("percentage", [-1, 101])
def test_data_capture_sampling_percentage_must_be_0_to_100(percentage: int) -> None:
    with pytest.raises(ValueError, match=rf"sampling_percentage must be 0-100, got {percentage}"):
        DataCapture(bucket=bucket(), sampling_percentage=percentage)


def test_data_capture_must_capture_input_or_output() -> None:
    with pytest.raises(ValueError, match="data_capture needs capture_input or capture_output"):
        DataCapture(bucket=bucket(), capture_input=False, capture_output=False)


def test_data_capture_content_types_must_be_media_types() -> None:
    with pytest.raises(
        ValueError, match="json_content_types must hold media types like text/csv, got 'json'"
    ):
        DataCapture(bucket=bucket(), json_content_types=["json"])


def test_data_capture_takes_at_most_10_content_types() -> None:
    with pytest.raises(ValueError, match="csv_content_types takes at most 10 content types, got 11"):
        DataCapture(bucket=bucket(), csv_content_types=[f"text/csv{i}" for i in range(11)])


def test_data_capture_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match=r"data_capture\.bucket must be an S3 bucket"):
        DataCapture(bucket=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["/capture/", "s3://bucket/capture/", "capture/*"])
def test_data_capture_prefix_must_be_a_key_prefix(prefix: str) -> None:
    with pytest.raises(ValueError, match=r"data_capture\.prefix must be an S3 key prefix"):
        DataCapture(bucket=bucket(), prefix=prefix)


# --- asynchronous inference -------------------------------------------------------------------------------


def test_async_inference_needs_an_output_bucket() -> None:
    with pytest.raises(ValueError, match=r"async_inference.bucket must be an S3 bucket \(the output path"):
        AsyncInference(bucket=None)  # type: ignore[arg-type]


def test_async_inference_prefixes_must_be_key_prefixes() -> None:
    with pytest.raises(ValueError, match=r"async_inference\.output_prefix must be an S3 key prefix"):
        AsyncInference(bucket=bucket(), output_prefix="s3://elsewhere/out/")


@pytest.mark.parametrize("concurrency", [0, 1001])
def test_async_max_concurrent_invocations_per_instance_must_be_1_to_1000(concurrency: int) -> None:
    with pytest.raises(
        ValueError, match=rf"max_concurrent_invocations_per_instance must be 1-1000, got {concurrency}"
    ):
        AsyncInference(bucket=bucket(), max_concurrent_invocations_per_instance=concurrency)


# --- what serverless endpoints cannot do ------------------------------------------------------------------


def test_serverless_variant_must_be_the_only_variant() -> None:
    with pytest.raises(
        ValueError, match="a ServerlessVariant must be the endpoint's only variant, got 2 variants"
    ):
        build_endpoint(variants=[ServerlessVariant(name="Cheap"), InstanceVariant(name="Fast")])


def test_serverless_variant_cannot_run_in_a_vpc() -> None:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1)

    with pytest.raises(ValueError, match="vpc cannot be used with ServerlessVariant 'AllTraffic'"):
        build_endpoint(stack, variants=[ServerlessVariant()], vpc=vpc)


def test_serverless_variant_cannot_use_network_isolation() -> None:
    with pytest.raises(ValueError, match="network_isolation cannot be used with ServerlessVariant"):
        build_endpoint(variants=[ServerlessVariant()], network_isolation=True)


def test_serverless_variant_cannot_capture_data() -> None:
    with pytest.raises(ValueError, match="data_capture cannot be used with ServerlessVariant"):
        build_endpoint(variants=[ServerlessVariant()], data_capture=DataCapture(bucket=bucket()))


def test_serverless_variant_cannot_use_deployment_guardrails() -> None:
    with pytest.raises(ValueError, match="deployment cannot be used with ServerlessVariant"):
        build_endpoint(variants=[ServerlessVariant()], deployment=DeploymentGuardrails.blue_green())


def test_serverless_variant_cannot_serve_asynchronous_inference() -> None:
    with pytest.raises(ValueError, match="async_inference cannot be used with ServerlessVariant"):
        build_endpoint(variants=[ServerlessVariant()], async_inference=AsyncInference(bucket=bucket()))


def test_serverless_variant_has_no_instance_startup_timeouts() -> None:
    with pytest.raises(ValueError, match="model_data_download_timeout cannot be used with ServerlessVariant"):
        build_endpoint(variants=[ServerlessVariant()], model_data_download_timeout=Duration.minutes(5))


# --- networking and encryption ----------------------------------------------------------------------------


def test_subnets_and_security_groups_need_a_vpc() -> None:
    with pytest.raises(ValueError, match="vpc_subnets and security_groups need vpc"):
        build_endpoint(vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS))


def test_at_most_five_security_groups() -> None:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1)
    groups = [ec2.SecurityGroup(stack, f"Group{i}", vpc=vpc) for i in range(6)]

    with pytest.raises(ValueError, match="security_groups takes 1-5 security groups, got 6"):
        build_endpoint(stack, vpc=vpc, security_groups=groups)


@pytest.mark.parametrize(
    "instance_type", ["ml.m5d.large", "ml.g4dn.xlarge", "ml.p4d.24xlarge", "ml.r6gd.large"]
)
def test_volume_encryption_key_is_rejected_on_instances_with_local_storage(instance_type: str) -> None:
    stack = new_stack()
    key = kms.Key(stack, "Key")

    with pytest.raises(
        ValueError, match=rf"volume_encryption_key cannot be used .* local NVMe storage .*{instance_type}"
    ):
        build_endpoint(stack, instance_type=instance_type, volume_encryption_key=key)


# --- deployment guardrails --------------------------------------------------------------------------------


def test_rolling_deployments_need_a_single_variant() -> None:
    rolling = DeploymentGuardrails.rolling(
        maximum_batch_size=CapacitySize.instance_count(1), wait_interval=Duration.minutes(1)
    )

    with pytest.raises(
        ValueError, match="rolling deployments on single-variant endpoints only, got 2 variants"
    ):
        build_endpoint(variants=[InstanceVariant(name="A"), InstanceVariant(name="B")], deployment=rolling)


def test_an_endpoint_takes_at_most_10_rollback_alarms() -> None:
    stack = new_stack()
    metric = cloudwatch.Metric(namespace="Custom", metric_name="Errors")
    alarms = [
        cloudwatch.Alarm(stack, f"Alarm{i}", metric=metric, threshold=1, evaluation_periods=1)
        for i in range(5)
    ]
    variants = [InstanceVariant(name=f"V{i}") for i in range(3)]

    with pytest.raises(ValueError, match=r"at most 10 rollback alarms, got 11"):
        build_endpoint(stack, variants=variants, deployment=DeploymentGuardrails.blue_green(alarms=alarms))


def test_guardrails_take_at_most_10_alarms_of_their_own() -> None:
    stack = new_stack()
    metric = cloudwatch.Metric(namespace="Custom", metric_name="Errors")
    alarms = [
        cloudwatch.Alarm(stack, f"Alarm{i}", metric=metric, threshold=1, evaluation_periods=1)
        for i in range(11)
    ]

    with pytest.raises(ValueError, match="alarms takes at most 10 alarms, got 11"):
        DeploymentGuardrails.blue_green(alarms=alarms)


def test_termination_wait_must_be_at_most_an_hour() -> None:
    with pytest.raises(ValueError, match="termination_wait must be 0-3600 whole seconds"):
        DeploymentGuardrails.blue_green(termination_wait=Duration.hours(2))


@pytest.mark.parametrize("timeout", [Duration.minutes(5), Duration.hours(9)])
def test_maximum_execution_timeout_must_be_600_to_28800_seconds(timeout: Duration) -> None:
    with pytest.raises(ValueError, match="maximum_execution_timeout must be 600-28800 whole seconds"):
        DeploymentGuardrails.blue_green(maximum_execution_timeout=timeout)


def test_traffic_routing_wait_must_be_at_most_an_hour() -> None:
    with pytest.raises(ValueError, match="wait must be 0-3600 whole seconds"):
        TrafficRouting.canary(size=CapacitySize.percent(10), wait=Duration.hours(2))


def test_rolling_wait_interval_must_be_at_most_an_hour() -> None:
    with pytest.raises(ValueError, match="wait_interval must be 0-3600 whole seconds"):
        DeploymentGuardrails.rolling(
            maximum_batch_size=CapacitySize.percent(50), wait_interval=Duration.hours(2)
        )


@pytest.mark.parametrize("percentage", [0, 101])
def test_capacity_percent_must_be_1_to_100(percentage: int) -> None:
    with pytest.raises(ValueError, match=rf"percent must be 1-100, got {percentage}"):
        CapacitySize.percent(percentage)


def test_capacity_instance_count_must_be_at_least_1() -> None:
    with pytest.raises(ValueError, match="instance_count must be >= 1, got 0"):
        CapacitySize.instance_count(0)


def test_rollback_error_threshold_must_be_at_least_1() -> None:
    with pytest.raises(ValueError, match="error_threshold must be >= 1 error per minute, got 0"):
        DeploymentGuardrails.blue_green(error_threshold=0)


def test_rollback_latency_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="latency_threshold must be longer than 0"):
        DeploymentGuardrails.blue_green(latency_threshold=Duration.millis(0))


# --- retained variant properties --------------------------------------------------------------------------


def test_excluding_retained_properties_needs_retain_all_variant_properties() -> None:
    with pytest.raises(
        ValueError, match="exclude_retained_variant_properties needs retain_all_variant_properties"
    ):
        build_endpoint(exclude_retained_variant_properties=["DesiredWeight"])


def test_excluded_retained_properties_must_be_variant_properties() -> None:
    with pytest.raises(
        ValueError, match=r"exclude_retained_variant_properties must hold .* got 'InstanceType'"
    ):
        build_endpoint(
            retain_all_variant_properties=True, exclude_retained_variant_properties=["InstanceType"]
        )


# --- autoscaling ------------------------------------------------------------------------------------------


def test_autoscaling_rejects_burstable_instances() -> None:
    endpoint = build_endpoint(instance_type="ml.t2.medium")

    with pytest.raises(
        ValueError, match=r"instance_type 'ml.t2.medium' .* burstable: SageMaker does not autoscale"
    ):
        endpoint.auto_scale_instance_count(min_capacity=1, max_capacity=2)


def test_autoscaling_min_capacity_must_not_exceed_max_capacity() -> None:
    with pytest.raises(
        ValueError, match="min_capacity must be <= max_capacity, got min_capacity=3 > max_capacity=2"
    ):
        build_endpoint().auto_scale_instance_count(min_capacity=3, max_capacity=2)


def test_autoscaling_keeps_at_least_one_instance() -> None:
    with pytest.raises(ValueError, match="min_capacity must be >= 1"):
        build_endpoint().auto_scale_instance_count(min_capacity=0, max_capacity=2)


def test_autoscaling_needs_a_known_variant() -> None:
    with pytest.raises(ValueError, match="variant_name must be one of AllTraffic, got 'Blue'"):
        build_endpoint().auto_scale_instance_count(variant_name="Blue", min_capacity=1, max_capacity=2)


def test_autoscaling_applies_to_instance_variants_only() -> None:
    endpoint = build_endpoint(variants=[ServerlessVariant()])

    with pytest.raises(ValueError, match="'AllTraffic' is a ServerlessVariant"):
        endpoint.auto_scale_instance_count(min_capacity=1, max_capacity=2)


def test_autoscaling_is_enabled_once_per_variant() -> None:
    endpoint = build_endpoint()
    endpoint.auto_scale_instance_count(min_capacity=1, max_capacity=2)

    with pytest.raises(ValueError, match="'AllTraffic' already has autoscaling"):
        endpoint.auto_scale_instance_count(min_capacity=1, max_capacity=4)


@pytest.mark.parametrize(
    ("policy", "parameter"),
    [("scale_on_invocations", "invocations_per_instance"), ("scale_on_cpu_utilization", "target_percent")],
)
def test_scaling_targets_must_be_positive(policy: str, parameter: str) -> None:
    scaling = build_endpoint().auto_scale_instance_count(min_capacity=1, max_capacity=2)

    with pytest.raises(ValueError, match=rf"{parameter} must be > 0, got 0"):
        getattr(scaling, policy)(**{parameter: 0})


# --- tokens -----------------------------------------------------------------------------------------------


def test_unresolved_serverless_memory_is_left_to_cloudformation() -> None:
    stack = new_stack()
    memory = CfnParameter(stack, "Memory", type="Number").value_as_number
    endpoint = build_endpoint(stack, variants=[ServerlessVariant(memory_size_mb=memory)])

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {"ServerlessConfig": Match.object_like({"MemorySizeInMB": {"Ref": "Memory"}})}
                )
            ]
        },
    )


def test_unresolved_instance_type_and_count_are_left_to_cloudformation() -> None:
    stack = new_stack()
    instance_type = CfnParameter(stack, "InstanceType").value_as_string
    count = CfnParameter(stack, "Count", type="Number").value_as_number
    assert Token.is_unresolved(instance_type)
    assert Token.is_unresolved(count)
    endpoint = build_endpoint(stack, instance_type=instance_type, initial_instance_count=count)

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {"InstanceType": {"Ref": "InstanceType"}, "InitialInstanceCount": {"Ref": "Count"}}
                )
            ]
        },
    )
