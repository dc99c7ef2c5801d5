"""Autoscaling of an instance variant: Application Auto Scaling of its DesiredInstanceCount."""

from __future__ import annotations

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

INSTANCE_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
"""Where SageMaker publishes per-instance CPU, memory and disk utilization."""


class ScalableInstanceCount(Construct):
    """The instance count of one variant, between ``min_capacity`` and ``max_capacity``.

    Created by ``SageMakerEndpoint.auto_scale_instance_count``; add target-tracking policies with
    ``scale_on_invocations`` and ``scale_on_cpu_utilization``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        min_capacity: int,
        max_capacity: int,
        cpu_utilization: cloudwatch.IMetric,
    ) -> None:
        super().__init__(scope, construct_id)
        self._variant_name = variant_name
        self._cpu_utilization = cpu_utilization
        # Application Auto Scaling acts through its SageMaker service-linked role (created on first use);
        # naming it stops CDK from creating a role without permissions next to it.
        self._target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            role=_service_linked_role(self),
        )

    @property
    def variant_name(self) -> str:
        """The variant whose instance count scales."""
        return self._variant_name

    @property
    def scalable_target(self) -> appscaling.ScalableTarget:
        """The Application Auto Scaling target, for scheduled scaling (``scale_on_schedule``) and the like."""
        return self._target

    def scale_on_invocations(
        self,
        *,
        invocations_per_instance: float,
        scale_in_cooldown: Duration | None = None,
        scale_out_cooldown: Duration | None = None,
        disable_scale_in: bool = False,
    ) -> appscaling.TargetTrackingScalingPolicy:
        """Keep invocations per instance per minute near ``invocations_per_instance``.

        A good target is half the requests per minute one instance sustains in a load test.

        Args:
            invocations_per_instance: target invocations per instance per minute (> 0).
            scale_in_cooldown: wait after a scale-in before the next one. Default: Application Auto Scaling's.
            scale_out_cooldown: wait after a scale-out before the next. Default: Application Auto Scaling's.
            disable_scale_in: only ever add instances. Default: False.

        Raises:
            ValueError: a target <= 0.
        """
        return track_target(
            self._target,
            "InvocationsPerInstance",
            ("invocations_per_instance", invocations_per_instance),
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
            disable_scale_in=disable_scale_in,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
        )

    def scale_on_cpu_utilization(
        self,
        *,
        target_percent: float,
        scale_in_cooldown: Duration | None = None,
        scale_out_cooldown: Duration | None = None,
        disable_scale_in: bool = False,
    ) -> appscaling.TargetTrackingScalingPolicy:
        """Keep the variant's average CPUUtilization (/aws/sagemaker/Endpoints) near ``target_percent``.

        SageMaker sums CPUUtilization over an instance's vCPUs (0-400% on 4 vCPUs), so the target is in
        the same units: 140 on an ml.c5.xlarge means about 35% of each of its 4 vCPUs.

        Args:
            target_percent: target CPUUtilization (> 0).
            scale_in_cooldown: wait after a scale-in before the next one. Default: Application Auto Scaling's.
            scale_out_cooldown: wait after a scale-out before the next. Default: Application Auto Scaling's.
            disable_scale_in: only ever add instances. Default: False.

        Raises:
            ValueError: a target <= 0.
        """
        return track_target(
            self._target,
            "CpuUtilization",
            ("target_percent", target_percent),
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
            disable_scale_in=disable_scale_in,
            custom_metric=self._cpu_utilization,
        )


def _service_linked_role(scope: Construct) -> iam.IRole:
    arn = Stack.of(scope).format_arn(
        service="iam",
        region="",
        resource="role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com",
        resource_name="AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
    )
    return iam.Role.from_role_arn(scope, "ServiceLinkedRole", arn, mutable=False)


def track_target(
    target: appscaling.ScalableTarget,
    policy_id: str,
    argument: tuple[str, float],
    *,
    scale_in_cooldown: Duration | None,
    scale_out_cooldown: Duration | None,
    disable_scale_in: bool,
    predefined_metric: appscaling.PredefinedMetric | None = None,
    custom_metric: cloudwatch.IMetric | None = None,
) -> appscaling.TargetTrackingScalingPolicy:
    """A target-tracking policy on ``target`` keeping a metric near ``argument``'s value: what every
    ``scale_on_*`` method of the instance and copy-count targets adds.

    Raises:
        ValueError: the target value (``argument``: its name as the caller's argument, and its value) is <= 0.
    """
    name, value = argument
    if not Token.is_unresolved(value) and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return target.scale_to_track_metric(
        policy_id,
        target_value=value,
        predefined_metric=predefined_metric,
        custom_metric=custom_metric,
        scale_in_cooldown=scale_in_cooldown,
        scale_out_cooldown=scale_out_cooldown,
        disable_scale_in=disable_scale_in or None,
    )
