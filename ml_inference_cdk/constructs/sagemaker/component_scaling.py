"""Autoscaling of an inference component's copy count, down to zero and back, as SageMaker documents it.

Application Auto Scaling changes ``sagemaker:inference-component:DesiredCopyCount`` of
``inference-component/NAME``. Target tracking scales in (to 0 when the minimum is 0) but cannot scale out
from zero copies (a per-copy metric has nothing to divide by), so with a minimum of 0 a step scaling policy
adds one copy when the component's ``NoCapacityInvocationFailures`` alarm fires: the values of SageMaker's
"Scale an endpoint to zero instances" (AWS CLI steps), kept exactly.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from constructs import Construct

from ml_inference_cdk.constructs.sagemaker.scaling import _service_linked_role, track_target

COPY_COUNT_DIMENSION: Final = "sagemaker:inference-component:DesiredCopyCount"
SCALE_FROM_ZERO_COOLDOWN: Final = Duration.seconds(60)
"""The step policy's cooldown in SageMaker's documented configuration."""


class ScalableCopyCount(Construct):
    """The copy count of one inference component, between ``min_capacity`` and ``max_capacity``.

    Created by ``InferenceComponent.auto_scale_copy_count``; add a target-tracking policy with
    ``scale_on_invocations`` or ``scale_on_concurrent_requests``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        inference_component_name: str,
        min_capacity: int,
        max_capacity: int,
        no_capacity_invocation_failures: cloudwatch.IMetric,
    ) -> None:
        _validate_capacity(min_capacity, max_capacity)
        super().__init__(scope, construct_id)
        self._target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"inference-component/{inference_component_name}",
            scalable_dimension=COPY_COUNT_DIMENSION,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            role=_service_linked_role(self),
        )
        self._scale_from_zero_alarm: cloudwatch.Alarm | None = None
        self._scale_from_zero_action: appscaling.StepScalingAction | None = None
        if not Token.is_unresolved(min_capacity) and min_capacity == 0:
            self._scale_from_zero(no_capacity_invocation_failures)

    @property
    def scalable_target(self) -> appscaling.ScalableTarget:
        """The Application Auto Scaling target, for scheduled scaling (``scale_on_schedule``) and the like."""
        return self._target

    @property
    def scale_from_zero_alarm(self) -> cloudwatch.Alarm | None:
        """The NoCapacityInvocationFailures alarm that adds a copy from zero (None unless min_capacity=0)."""
        return self._scale_from_zero_alarm

    @property
    def scale_from_zero_action(self) -> appscaling.StepScalingAction | None:
        """The step scaling policy the alarm triggers (None unless min_capacity is 0)."""
        return self._scale_from_zero_action

    def scale_on_invocations(
        self,
        *,
        invocations_per_copy: float,
        scale_in_cooldown: Duration | None = None,
        scale_out_cooldown: Duration | None = None,
        disable_scale_in: bool = False,
    ) -> appscaling.TargetTrackingScalingPolicy:
        """Keep invocations per copy per minute near ``invocations_per_copy``.

        The predefined metric SageMakerInferenceComponentInvocationsPerCopy (SageMaker's scale-to-zero
        example tracks 1 with 300-second cooldowns).

        Args:
            invocations_per_copy: target invocations per copy per minute (> 0).
            scale_in_cooldown: wait after a scale-in before the next one. Default: Application Auto Scaling's.
            scale_out_cooldown: wait after a scale-out before the next. Default: Application Auto Scaling's.
            disable_scale_in: only ever add copies. Default: False.

        Raises:
            ValueError: a target <= 0.
        """
        return track_target(
            self._target,
            "InvocationsPerCopy",
            ("invocations_per_copy", invocations_per_copy),
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
            disable_scale_in=disable_scale_in,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
        )

    def scale_on_concurrent_requests(
        self,
        *,
        concurrent_requests_per_copy: float,
        scale_in_cooldown: Duration | None = None,
        scale_out_cooldown: Duration | None = None,
        disable_scale_in: bool = False,
    ) -> appscaling.TargetTrackingScalingPolicy:
        """Keep requests in flight per copy near ``concurrent_requests_per_copy``, sampled every 10 seconds.

        The predefined metric SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution: it reacts
        faster than invocations per minute.

        Args:
            concurrent_requests_per_copy: target concurrent requests per copy (> 0).
            scale_in_cooldown: wait after a scale-in before the next one. Default: Application Auto Scaling's.
            scale_out_cooldown: wait after a scale-out before the next. Default: Application Auto Scaling's.
            disable_scale_in: only ever add copies. Default: False.

        Raises:
            ValueError: a target <= 0.
        """
        return track_target(
            self._target,
            "ConcurrentRequestsPerCopy",
            ("concurrent_requests_per_copy", concurrent_requests_per_copy),
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
            disable_scale_in=disable_scale_in,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_CONCURRENT_REQUESTS_PER_COPY_HIGH_RESOLUTION,
        )

    def _scale_from_zero(self, no_capacity_invocation_failures: cloudwatch.IMetric) -> None:
        """SageMaker's documented step policy and alarm: one more copy when a request found none."""
        action = appscaling.StepScalingAction(
            self,
            "ScaleFromZero",
            scaling_target=self._target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=SCALE_FROM_ZERO_COOLDOWN,
        )
        action.add_adjustment(adjustment=1, lower_bound=0)
        alarm = cloudwatch.Alarm(
            self,
            "NoCapacityAlarm",
            metric=no_capacity_invocation_failures,
            alarm_description="Adds an inference component copy: it was invoked while it had none.",
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=1,
            evaluation_periods=1,
            datapoints_to_alarm=1,
        )
        alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(action))
        self._scale_from_zero_action = action
        self._scale_from_zero_alarm = alarm


def _validate_capacity(min_capacity: int, max_capacity: int) -> None:
    if not Token.is_unresolved(min_capacity) and min_capacity < 0:
        raise ValueError(f"min_capacity must be >= 0 (0 scales the copies to zero), got {min_capacity}")
    if not Token.is_unresolved(max_capacity) and max_capacity < 1:
        raise ValueError(f"max_capacity must be >= 1, got {max_capacity}")
    if (
        not (Token.is_unresolved(min_capacity) or Token.is_unresolved(max_capacity))
        and min_capacity > max_capacity
    ):
        raise ValueError(
            f"min_capacity must be <= max_capacity, got min_capacity={min_capacity} > "
            f"max_capacity={max_capacity}"
        )
