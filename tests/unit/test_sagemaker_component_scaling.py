"""Copy-count autoscaling of an inference component, down to zero and back, as SageMaker documents it.

The reference is SageMaker's "Scale an endpoint to zero instances": a scalable target on
inference-component/NAME with minimum 0, a target-tracking policy, and a step scaling policy
(ChangeInCapacity, Maximum, cooldown 60, +1 from lower bound 0) on a CloudWatch alarm
(NoCapacityInvocationFailures, AWS/SageMaker, InferenceComponentName, Sum over 60 s, GreaterThanThreshold 1,
1 of 1 datapoints).
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk.assertions import Match, Template

from ml_inference_cdk import InferenceComponent, ScalableCopyCount
from tests.unit.test_sagemaker_endpoint import logical_id
from tests.unit.test_sagemaker_inference_components import build_component

HIGH_RESOLUTION_CONCURRENCY = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
SERVICE_LINKED_ROLE = (
    ":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def scaled(min_capacity: int = 0, max_capacity: int = 4) -> tuple[InferenceComponent, ScalableCopyCount]:
    component = build_component(inference_component_name="iris-v1")
    scaling = component.auto_scale_copy_count(min_capacity=min_capacity, max_capacity=max_capacity)
    return component, scaling


def template_of(scaling: ScalableCopyCount) -> Template:
    return Template.from_stack(Stack.of(scaling))


def test_the_copy_count_of_the_component_is_the_scalable_target() -> None:
    component, scaling = scaled(min_capacity=0, max_capacity=4)
    template = template_of(scaling)

    template.has_resource(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "Properties": {
                "ServiceNamespace": "sagemaker",
                "ResourceId": "inference-component/iris-v1",
                "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount",
                "MinCapacity": 0,
                "MaxCapacity": 4,
                "RoleARN": {
                    "Fn::Join": ["", Match.array_with([Match.string_like_regexp(SERVICE_LINKED_ROLE)])]
                },
            },
            "DependsOn": Match.array_with([logical_id(component)]),
        },
    )
    # The service-linked role is referenced, not created: the only roles are the model's and the endpoint's.
    template.resource_count_is("AWS::IAM::Role", 2)


def test_scaling_to_zero_adds_the_documented_step_policy() -> None:
    _, scaling = scaled(min_capacity=0)
    template = template_of(scaling)

    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "StepScaling",
            "ScalingTargetId": {"Ref": logical_id(scaling.scalable_target)},
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ChangeInCapacity",
                "MetricAggregationType": "Maximum",
                "Cooldown": 60,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
        },
    )


def test_the_no_capacity_alarm_triggers_the_step_policy_exactly_as_documented() -> None:
    _, scaling = scaled(min_capacity=0)
    template = template_of(scaling)
    assert scaling.scale_from_zero_action is not None
    assert scaling.scale_from_zero_alarm is not None

    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmActions": [{"Ref": logical_id(scaling.scale_from_zero_action.node.find_child("Resource"))}],
            "Namespace": "AWS/SageMaker",
            "MetricName": "NoCapacityInvocationFailures",
            "Dimensions": [{"Name": "InferenceComponentName", "Value": "iris-v1"}],
            "Statistic": "Sum",
            "Period": 60,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
        },
    )


def test_a_minimum_above_zero_adds_no_step_policy_and_no_alarm() -> None:
    _, scaling = scaled(min_capacity=1)
    template = template_of(scaling)

    template.resource_count_is("AWS::CloudWatch::Alarm", 0)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 0)
    assert scaling.scale_from_zero_alarm is None
    assert scaling.scale_from_zero_action is None


def test_scale_on_invocations_tracks_invocations_per_copy() -> None:
    _, scaling = scaled()
    scaling.scale_on_invocations(
        invocations_per_copy=1, scale_in_cooldown=Duration.minutes(5), scale_out_cooldown=Duration.minutes(5)
    )

    template_of(scaling).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
                },
                "TargetValue": 1,
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 300,
            },
        },
    )


def test_scale_on_concurrent_requests_tracks_the_high_resolution_metric() -> None:
    _, scaling = scaled()
    scaling.scale_on_concurrent_requests(concurrent_requests_per_copy=5, disable_scale_in=True)

    template_of(scaling).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {"PredefinedMetricType": HIGH_RESOLUTION_CONCURRENCY},
                "TargetValue": 5,
                "DisableScaleIn": True,
            },
        },
    )


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        (
            {"min_capacity": -1, "max_capacity": 2},
            r"min_capacity must be >= 0 \(0 scales the copies to zero\), got -1",
        ),
        ({"min_capacity": 0, "max_capacity": 0}, r"max_capacity must be >= 1, got 0"),
        (
            {"min_capacity": 3, "max_capacity": 2},
            r"min_capacity must be <= max_capacity, got min_capacity=3 > ",
        ),
    ],
)
def test_capacity_bounds_application_auto_scaling_would_refuse_are_errors(
    bounds: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_component().auto_scale_copy_count(**bounds)


def test_a_component_scales_once() -> None:
    component = build_component()
    component.auto_scale_copy_count(min_capacity=0, max_capacity=2)
    with pytest.raises(ValueError, match=r"already has copy-count autoscaling"):
        component.auto_scale_copy_count(min_capacity=0, max_capacity=3)


@pytest.mark.parametrize(
    ("method", "argument"),
    [
        ("scale_on_invocations", "invocations_per_copy"),
        ("scale_on_concurrent_requests", "concurrent_requests_per_copy"),
    ],
)
def test_a_target_of_zero_or_less_is_refused(method: str, argument: str) -> None:
    _, scaling = scaled()
    with pytest.raises(ValueError, match=rf"{argument} must be > 0, got 0"):
        getattr(scaling, method)(**{argument: 0})
