"""What every SageMaker endpoint offers, created here or imported: invoke grants and CloudWatch metrics."""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

from ml_inference_cdk.constructs.sagemaker.scaling import INSTANCE_METRICS_NAMESPACE
from ml_inference_cdk.constructs.sagemaker.validation import validate_endpoint_name
from ml_inference_cdk.constructs.sagemaker.variants import DEFAULT_VARIANT_NAME

INVOCATION_METRICS_NAMESPACE: Final = "AWS/SageMaker"


class SageMakerEndpointBase(Construct):
    """What every endpoint offers, created here or imported: invoke grants and CloudWatch metrics."""

    _name: str
    _arn: str
    _metrics_name: str
    _default_variant: str

    @property
    def endpoint_name(self) -> str:
        """The endpoint's name, as callers pass it to InvokeEndpoint."""
        return self._name

    @property
    def endpoint_arn(self) -> str:
        """``arn:PARTITION:sagemaker:REGION:ACCOUNT:endpoint/NAME`` (SageMaker lowercases the name here)."""
        return self._arn

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call InvokeEndpoint (real-time requests) on this endpoint only."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )

    def grant_invoke_async(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call InvokeEndpointAsync on this endpoint only."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpointAsync"], resource_arns=[self.endpoint_arn]
        )

    def metric(
        self,
        metric_name: str,
        *,
        variant_name: str | None = None,
        namespace: str = INVOCATION_METRICS_NAMESPACE,
        **props: Any,
    ) -> cloudwatch.Metric:
        """A CloudWatch metric of one variant of this endpoint.

        Args:
            metric_name: e.g. ``Invocations``, ``ModelLatency``, ``CPUUtilization``.
            variant_name: the variant. Default: the endpoint's first variant.
            namespace: ``AWS/SageMaker`` (invocations) or ``/aws/sagemaker/Endpoints`` (instances).
                Default: AWS/SageMaker.
            props: more ``cloudwatch.Metric`` options (``statistic``, ``period``, ``label``...).
                Default: Sum over 5 minutes.
        """
        options: dict[str, Any] = {"statistic": "Sum", "period": Duration.minutes(5), **props}
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=metric_name,
            dimensions_map={
                "EndpointName": self._metrics_name,
                "VariantName": variant_name or self._default_variant,
            },
            **options,
        )

    def metric_invocations(self, *, variant_name: str | None = None, **props: Any) -> cloudwatch.Metric:
        """Requests sent to the model (Sum over 5 minutes)."""
        return self.metric("Invocations", variant_name=variant_name, **props)

    def metric_invocations_4xx(self, *, variant_name: str | None = None, **props: Any) -> cloudwatch.Metric:
        """Requests the model answered with a 4xx status (Sum over 5 minutes)."""
        return self.metric("Invocation4XXErrors", variant_name=variant_name, **props)

    def metric_invocations_5xx(self, *, variant_name: str | None = None, **props: Any) -> cloudwatch.Metric:
        """Requests the model answered with a 5xx status (Sum over 5 minutes)."""
        return self.metric("Invocation5XXErrors", variant_name=variant_name, **props)

    def metric_model_latency(self, *, variant_name: str | None = None, **props: Any) -> cloudwatch.Metric:
        """Time the container took to answer, in microseconds (Average over 5 minutes)."""
        return self.metric("ModelLatency", variant_name=variant_name, **{"statistic": "Average", **props})

    def metric_overhead_latency(self, *, variant_name: str | None = None, **props: Any) -> cloudwatch.Metric:
        """Time SageMaker added on top of the model, in microseconds (Average over 5 minutes)."""
        return self.metric("OverheadLatency", variant_name=variant_name, **{"statistic": "Average", **props})

    def metric_cpu_utilization(self, *, variant_name: str | None = None, **props: Any) -> cloudwatch.Metric:
        """CPU utilization summed over an instance's vCPUs, in percent (Average over 5 minutes)."""
        return self.metric(
            "CPUUtilization",
            variant_name=variant_name,
            namespace=INSTANCE_METRICS_NAMESPACE,
            **{"statistic": "Average", **props},
        )

    # --- multi-model endpoints (ModelArtifact.from_multi_model_prefix): SageMaker's model loading metrics ---

    def metric_model_loading_wait_time(
        self, *, variant_name: str | None = None, **props: Any
    ) -> cloudwatch.Metric:
        """Multi-model: how long requests waited for their model to be downloaded and/or loaded, in
        microseconds (Average over 5 minutes)."""
        return self.metric(
            "ModelLoadingWaitTime", variant_name=variant_name, **{"statistic": "Average", **props}
        )

    def metric_model_cache_hit(self, *, variant_name: str | None = None, **props: Any) -> cloudwatch.Metric:
        """Multi-model: requests whose model was already loaded; the Average is the cache hit ratio
        (Average over 5 minutes)."""
        return self.metric("ModelCacheHit", variant_name=variant_name, **{"statistic": "Average", **props})

    def metric_loaded_model_count(
        self, *, variant_name: str | None = None, **props: Any
    ) -> cloudwatch.Metric:
        """Multi-model: models loaded in the containers, per instance (Average over 5 minutes; ``Sum`` adds up
        the instances, counting a model loaded on two instances twice)."""
        return self.metric(
            "LoadedModelCount",
            variant_name=variant_name,
            namespace=INSTANCE_METRICS_NAMESPACE,
            **{"statistic": "Average", **props},
        )

    def metric_model_downloading_time(
        self, *, variant_name: str | None = None, **props: Any
    ) -> cloudwatch.Metric:
        """Multi-model: time to download a model from S3, in microseconds (Average over 5 minutes)."""
        return self.metric(
            "ModelDownloadingTime", variant_name=variant_name, **{"statistic": "Average", **props}
        )

    def metric_model_loading_time(
        self, *, variant_name: str | None = None, **props: Any
    ) -> cloudwatch.Metric:
        """Multi-model: time the container took to load a model (``POST /models``), in microseconds
        (Average over 5 minutes)."""
        return self.metric("ModelLoadingTime", variant_name=variant_name, **{"statistic": "Average", **props})

    def metric_model_unloading_time(
        self, *, variant_name: str | None = None, **props: Any
    ) -> cloudwatch.Metric:
        """Multi-model: time the container took to unload a model (``DELETE /models/{name}``), in
        microseconds (Average over 5 minutes; ``statistic="SampleCount"`` counts the unloads, which
        climb when the instances' memory is too small for the models in use)."""
        return self.metric(
            "ModelUnloadingTime", variant_name=variant_name, **{"statistic": "Average", **props}
        )


class ImportedSageMakerEndpoint(SageMakerEndpointBase):
    """An endpoint created elsewhere, known by name: grants and metrics, nothing created."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str = DEFAULT_VARIANT_NAME,
    ) -> None:
        """Refer to an existing endpoint.

        Args:
            endpoint_name: the endpoint's name.
            variant_name: the variant the metric helpers report on. Default: AllTraffic.

        Raises:
            ValueError: a name SageMaker would not accept.
        """
        validate_endpoint_name(endpoint_name)
        super().__init__(scope, construct_id)
        self._name = endpoint_name
        self._metrics_name = endpoint_name
        self._default_variant = variant_name
        self._arn = endpoint_arn(self, endpoint_name)


def endpoint_arn(scope: Construct, name: str) -> str:
    resource_name = name if Token.is_unresolved(name) else name.lower()
    return Stack.of(scope).format_arn(service="sagemaker", resource="endpoint", resource_name=resource_name)
