"""A SageMaker inference component: one model placed on an endpoint's instances, in copies.

``InferenceComponent`` maps one ``AWS::SageMaker::InferenceComponent``. The endpoint's configuration names
no model (``EndpointConfig(inference_components=True)``); each component names its model, the CPU cores,
accelerators and memory one copy reserves, and how many copies run. Callers invoke it through the endpoint
with ``InferenceComponentName``. Its copy count scales with Application Auto Scaling, down to 0
(``auto_scale_copy_count``), and with managed instance scaling the endpoint then gives back its instances.
"""

from __future__ import annotations

import re
from typing import Any, Final

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_inference_cdk.constructs.sagemaker import permissions
from ml_inference_cdk.constructs.sagemaker.component_scaling import ScalableCopyCount
from ml_inference_cdk.constructs.sagemaker.endpoint import Endpoint, generated_name
from ml_inference_cdk.constructs.sagemaker.endpoint_base import (
    INVOCATION_METRICS_NAMESPACE,
    ImportedSageMakerEndpoint,
    SageMakerEndpointBase,
)
from ml_inference_cdk.constructs.sagemaker.endpoint_config import EndpointConfig
from ml_inference_cdk.constructs.sagemaker.model import ModelBase
from ml_inference_cdk.constructs.sagemaker.variants import validate_name, whole_seconds

COMPONENT_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?")
"""SageMaker's pattern for inference component names (1-63 letters, digits and inner hyphens)."""
MIN_MEMORY_MB: Final = 128
MIN_CPU_CORES: Final = 0.25
_Cfn = sagemaker.CfnInferenceComponent


class InferenceComponent(Construct):
    """One model on an endpoint for inference components, with the compute one copy reserves.

    Example::

        config = EndpointConfig(
            self, "Config",
            inference_components=True,
            variants=[InstanceVariant(
                instance_type="ml.c5.large",
                managed_instance_scaling=ManagedInstanceScaling(min_instance_count=0, max_instance_count=2),
            )],
        )
        endpoint = Endpoint(self, "Endpoint", endpoint_config=config)
        component = InferenceComponent(
            self, "Iris", endpoint=endpoint, model=model, min_memory_mb=1024, cpu_cores=1
        )
        component.auto_scale_copy_count(min_capacity=0, max_capacity=4).scale_on_invocations(
            invocations_per_copy=1
        )
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: SageMakerEndpointBase | str,
        model: ModelBase,
        min_memory_mb: int,
        cpu_cores: float | None = None,
        accelerator_devices: float | None = None,
        max_memory_mb: int | None = None,
        copy_count: int = 1,
        variant_name: str | None = None,
        container_startup_health_check_timeout: Duration | None = None,
        model_data_download_timeout: Duration | None = None,
        inference_component_name: str | None = None,
    ) -> None:
        """Place ``model`` on ``endpoint``.

        Args:
            endpoint: an ``Endpoint`` whose configuration has ``inference_components=True``, an imported
                endpoint (``SageMakerEndpoint.from_endpoint_name``), or an endpoint's name.
            model: the model one copy runs (``Model`` or ``Model.from_model_name``).
            min_memory_mb: memory reserved for one copy (>= 128 MB; MinMemoryRequiredInMb).
            cpu_cores: CPU cores reserved for one copy (>= 0.25). Default: none reserved.
            accelerator_devices: GPUs or Inferentia devices for one copy (>= 1). Default: none.
            max_memory_mb: memory one copy may use at most (>= min_memory_mb). Default: no limit.
            copy_count: copies at creation (>= 0; autoscaling changes it later). Default: 1.
            variant_name: the instance variant to place the copies on. Default: the endpoint's first variant.
            container_startup_health_check_timeout: how long a copy may take to pass /ping (60-3600 s).
                Default: SageMaker's.
            model_data_download_timeout: how long downloading the model data may take (60-3600 s).
                Default: SageMaker's.
            inference_component_name: the component's name, as callers pass it to InvokeEndpoint.
                Default: derived from the construct path (stable, lowercase).

        Raises:
            ValueError: a value or combination SageMaker would reject at deploy time (see the message).
        """
        _validate_compute(min_memory_mb, cpu_cores, accelerator_devices, max_memory_mb)
        if not Token.is_unresolved(copy_count) and copy_count < 0:
            raise ValueError(f"copy_count must be >= 0 (0 starts with no copies), got {copy_count}")
        startup = whole_seconds(
            "container_startup_health_check_timeout", container_startup_health_check_timeout, 60, 3600
        )
        download = whole_seconds("model_data_download_timeout", model_data_download_timeout, 60, 3600)
        if inference_component_name is not None:
            validate_component_name(inference_component_name)
        config = getattr(endpoint, "endpoint_config", None)  # an Endpoint's, or a SageMakerEndpoint's
        if isinstance(endpoint, SageMakerEndpointBase) and isinstance(config, EndpointConfig):
            variant_name = _validate_endpoint(endpoint, config, variant_name)
        super().__init__(scope, construct_id)
        if isinstance(endpoint, str):
            endpoint = ImportedSageMakerEndpoint(self, "Endpoint", endpoint_name=endpoint)
        self._endpoint = endpoint
        self._model = model
        self._variant_name = variant_name or endpoint._default_variant
        self._name = inference_component_name or generated_name(self)
        self._scaling: ScalableCopyCount | None = None
        if isinstance(endpoint, Endpoint):
            self._grant_logs(endpoint)

        resource = sagemaker.CfnInferenceComponent(
            self,
            "Default",
            endpoint_name=endpoint.endpoint_name,
            variant_name=self._variant_name,
            inference_component_name=self._name,
            specification=_specification(
                model.model_name,
                _Cfn.InferenceComponentComputeResourceRequirementsProperty(
                    min_memory_required_in_mb=min_memory_mb,
                    max_memory_required_in_mb=max_memory_mb,
                    number_of_cpu_cores_required=cpu_cores,
                    number_of_accelerator_devices_required=accelerator_devices,
                ),
                startup,
                download,
            ),
            runtime_config=_Cfn.InferenceComponentRuntimeConfigProperty(copy_count=copy_count),
        )
        self._resource = resource
        self._arn = resource.attr_inference_component_arn

    @property
    def inference_component_name(self) -> str:
        """The component's name, as callers pass it to InvokeEndpoint (``InferenceComponentName``)."""
        return self._name

    @property
    def inference_component_arn(self) -> str:
        """``arn:PARTITION:sagemaker:REGION:ACCOUNT:inference-component/NAME``."""
        return self._arn

    @property
    def endpoint(self) -> SageMakerEndpointBase:
        """The endpoint the component runs on."""
        return self._endpoint

    @property
    def model(self) -> ModelBase:
        """The model one copy runs."""
        return self._model

    @property
    def variant_name(self) -> str:
        """The instance variant the copies are placed on."""
        return self._variant_name

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call InvokeEndpoint on this component's endpoint.

        SageMaker authorizes InvokeEndpoint on the endpoint; the statement also names this component's ARN,
        which allows nothing more, so the grant holds if IAM also evaluates the component.
        """
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:InvokeEndpoint"],
            resource_arns=[self._endpoint.endpoint_arn, self._arn],
        )

    def auto_scale_copy_count(self, *, min_capacity: int, max_capacity: int) -> ScalableCopyCount:
        """Let Application Auto Scaling change the copy count between ``min_capacity`` and ``max_capacity``.

        With ``min_capacity=0`` the copies scale in to none, and the step policy SageMaker documents
        for scaling out from zero is added: an alarm on NoCapacityInvocationFailures that adds one copy.
        Add a target-tracking policy to the result (``scale_on_invocations`` or
        ``scale_on_concurrent_requests``) for everything above that.

        Args:
            min_capacity: fewest copies (>= 0).
            max_capacity: most copies (>= 1, >= min_capacity).

        Raises:
            ValueError: min < 0, max < 1, min > max, or the copy count already scales.
        """
        if self._scaling is not None:
            raise ValueError(
                f"inference component {self.node.path} already has copy-count autoscaling; add policies "
                "to the first result"
            )
        self._scaling = ScalableCopyCount(
            self,
            "CopyCountScaling",
            inference_component_name=self._name,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            no_capacity_invocation_failures=self.metric_no_capacity_invocation_failures(
                statistic="Sum", period=Duration.minutes(1)
            ),
        )
        self._scaling.node.add_dependency(self._resource)
        return self._scaling

    def metric(
        self, metric_name: str, *, namespace: str = INVOCATION_METRICS_NAMESPACE, **props: Any
    ) -> cloudwatch.Metric:
        """A CloudWatch metric of this component (dimension InferenceComponentName).

        Args:
            metric_name: e.g. ``Invocations``, ``ModelLatency``, ``NoCapacityInvocationFailures``.
            namespace: ``AWS/SageMaker`` (invocations) or ``/aws/sagemaker/InferenceComponents`` (the
                copies' utilization). Default: AWS/SageMaker.
            props: more ``cloudwatch.Metric`` options (``statistic``, ``period``, ``label``...).
                Default: Sum over 5 minutes.
        """
        options: dict[str, Any] = {"statistic": "Sum", "period": Duration.minutes(5), **props}
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=metric_name,
            dimensions_map={"InferenceComponentName": self._name},
            **options,
        )

    def metric_invocations(self, **props: Any) -> cloudwatch.Metric:
        """Requests sent to this component (Sum over 5 minutes)."""
        return self.metric("Invocations", **props)

    def metric_invocations_4xx(self, **props: Any) -> cloudwatch.Metric:
        """Requests this component answered with a 4xx status (Sum over 5 minutes)."""
        return self.metric("Invocation4XXErrors", **props)

    def metric_invocations_5xx(self, **props: Any) -> cloudwatch.Metric:
        """Requests this component answered with a 5xx status (Sum over 5 minutes)."""
        return self.metric("Invocation5XXErrors", **props)

    def metric_model_latency(self, **props: Any) -> cloudwatch.Metric:
        """Time the container took to answer, in microseconds (Average over 5 minutes)."""
        return self.metric("ModelLatency", **{"statistic": "Average", **props})

    def metric_no_capacity_invocation_failures(self, **props: Any) -> cloudwatch.Metric:
        """Requests that failed because no copy (or no instance) was running (Sum over 5 minutes).

        SageMaker emits it when the component has scaled to zero; it is what wakes it up again.
        """
        return self.metric("NoCapacityInvocationFailures", **props)

    def _grant_logs(self, endpoint: Endpoint) -> None:
        """The model's role: the endpoint's log group and metrics; both roles: this component's log group."""
        model_role = self._model.role
        if model_role is not None:
            permissions.grant_logs_and_metrics(self, model_role, endpoint._metrics_name)
        for role in (model_role, endpoint.endpoint_config.execution_role):
            if role is not None:
                permissions.grant_log_group(
                    self,
                    role,
                    f"/aws/sagemaker/InferenceComponents/{self._name}",
                    "SageMaker names an inference component's log streams after the copies it starts; "
                    "access is limited to this component's own log group.",
                )


def _specification(
    model_name: str,
    compute: sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty,
    startup_timeout: float | None,
    download_timeout: float | None,
) -> sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty:
    startup = None
    if startup_timeout is not None or download_timeout is not None:
        startup = _Cfn.InferenceComponentStartupParametersProperty(
            container_startup_health_check_timeout_in_seconds=startup_timeout,
            model_data_download_timeout_in_seconds=download_timeout,
        )
    return _Cfn.InferenceComponentSpecificationProperty(
        model_name=model_name, compute_resource_requirements=compute, startup_parameters=startup
    )


def validate_component_name(name: str) -> None:
    validate_name("inference_component_name", name, COMPONENT_NAME_PATTERN)


def _validate_endpoint(endpoint: Construct, config: EndpointConfig, variant_name: str | None) -> str:
    if not config.inference_components:
        raise ValueError(
            f"endpoint {endpoint.node.path} serves models named by its variants, and SageMaker refuses "
            "inference components there: give it an EndpointConfig with inference_components=True"
        )
    names = [v.name for v in config.variants]
    chosen = variant_name or names[0]
    if chosen not in names:
        raise ValueError(f"variant_name must be one of {', '.join(names)}, got {chosen!r}")
    return chosen


def _validate_compute(
    min_memory_mb: int, cpu_cores: float | None, accelerator_devices: float | None, max_memory_mb: int | None
) -> None:
    def known(value: float | None) -> bool:
        return value is not None and not Token.is_unresolved(value)

    if min_memory_mb is None or (known(min_memory_mb) and min_memory_mb < MIN_MEMORY_MB):
        raise ValueError(
            f"min_memory_mb must be >= {MIN_MEMORY_MB} (MB reserved per copy), got {min_memory_mb}"
        )
    if known(cpu_cores) and cpu_cores < MIN_CPU_CORES:  # type: ignore[operator]
        raise ValueError(f"cpu_cores must be >= {MIN_CPU_CORES}, got {cpu_cores}")
    if known(accelerator_devices) and accelerator_devices < 1:  # type: ignore[operator]
        raise ValueError(f"accelerator_devices must be >= 1, got {accelerator_devices}")
    if known(max_memory_mb) and known(min_memory_mb) and max_memory_mb < min_memory_mb:  # type: ignore[operator]
        raise ValueError(f"max_memory_mb must be >= min_memory_mb ({min_memory_mb}), got {max_memory_mb}")
