"""Every value and combination SageMaker would reject at deploy time is a ValueError at synth time.

Each numeric limit and allowed set is pinned on both edges in test_sagemaker_boundaries.py; this module
holds the shapes (names, media types, prefixes) and the combinations.
"""

from __future__ import annotations

import pytest
from aws_cdk import CfnParameter, Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match

from ml_inference_cdk.constructs.sagemaker.deployment import (
    CapacitySize,
    DeploymentGuardrails,
)
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.variants import InstanceVariant, ServerlessVariant
from tests.unit.test_sagemaker_endpoint import build_endpoint, new_stack, template_of


def bucket(name: str = "some-bucket") -> s3.IBucket:
    return s3.Bucket.from_bucket_name(new_stack(), "Bucket", name)


def test_a_rejected_endpoint_creates_nothing() -> None:
    stack = new_stack()

    with pytest.raises(ValueError, match="initial_instance_count must be >= 1"):
        build_endpoint(stack, initial_instance_count=0)
    assert stack.node.try_find_child("Endpoint") is None


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


@pytest.mark.parametrize("name", ["blue_green", "blue.1", "blue green"])
def test_variant_name_must_match_sagemakers_pattern(name: str) -> None:
    with pytest.raises(ValueError, match="variant name must be 1-63 letters, digits or hyphens"):
        InstanceVariant(name=name)


def test_variant_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match=r"variants must have unique names, got 'Blue' more than once"):
        build_endpoint(variants=[InstanceVariant(name="Blue"), InstanceVariant(name="Blue")])


def test_instance_type_and_count_conflict_with_variants() -> None:
    with pytest.raises(
        ValueError, match="instance_type and initial_instance_count describe the default variant"
    ):
        build_endpoint(variants=[InstanceVariant()], instance_type="ml.c5.large")


# --- endpoint name ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iris_classifier", "iris.v1", "iris v1"])
def test_endpoint_name_must_match_sagemakers_pattern(name: str) -> None:
    with pytest.raises(ValueError, match="endpoint_name must be 1-63 letters, digits or hyphens"):
        build_endpoint(endpoint_name=name)


def test_an_imported_endpoint_name_is_checked_too() -> None:
    with pytest.raises(ValueError, match="endpoint_name must be 1-63 letters"):
        SageMakerEndpoint.from_endpoint_name(new_stack(), "Imported", "not_valid")


# --- data capture -----------------------------------------------------------------------------------------


def test_data_capture_must_capture_input_or_output() -> None:
    with pytest.raises(ValueError, match="data_capture needs capture_input or capture_output"):
        DataCapture(bucket=bucket(), capture_input=False, capture_output=False)


def test_data_capture_content_types_must_be_media_types() -> None:
    with pytest.raises(
        ValueError, match="json_content_types must hold media types like text/csv, got 'json'"
    ):
        DataCapture(bucket=bucket(), json_content_types=["json"])


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


# --- retained variant properties --------------------------------------------------------------------------


def test_excluding_retained_properties_needs_retain_all_variant_properties() -> None:
    with pytest.raises(
        ValueError, match="exclude_retained_variant_properties needs retain_all_variant_properties"
    ):
        build_endpoint(exclude_retained_variant_properties=["DesiredWeight"])


# --- autoscaling ------------------------------------------------------------------------------------------


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
