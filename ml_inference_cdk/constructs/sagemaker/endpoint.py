"""A SageMaker endpoint: the HTTPS entry point that serves an endpoint configuration.

``Endpoint`` maps one ``AWS::SageMaker::Endpoint``. A new configuration updates it in place, blue/green or
rolling (``deployment``), rolled back by alarms. It grants its models' roles its own log group and metrics
namespace, and offers invoke grants, metrics and instance-count autoscaling.

The endpoint always gets a deterministic physical name (unless the caller gives one): its roles' log-group
permission, its rollback alarms and its scaling target all need the name, while the endpoint depends on
them; a CloudFormation-generated name would make that a circular dependency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from aws_cdk import Duration, Names
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_inference_cdk.constructs.sagemaker import cfn, permissions
from ml_inference_cdk.constructs.sagemaker.deployment import DeploymentGuardrails
from ml_inference_cdk.constructs.sagemaker.endpoint_base import SageMakerEndpointBase
from ml_inference_cdk.constructs.sagemaker.endpoint_config import EndpointConfig
from ml_inference_cdk.constructs.sagemaker.scaling import ScalableInstanceCount
from ml_inference_cdk.constructs.sagemaker.validation import (
    validate_autoscaling,
    validate_deployment,
    validate_endpoint_name,
    validate_retained_properties,
    validate_serverless,
)
from ml_inference_cdk.constructs.sagemaker.variants import ProductionVariant


class Endpoint(SageMakerEndpointBase):
    """An endpoint serving one endpoint configuration.

    Example::

        endpoint = Endpoint(self, "Endpoint", endpoint_config=config)
        endpoint.grant_invoke(my_function)
        endpoint.auto_scale_instance_count(min_capacity=1, max_capacity=4).scale_on_invocations(
            "PerInstance", max_requests_per_minute=6000
        )
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_config: EndpointConfig,
        endpoint_name: str | None = None,
        deployment: DeploymentGuardrails | None = None,
        retain_all_variant_properties: bool = False,
        exclude_retained_variant_properties: Sequence[str] | None = None,
    ) -> None:
        """Create the endpoint.

        Args:
            endpoint_config: what the endpoint serves; pass a new one to update the endpoint.
            endpoint_name: the endpoint's name. Default: derived from the construct path (stable, lowercase).
            deployment: blue/green or rolling updates with automatic rollback. Default: SageMaker's
                all-at-once blue/green without alarms.
            retain_all_variant_properties: keep variant properties (instance counts set by autoscaling,
                weights) across updates. Default: False.
            exclude_retained_variant_properties: with ``retain_all_variant_properties``, properties to take
                from the new configuration anyway (DesiredInstanceCount, DesiredWeight, DataCaptureConfig).
                Default: none.

        Raises:
            ValueError: a value or combination SageMaker would reject at deploy time (see the message).
        """
        variants = endpoint_config.variants
        validate_serverless(variants, deployment=deployment is not None)
        validate_deployment(variants, deployment)
        validate_retained_properties(retain_all_variant_properties, exclude_retained_variant_properties)
        if endpoint_name is not None:
            validate_endpoint_name(endpoint_name)
        super().__init__(scope, construct_id)
        physical_name = endpoint_name or generated_name(self)
        self._metrics_name = physical_name
        self._default_variant = variants[0].name
        self._config = endpoint_config
        self._scaling: dict[str, ScalableInstanceCount] = {}
        for model in endpoint_config.models:
            if model.role is not None:
                permissions.grant_logs_and_metrics(self, model.role, physical_name)
        execution_role = endpoint_config.execution_role
        if execution_role is not None:
            permissions.grant_logs_and_metrics(self, execution_role, physical_name)

        self._rollback_alarms: tuple[cloudwatch.IAlarm, ...] = ()
        if deployment is not None:
            self._rollback_alarms = rollback_alarms(self, self, variants, deployment)
        resource = sagemaker.CfnEndpoint(
            self,
            "Default",  # "Default" keeps the logical id the SageMakerEndpoint pattern had before this L2
            endpoint_config_name=endpoint_config.endpoint_config_name,
            endpoint_name=physical_name,
            deployment_config=cfn.deployment_config(deployment, self._rollback_alarms)
            if deployment
            else None,
            retain_all_variant_properties=retain_all_variant_properties or None,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type=name)
                for name in exclude_retained_variant_properties or []
            ]
            or None,
        )
        if execution_role is not None:
            # SageMaker starts the instances with the endpoint's role: its policies must exist first.
            for policy in execution_role.node.children:
                if policy.node.id != "Resource":
                    resource.node.add_dependency(policy)
        self._resource = resource
        self._name = resource.attr_endpoint_name
        self._arn = resource.ref  # Ref is the ARN, exactly as SageMaker spells it

    @property
    def endpoint_config(self) -> EndpointConfig:
        """The configuration the endpoint serves."""
        return self._config

    @property
    def rollback_alarms(self) -> tuple[cloudwatch.IAlarm, ...]:
        """The alarms that roll a guarded deployment back (the created ones first, then the caller's)."""
        return self._rollback_alarms

    def auto_scale_instance_count(
        self, *, min_capacity: int, max_capacity: int, variant_name: str | None = None
    ) -> ScalableInstanceCount:
        """Let Application Auto Scaling change one instance variant's instance count.

        Add policies to the result: ``scale_on_invocations(...)``, ``scale_on_cpu_utilization(...)``.

        Args:
            min_capacity: fewest instances (>= 1).
            max_capacity: most instances (>= min_capacity).
            variant_name: the instance variant. Default: the endpoint's first variant.

        Raises:
            ValueError: an unknown or serverless variant, a burstable ml.t* instance type, min > max, min < 1,
                or a variant already scaled.
        """
        return scale_instance_count(
            self,
            self,
            self._config.variants,
            self._scaling,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            variant_name=variant_name or self._default_variant,
        )

    def grant_invoke_async(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call InvokeEndpointAsync, upload requests and read responses and failures.

        With ``async_inference`` the grantee may put objects under its ``input_prefix`` and get objects under
        its ``output_prefix`` and ``failure_prefix`` (and use the bucket's KMS key for that), nothing else.
        """
        grant = super().grant_invoke_async(grantee)
        settings = self._config.async_inference
        if settings is None:
            return grant
        return grant.combine(permissions.grant_async_caller(self, grantee, settings))


def scale_instance_count(
    scope: Construct,
    endpoint: SageMakerEndpointBase,
    variants: Sequence[ProductionVariant],
    scaled: dict[str, ScalableInstanceCount],
    *,
    min_capacity: int,
    max_capacity: int,
    variant_name: str,
) -> ScalableInstanceCount:
    """``Scaling<variant>`` in ``scope``: one scalable target per variant (``scaled`` holds those made)."""
    validate_autoscaling(tuple(variants), variant_name, min_capacity, max_capacity)
    if variant_name in scaled:
        raise ValueError(
            f"variant_name {variant_name!r} already has autoscaling; add policies to the first result"
        )
    scaling = ScalableInstanceCount(
        scope,
        f"Scaling{variant_name}",
        endpoint_name=endpoint.endpoint_name,
        variant_name=variant_name,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        cpu_utilization=endpoint.metric_cpu_utilization(
            variant_name=variant_name, period=Duration.minutes(1)
        ),
    )
    scaled[variant_name] = scaling
    return scaling


def rollback_alarms(
    scope: Construct,
    endpoint: SageMakerEndpointBase,
    variants: Sequence[ProductionVariant],
    deployment: DeploymentGuardrails,
) -> tuple[cloudwatch.IAlarm, ...]:
    """5XX-error and model-latency alarms per variant in ``scope``/RollbackAlarms, plus the caller's.

    The alarms name the endpoint by its literal name, not a reference: the endpoint refers to the alarms.
    """
    created: list[cloudwatch.IAlarm] = []
    if deployment.default_alarms:
        alarms_scope = Construct(scope, "RollbackAlarms")
        for variant in variants:
            errors = endpoint.metric_invocations_5xx(variant_name=variant.name, period=Duration.minutes(1))
            created.append(
                errors.create_alarm(
                    alarms_scope,
                    f"{variant.name}Invocation5XXErrors",
                    alarm_description=f"Rolls a deployment back: {variant.name} answers with 5XX errors.",
                    threshold=deployment.error_threshold,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
            latency = endpoint.metric_model_latency(variant_name=variant.name, period=Duration.minutes(1))
            created.append(
                latency.create_alarm(
                    alarms_scope,
                    f"{variant.name}ModelLatency",
                    alarm_description=f"Rolls a deployment back: {variant.name} answers too slowly.",
                    threshold=deployment.latency_threshold_microseconds,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=2,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
    return (*created, *deployment.alarms)


def with_alarms(
    deployment: DeploymentGuardrails, alarms: Sequence[cloudwatch.IAlarm]
) -> DeploymentGuardrails:
    """``deployment`` rolled back by exactly ``alarms`` (already created), creating none of its own."""
    return replace(deployment, alarms=tuple(alarms), default_alarms=False)


def generated_name(scope: Construct) -> str:
    """Stable and unique per stack and path, lowercase so it reads the same in the name and the ARN."""
    name = Names.unique_resource_name(scope, max_length=63, separator="-").lower()
    return re.sub(r"[^a-z0-9-]", "", name).strip("-")
