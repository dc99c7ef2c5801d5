"""SageMakerEndpoint's optional features, one behaviour per test, asserted on the synthesized template."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Capture, Match, Template

from ml_inference_cdk.constructs.sagemaker.deployment import (
    CapacitySize,
    DeploymentGuardrails,
    TrafficRouting,
)
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.variants import InstanceVariant, ServerlessVariant
from tests.unit.test_sagemaker_endpoint import (
    build_endpoint,
    flat,
    logical_id,
    new_stack,
    permissions_of,
    resources_for,
    template_of,
)


def endpoint_name_of(endpoint: SageMakerEndpoint) -> str:
    name = endpoint.endpoint.node.default_child.endpoint_name
    assert isinstance(name, str)
    return name


def unordered(values: list[Any]) -> list[str]:
    """IAM policy minimization merges and sorts resources: compare without order."""
    return sorted(map(flat, values))


def bucket_arn(bucket: s3.IBucket) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id(bucket.node.default_child), "Arn"]}


def objects_under(bucket: s3.IBucket, prefix: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [bucket_arn(bucket), f"/{prefix}*"]]}


# --- variants ---------------------------------------------------------------------------------------------


def test_instance_variants_split_the_traffic_by_weight() -> None:
    endpoint = build_endpoint(
        variants=[
            InstanceVariant(
                name="Blue", instance_type="ml.c5.xlarge", initial_instance_count=2, initial_weight=9
            ),
            InstanceVariant(name="Green", initial_weight=1),
        ]
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": "Blue",
                        "InstanceType": "ml.c5.xlarge",
                        "InitialInstanceCount": 2,
                        "InitialVariantWeight": 9,
                    }
                ),
                Match.object_like(
                    {
                        "VariantName": "Green",
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": 1,
                        "InitialVariantWeight": 1,
                    }
                ),
            ]
        },
    )
    assert endpoint.variant_names == ("Blue", "Green")


def test_serverless_variant_sets_memory_and_concurrency_and_no_instances() -> None:
    endpoint = build_endpoint(
        variants=[ServerlessVariant(memory_size_mb=4096, max_concurrency=50, provisioned_concurrency=5)]
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": Match.any_value(),
                    "InitialVariantWeight": 1,
                    "ServerlessConfig": {
                        "MemorySizeInMB": 4096,
                        "MaxConcurrency": 50,
                        "ProvisionedConcurrency": 5,
                    },
                }
            ]
        },
    )


def test_serverless_variant_provisions_no_concurrency_by_default() -> None:
    endpoint = build_endpoint(variants=[ServerlessVariant()])

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "ServerlessConfig": {
                            "MemorySizeInMB": 2048,
                            "MaxConcurrency": 20,
                            "ProvisionedConcurrency": Match.absent(),
                        }
                    }
                )
            ]
        },
    )


# --- timeouts ---------------------------------------------------------------------------------------------


def test_startup_and_download_timeouts_apply_to_every_instance_variant() -> None:
    endpoint = build_endpoint(
        variants=[InstanceVariant(name="Blue"), InstanceVariant(name="Green")],
        container_startup_health_check_timeout=Duration.minutes(10),
        model_data_download_timeout=Duration.minutes(20),
    )

    timeouts = {"ContainerStartupHealthCheckTimeoutInSeconds": 600, "ModelDataDownloadTimeoutInSeconds": 1200}
    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like({"VariantName": "Blue", **timeouts}),
                Match.object_like({"VariantName": "Green", **timeouts}),
            ]
        },
    )


def test_a_variants_own_timeouts_win_over_the_endpoints() -> None:
    endpoint = build_endpoint(
        variants=[
            InstanceVariant(
                name="Blue",
                container_startup_health_check_timeout=Duration.minutes(2),
                model_data_download_timeout=Duration.minutes(3),
            ),
            InstanceVariant(name="Green"),
        ],
        container_startup_health_check_timeout=Duration.minutes(10),
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "ContainerStartupHealthCheckTimeoutInSeconds": 120,
                        "ModelDataDownloadTimeoutInSeconds": 180,
                    }
                ),
                Match.object_like(
                    {
                        "ContainerStartupHealthCheckTimeoutInSeconds": 600,
                        "ModelDataDownloadTimeoutInSeconds": Match.absent(),
                    }
                ),
            ]
        },
    )


# --- autoscaling ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scaled() -> tuple[SageMakerEndpoint, Template]:
    endpoint = build_endpoint(
        variants=[InstanceVariant(name="Blue", initial_instance_count=2), InstanceVariant(name="Green")]
    )
    scaling = endpoint.auto_scale_instance_count(variant_name="Blue", min_capacity=2, max_capacity=8)
    scaling.scale_on_invocations(
        invocations_per_instance=750,
        scale_in_cooldown=Duration.minutes(10),
        scale_out_cooldown=Duration.minutes(1),
    )
    scaling.scale_on_cpu_utilization(target_percent=140, disable_scale_in=True)
    return endpoint, template_of(endpoint)


def test_auto_scale_instance_count_scales_the_variants_desired_instance_count(
    scaled: tuple[SageMakerEndpoint, Template],
) -> None:
    endpoint, template = scaled
    endpoint_id = logical_id(endpoint.node.find_child("Endpoint"))

    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "ResourceId": {
                "Fn::Join": [
                    "",
                    ["endpoint/", {"Fn::GetAtt": [endpoint_id, "EndpointName"]}, "/variant/Blue"],
                ]
            },
            "MinCapacity": 2,
            "MaxCapacity": 8,
        },
    )


def test_autoscaling_acts_through_the_service_linked_role(scaled: tuple[SageMakerEndpoint, Template]) -> None:
    _, template = scaled
    role = Capture()

    template.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {"RoleARN": role})
    assert flat(role.as_object()).endswith(
        ":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        'AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"]]}'
    )
    template.resource_properties_count_is(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {
                    "Statement": [
                        Match.object_like({"Principal": {"Service": "application-autoscaling.amazonaws.com"}})
                    ]
                }
            )
        },
        0,
    )


def test_scale_on_invocations_tracks_sagemaker_variant_invocations_per_instance(
    scaled: tuple[SageMakerEndpoint, Template],
) -> None:
    _, template = scaled

    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "TargetValue": 750,
                "ScaleInCooldown": 600,
                "ScaleOutCooldown": 60,
            },
        },
    )


def test_scale_on_cpu_utilization_tracks_the_variants_cpu_in_the_endpoints_namespace(
    scaled: tuple[SageMakerEndpoint, Template],
) -> None:
    endpoint, template = scaled

    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": {
                "CustomizedMetricSpecification": {
                    "MetricName": "CPUUtilization",
                    "Namespace": "/aws/sagemaker/Endpoints",
                    "Statistic": "Average",
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint_name_of(endpoint)},
                        {"Name": "VariantName", "Value": "Blue"},
                    ],
                },
                "TargetValue": 140,
                "DisableScaleIn": True,
            }
        },
    )


def test_only_the_chosen_variant_is_scaled(scaled: tuple[SageMakerEndpoint, Template]) -> None:
    _, template = scaled

    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 1)


def test_auto_scale_instance_count_defaults_to_the_first_variant() -> None:
    endpoint = build_endpoint()
    scaling = endpoint.auto_scale_instance_count(min_capacity=1, max_capacity=3)

    assert scaling.variant_name == "AllTraffic"


# --- asynchronous inference -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asynchronous() -> tuple[SageMakerEndpoint, Template, dict[str, Any]]:
    stack = new_stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Async")
    done = sns.Topic(stack, "Done")
    failed = sns.Topic(stack, "Failed", master_key=key)
    endpoint = build_endpoint(
        stack,
        async_inference=AsyncInference(
            bucket=bucket,
            success_topic=done,
            error_topic=failed,
            max_concurrent_invocations_per_instance=4,
            encryption_key=key,
        ),
    )
    caller = iam.Role(stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    endpoint.grant_invoke_async(caller)
    parts = {"key": key, "bucket": bucket, "done": done, "failed": failed, "caller": caller}
    return endpoint, template_of(endpoint), parts


def test_async_inference_writes_responses_and_failures_under_the_buckets_prefixes(
    asynchronous: tuple[SageMakerEndpoint, Template, dict[str, Any]],
) -> None:
    _, template, parts = asynchronous
    bucket_ref = {"Ref": logical_id(parts["bucket"].node.default_child)}

    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "AsyncInferenceConfig": Match.object_like(
                {
                    "OutputConfig": Match.object_like(
                        {
                            "S3OutputPath": {
                                "Fn::Join": ["", ["s3://", bucket_ref, "/async-inference/output/"]]
                            },
                            "S3FailurePath": {
                                "Fn::Join": ["", ["s3://", bucket_ref, "/async-inference/failures/"]]
                            },
                        }
                    )
                }
            )
        },
    )


def test_async_inference_notifies_the_success_and_error_topics(
    asynchronous: tuple[SageMakerEndpoint, Template, dict[str, Any]],
) -> None:
    _, template, parts = asynchronous

    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "AsyncInferenceConfig": {
                "OutputConfig": Match.object_like(
                    {
                        "NotificationConfig": {
                            "SuccessTopic": {"Ref": logical_id(parts["done"].node.default_child)},
                            "ErrorTopic": {"Ref": logical_id(parts["failed"].node.default_child)},
                        },
                        "KmsKeyId": {"Fn::GetAtt": [logical_id(parts["key"].node.default_child), "Arn"]},
                    }
                ),
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
            }
        },
    )


def test_async_role_writes_only_the_output_and_failure_prefixes_and_reads_only_the_input_prefix(
    asynchronous: tuple[SageMakerEndpoint, Template, dict[str, Any]],
) -> None:
    endpoint, template, parts = asynchronous
    bucket = parts["bucket"]

    assert unordered(resources_for(template, endpoint.role, "s3:PutObject")) == unordered(
        [objects_under(bucket, "async-inference/output/"), objects_under(bucket, "async-inference/failures/")]
    )
    assert objects_under(bucket, "async-inference/input/") in resources_for(
        template, endpoint.role, "s3:GetObject"
    )


def test_async_role_publishes_only_to_the_topics_and_uses_their_key(
    asynchronous: tuple[SageMakerEndpoint, Template, dict[str, Any]],
) -> None:
    endpoint, template, parts = asynchronous
    key_arn = {"Fn::GetAtt": [logical_id(parts["key"].node.default_child), "Arn"]}

    assert unordered(resources_for(template, endpoint.role, "sns:Publish")) == unordered(
        [
            {"Ref": logical_id(parts["done"].node.default_child)},
            {"Ref": logical_id(parts["failed"].node.default_child)},
        ]
    )
    for action in ("kms:GenerateDataKey", "kms:Encrypt"):
        assert set(map(flat, resources_for(template, endpoint.role, action))) == {flat(key_arn)}


def test_grant_invoke_async_lets_callers_upload_requests_and_read_results(
    asynchronous: tuple[SageMakerEndpoint, Template, dict[str, Any]],
) -> None:
    endpoint, template, parts = asynchronous
    bucket, caller = parts["bucket"], parts["caller"]

    assert resources_for(template, caller, "sagemaker:InvokeEndpointAsync") == [
        {"Ref": logical_id(endpoint.node.find_child("Endpoint"))}
    ]
    assert resources_for(template, caller, "s3:PutObject") == [
        objects_under(bucket, "async-inference/input/")
    ]
    assert unordered(resources_for(template, caller, "s3:GetObject")) == unordered(
        [objects_under(bucket, "async-inference/output/"), objects_under(bucket, "async-inference/failures/")]
    )


# --- data capture -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capturing() -> tuple[SageMakerEndpoint, Template, s3.Bucket, kms.Key]:
    stack = new_stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Capture")
    endpoint = build_endpoint(
        stack,
        data_capture=DataCapture(
            bucket=bucket,
            prefix="capture/",
            sampling_percentage=25,
            json_content_types=[],
            encryption_key=key,
        ),
    )
    return endpoint, template_of(endpoint), bucket, key


def test_data_capture_samples_requests_and_responses_to_the_bucket(
    capturing: tuple[SageMakerEndpoint, Template, s3.Bucket, kms.Key],
) -> None:
    _, template, bucket, key = capturing

    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "DataCaptureConfig": {
                "EnableCapture": True,
                "InitialSamplingPercentage": 25,
                "DestinationS3Uri": {
                    "Fn::Join": ["", ["s3://", {"Ref": logical_id(bucket.node.default_child)}, "/capture/"]]
                },
                "CaptureOptions": [{"CaptureMode": "InputAndOutput"}],
                "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
                "KmsKeyId": {"Fn::GetAtt": [logical_id(key.node.default_child), "Arn"]},
            }
        },
    )


def test_data_capture_role_writes_only_under_the_capture_prefix(
    capturing: tuple[SageMakerEndpoint, Template, s3.Bucket, kms.Key],
) -> None:
    endpoint, template, bucket, _ = capturing

    assert resources_for(template, endpoint.role, "s3:PutObject") == [objects_under(bucket, "capture/")]


def test_data_capture_role_may_encrypt_with_the_capture_key_only(
    capturing: tuple[SageMakerEndpoint, Template, s3.Bucket, kms.Key],
) -> None:
    endpoint, template, _, key = capturing
    key_arn = {"Fn::GetAtt": [logical_id(key.node.default_child), "Arn"]}
    kms_permissions = [(a, r) for a, r, _ in permissions_of(template, endpoint.role) if a.startswith("kms:")]

    assert sorted(a for a, _ in kms_permissions) == ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    assert all(resource == key_arn for _, resource in kms_permissions)


@pytest.mark.parametrize(
    ("capture_input", "capture_output", "mode"), [(True, False, "Input"), (False, True, "Output")]
)
def test_data_capture_can_record_one_direction_only(
    capture_input: bool, capture_output: bool, mode: str
) -> None:
    stack = new_stack()
    endpoint = build_endpoint(
        stack,
        data_capture=DataCapture(
            bucket=s3.Bucket(stack, "Capture"), capture_input=capture_input, capture_output=capture_output
        ),
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {"DataCaptureConfig": Match.object_like({"CaptureOptions": [{"CaptureMode": mode}]})},
    )


# --- deployment guardrails --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def canary() -> tuple[SageMakerEndpoint, Template, cloudwatch.Alarm]:
    stack = new_stack()
    extra = cloudwatch.Alarm(
        stack,
        "Extra",
        metric=cloudwatch.Metric(namespace="Custom", metric_name="BadPredictions"),
        threshold=10,
        evaluation_periods=1,
    )
    endpoint = build_endpoint(
        stack,
        variants=[InstanceVariant(name="Blue"), InstanceVariant(name="Green")],
        deployment=DeploymentGuardrails.blue_green(
            traffic_routing=TrafficRouting.canary(size=CapacitySize.percent(10), wait=Duration.minutes(5)),
            termination_wait=Duration.minutes(10),
            maximum_execution_timeout=Duration.hours(1),
            alarms=[extra],
            latency_threshold=Duration.millis(250),
            error_threshold=3,
        ),
    )
    return endpoint, template_of(endpoint), extra


def test_blue_green_canary_shifts_a_canary_then_the_rest(
    canary: tuple[SageMakerEndpoint, Template, cloudwatch.Alarm],
) -> None:
    _, template, _ = canary

    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": Match.object_like(
                {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {
                            "Type": "CANARY",
                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                            "WaitIntervalInSeconds": 300,
                        },
                        "TerminationWaitInSeconds": 600,
                        "MaximumExecutionTimeoutInSeconds": 3600,
                    }
                }
            )
        },
    )


def test_guardrails_create_5xx_and_latency_alarms_for_every_variant(
    canary: tuple[SageMakerEndpoint, Template, cloudwatch.Alarm],
) -> None:
    endpoint, template, _ = canary
    name = endpoint_name_of(endpoint)

    for variant in ("Blue", "Green"):
        dimensions = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": variant}]
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/SageMaker",
                "MetricName": "Invocation5XXErrors",
                "Dimensions": dimensions,
                "Statistic": "Sum",
                "Period": 60,
                "Threshold": 3,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
            },
        )
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/SageMaker",
                "MetricName": "ModelLatency",
                "Dimensions": dimensions,
                "Statistic": "Average",
                "Threshold": 250_000,  # microseconds
                "ComparisonOperator": "GreaterThanThreshold",
            },
        )


def test_endpoint_rolls_back_on_the_default_alarms_and_the_callers(
    canary: tuple[SageMakerEndpoint, Template, cloudwatch.Alarm],
) -> None:
    endpoint, template, extra = canary
    alarm_names = Capture()

    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {"DeploymentConfig": Match.object_like({"AutoRollbackConfiguration": {"Alarms": alarm_names}})},
    )
    expected = [
        {"AlarmName": {"Ref": logical_id(alarm.node.default_child)}} for alarm in endpoint.rollback_alarms
    ]
    assert alarm_names.as_array() == expected
    assert len(expected) == 5
    assert expected[-1] == {"AlarmName": {"Ref": logical_id(extra.node.default_child)}}


def test_rollback_alarms_do_not_depend_on_the_endpoint(
    canary: tuple[SageMakerEndpoint, Template, cloudwatch.Alarm],
) -> None:
    # The alarms name the endpoint by its literal name; a reference would be a circular dependency.
    _, template, _ = canary

    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        assert "Fn::GetAtt" not in flat(alarm.get("Properties", {}).get("Dimensions", []))
        assert "DependsOn" not in alarm


def test_blue_green_all_at_once_is_the_default_traffic_routing_with_the_wait_the_api_requires() -> None:
    # The SageMaker API requires WaitIntervalInSeconds for every routing type; the CloudFormation schema
    # does not, so a template without it passes cfn-lint and fails at deploy time.
    endpoint = build_endpoint(deployment=DeploymentGuardrails.blue_green())

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": Match.object_like(
                {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                    }
                }
            )
        },
    )


def test_all_at_once_takes_its_own_wait_interval() -> None:
    endpoint = build_endpoint(
        deployment=DeploymentGuardrails.blue_green(
            traffic_routing=TrafficRouting.all_at_once(wait=Duration.minutes(5)),
            termination_wait=Duration.minutes(10),
        )
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": Match.object_like(
                {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
                        "TerminationWaitInSeconds": 600,
                    }
                }
            )
        },
    )


def test_blue_green_linear_shifts_traffic_in_steps() -> None:
    endpoint = build_endpoint(
        initial_instance_count=4,
        deployment=DeploymentGuardrails.blue_green(
            traffic_routing=TrafficRouting.linear(
                step=CapacitySize.instance_count(1), wait=Duration.minutes(2)
            )
        ),
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": Match.object_like(
                {
                    "BlueGreenUpdatePolicy": Match.object_like(
                        {
                            "TrafficRoutingConfiguration": {
                                "Type": "LINEAR",
                                "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                                "WaitIntervalInSeconds": 120,
                            }
                        }
                    )
                }
            )
        },
    )


def test_rolling_deployment_replaces_instances_in_batches() -> None:
    endpoint = build_endpoint(
        initial_instance_count=4,
        deployment=DeploymentGuardrails.rolling(
            maximum_batch_size=CapacitySize.percent(25),
            wait_interval=Duration.minutes(3),
            rollback_maximum_batch_size=CapacitySize.instance_count(2),
            maximum_execution_timeout=Duration.hours(2),
        ),
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": {
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                    "WaitIntervalInSeconds": 180,
                    "RollbackMaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2},
                    "MaximumExecutionTimeoutInSeconds": 7200,
                },
                "AutoRollbackConfiguration": {"Alarms": Match.any_value()},
            }
        },
    )


def test_default_alarms_can_be_left_out_for_the_callers_own() -> None:
    stack = new_stack()
    own = cloudwatch.Alarm(
        stack,
        "Own",
        metric=cloudwatch.Metric(namespace="Custom", metric_name="Drift"),
        threshold=1,
        evaluation_periods=1,
    )
    endpoint = build_endpoint(
        stack, deployment=DeploymentGuardrails.blue_green(default_alarms=False, alarms=[own])
    )
    template = template_of(endpoint)

    template.resource_count_is("AWS::CloudWatch::Alarm", 1)
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "DeploymentConfig": Match.object_like(
                {
                    "AutoRollbackConfiguration": {
                        "Alarms": [{"AlarmName": {"Ref": logical_id(own.node.default_child)}}]
                    }
                }
            )
        },
    )


def test_without_guardrails_there_is_no_deployment_config_and_no_alarm() -> None:
    template = template_of(build_endpoint())

    template.has_resource_properties("AWS::SageMaker::Endpoint", {"DeploymentConfig": Match.absent()})
    template.resource_count_is("AWS::CloudWatch::Alarm", 0)


# --- variant properties across updates --------------------------------------------------------------------


def test_retain_all_variant_properties_keeps_them_across_updates_except_the_excluded() -> None:
    endpoint = build_endpoint(
        retain_all_variant_properties=True,
        exclude_retained_variant_properties=["DesiredWeight", "DataCaptureConfig"],
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "RetainAllVariantProperties": True,
            "ExcludeRetainedVariantProperties": [
                {"VariantPropertyType": "DesiredWeight"},
                {"VariantPropertyType": "DataCaptureConfig"},
            ],
        },
    )


def test_variant_properties_are_not_retained_by_default() -> None:
    template_of(build_endpoint()).has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {"RetainAllVariantProperties": Match.absent(), "ExcludeRetainedVariantProperties": Match.absent()},
    )


# --- network ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_vpc() -> tuple[SageMakerEndpoint, Template, ec2.Vpc]:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    endpoint = build_endpoint(stack, vpc=vpc, network_isolation=True)
    return endpoint, template_of(endpoint), vpc


def test_vpc_places_the_model_in_the_private_subnets_with_a_new_security_group(
    in_vpc: tuple[SageMakerEndpoint, Template, ec2.Vpc],
) -> None:
    endpoint, template, vpc = in_vpc
    assert endpoint.connections is not None
    (group,) = endpoint.connections.security_groups

    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "VpcConfig": {
                "Subnets": [{"Ref": logical_id(subnet.node.default_child)} for subnet in vpc.private_subnets],
                "SecurityGroupIds": [{"Fn::GetAtt": [logical_id(group.node.default_child), "GroupId"]}],
            }
        },
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": "SageMaker endpoint network interfaces (ml-inference-cdk)",
            "SecurityGroupIngress": Match.absent(),
        },
    )


def test_network_isolation_cuts_the_container_off_the_network(
    in_vpc: tuple[SageMakerEndpoint, Template, ec2.Vpc],
) -> None:
    _, template, _ = in_vpc

    template.has_resource_properties("AWS::SageMaker::Model", {"EnableNetworkIsolation": True})


def test_vpc_role_creates_network_interfaces_only_in_its_subnets_and_security_group(
    in_vpc: tuple[SageMakerEndpoint, Template, ec2.Vpc],
) -> None:
    endpoint, template, vpc = in_vpc
    created_in = [flat(r) for r in resources_for(template, endpoint.role, "ec2:CreateNetworkInterface")]

    assert created_in[0].endswith(':network-interface/*"]]}')
    for subnet in vpc.private_subnets:
        assert any(logical_id(subnet.node.default_child) in r and ":subnet/" in r for r in created_in)
    assert any(":security-group/" in r for r in created_in)
    assert len(created_in) == 1 + len(vpc.private_subnets) + 1


def test_vpc_role_deletes_only_network_interfaces_in_its_vpc(
    in_vpc: tuple[SageMakerEndpoint, Template, ec2.Vpc],
) -> None:
    endpoint, template, vpc = in_vpc
    vpc_id = logical_id(vpc.node.default_child)

    deletions = [
        (r, c) for a, r, c in permissions_of(template, endpoint.role) if a == "ec2:DeleteNetworkInterface"
    ]
    ((resource, condition),) = deletions
    assert flat(resource).endswith(':network-interface/*"]]}')
    assert flat(condition["ArnEquals"]["ec2:Vpc"]).endswith(f':vpc/", {{"Ref": "{vpc_id}"}}]]}}')


def test_vpc_with_security_groups_uses_them_and_creates_none() -> None:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1)
    group = ec2.SecurityGroup(stack, "Own", vpc=vpc)
    endpoint = build_endpoint(
        stack,
        vpc=vpc,
        security_groups=[group],
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
    )
    template = template_of(endpoint)

    template.resource_count_is("AWS::EC2::SecurityGroup", 1)
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "VpcConfig": {
                "SecurityGroupIds": [{"Fn::GetAtt": [logical_id(group.node.default_child), "GroupId"]}],
                "Subnets": [{"Ref": logical_id(subnet.node.default_child)} for subnet in vpc.public_subnets],
            }
        },
    )


# --- storage volume encryption ----------------------------------------------------------------------------


def test_volume_encryption_key_encrypts_the_instances_storage_and_is_granted_to_the_role() -> None:
    stack = new_stack()
    key = kms.Key(stack, "Volumes")
    endpoint = build_endpoint(stack, volume_encryption_key=key)
    template = template_of(endpoint)
    key_arn = {"Fn::GetAtt": [logical_id(key.node.default_child), "Arn"]}

    template.has_resource_properties("AWS::SageMaker::EndpointConfig", {"KmsKeyId": key_arn})
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey"):
        assert resources_for(template, endpoint.role, action) == [key_arn]
