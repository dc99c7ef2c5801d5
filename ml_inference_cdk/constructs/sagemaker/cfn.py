"""The CloudFormation property structures of an endpoint configuration and an endpoint, from the options."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sagemaker as sagemaker

from ml_inference_cdk.constructs.sagemaker.deployment import CapacitySize, DeploymentGuardrails
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.variants import ProductionVariant, ServerlessVariant, whole_seconds


def production_variant(
    variant: ProductionVariant,
    model_name: str | None,
    startup_timeout: float | None,
    download_timeout: float | None,
) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
    """One variant; an instance variant's own timeouts win over the endpoint's.

    ``model_name`` is None in a configuration for inference components (they name their models).
    """
    if isinstance(variant, ServerlessVariant):
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=variant.name,
            model_name=model_name,
            initial_variant_weight=variant.initial_weight,
            serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                memory_size_in_mb=variant.memory_size_mb,
                max_concurrency=variant.max_concurrency,
                provisioned_concurrency=variant.provisioned_concurrency,
            ),
        )
    own_startup = whole_seconds(
        "container_startup_health_check_timeout", variant.container_startup_health_check_timeout, 60, 3600
    )
    own_download = whole_seconds("model_data_download_timeout", variant.model_data_download_timeout, 60, 3600)
    return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=variant.name,
        model_name=model_name,
        instance_type=variant.instance_type,
        initial_instance_count=variant.initial_instance_count,
        initial_variant_weight=variant.initial_weight,
        container_startup_health_check_timeout_in_seconds=own_startup
        if own_startup is not None
        else startup_timeout,
        model_data_download_timeout_in_seconds=own_download if own_download is not None else download_timeout,
        routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
            routing_strategy=variant.routing_strategy
        )
        if variant.routing_strategy is not None
        else None,
        volume_size_in_gb=variant.volume_size_gb,
        enable_ssm_access=True if variant.enable_ssm_access else None,
        inference_ami_version=variant.inference_ami_version,
        managed_instance_scaling=variant.managed_instance_scaling.to_cfn()
        if variant.managed_instance_scaling is not None
        else None,
    )


def async_inference_config(
    settings: AsyncInference,
) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
    notification = None
    if settings.success_topic is not None or settings.error_topic is not None:
        notification = sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
            success_topic=settings.success_topic.topic_arn if settings.success_topic else None,
            error_topic=settings.error_topic.topic_arn if settings.error_topic else None,
        )
    client = None
    if settings.max_concurrent_invocations_per_instance is not None:
        client = sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
            max_concurrent_invocations_per_instance=settings.max_concurrent_invocations_per_instance
        )
    return sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
        output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
            s3_output_path=settings.output_path,
            s3_failure_path=settings.failure_path,
            notification_config=notification,
            kms_key_id=settings.encryption_key.key_arn if settings.encryption_key else None,
        ),
        client_config=client,
    )


def data_capture_config(settings: DataCapture) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
    csv = list(settings.csv_content_types)
    json_types = list(settings.json_content_types)
    header = None
    if csv or json_types:
        header = sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
            csv_content_types=csv or None, json_content_types=json_types or None
        )
    return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
        enable_capture=True,
        initial_sampling_percentage=settings.sampling_percentage,
        destination_s3_uri=settings.destination,
        capture_options=[
            sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode)
            for mode in settings.capture_modes
        ],
        capture_content_type_header=header,
        kms_key_id=settings.encryption_key.key_arn if settings.encryption_key else None,
    )


def deployment_config(
    deployment: DeploymentGuardrails, alarms: Sequence[cloudwatch.IAlarm]
) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
    """Blue/green or rolling, rolled back by ``alarms``."""
    rollback = sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
        alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name) for alarm in alarms]
    )
    if deployment.strategy == "ROLLING":
        assert deployment.maximum_batch_size is not None
        rollback_batch = deployment.rollback_maximum_batch_size
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=rollback,
            rolling_update_policy=sagemaker.CfnEndpoint.RollingUpdatePolicyProperty(
                maximum_batch_size=_capacity(deployment.maximum_batch_size),
                wait_interval_in_seconds=deployment.wait_interval_seconds or 0,
                rollback_maximum_batch_size=_capacity(rollback_batch) if rollback_batch else None,
                maximum_execution_timeout_in_seconds=deployment.maximum_execution_timeout_seconds,
            ),
        )
    routing = deployment.traffic_routing
    assert routing is not None
    traffic = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type=routing.type,
        canary_size=_capacity(routing.size) if routing.type == "CANARY" and routing.size else None,
        linear_step_size=_capacity(routing.size) if routing.type == "LINEAR" and routing.size else None,
        # Required by the SageMaker API for every type, ALL_AT_ONCE included (see TrafficRouting.all_at_once).
        wait_interval_in_seconds=routing.wait_seconds if routing.wait_seconds is not None else 0,
    )
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        auto_rollback_configuration=rollback,
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=traffic,
            termination_wait_in_seconds=deployment.termination_wait_seconds,
            maximum_execution_timeout_in_seconds=deployment.maximum_execution_timeout_seconds,
        ),
    )


def _capacity(size: CapacitySize) -> sagemaker.CfnEndpoint.CapacitySizeProperty:
    return sagemaker.CfnEndpoint.CapacitySizeProperty(type=size.type, value=size.value)
