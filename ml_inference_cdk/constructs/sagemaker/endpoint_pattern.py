"""The composed SageMaker endpoint: a model, an endpoint configuration and an endpoint in one construct.

``SageMakerEndpoint`` is to the L2s in this package (``Model``, ``EndpointConfig``, ``Endpoint``) what
aws-ecs-patterns is to aws-ecs: one call for the common case, the L2s underneath (``.model``,
``.endpoint_config``, ``.endpoint``) for everything else. It creates the execution role, the security group
and the rollback alarms in its own scope, so the logical ids of stacks built before the L2s do not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact
from ml_inference_cdk.constructs.sagemaker.deployment import DeploymentGuardrails
from ml_inference_cdk.constructs.sagemaker.endpoint import (
    Endpoint,
    generated_name,
    rollback_alarms,
    scale_instance_count,
    with_alarms,
)
from ml_inference_cdk.constructs.sagemaker.endpoint_base import (
    ImportedSageMakerEndpoint,
    SageMakerEndpointBase,
)
from ml_inference_cdk.constructs.sagemaker.endpoint_config import EndpointConfig
from ml_inference_cdk.constructs.sagemaker.model import Model, network_interfaces_group
from ml_inference_cdk.constructs.sagemaker.multi_model import (
    validate_environment,
    validate_multi_model_variants,
)
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.scaling import ScalableInstanceCount
from ml_inference_cdk.constructs.sagemaker.validation import (
    resolve_shadow_variants,
    resolve_variants,
    validate_combinations,
    validate_endpoint_name,
)
from ml_inference_cdk.constructs.sagemaker.variants import (
    DEFAULT_VARIANT_NAME,
    ProductionVariant,
    whole_seconds,
)
from ml_inference_cdk.constructs.sources import check_sources


class SageMakerEndpoint(SageMakerEndpointBase):
    """A SageMaker endpoint running the inference image with one model.tar.gz, behind one or more variants.

    Example::

        endpoint = SageMakerEndpoint(
            self, "Endpoint",
            image=ContainerImage.from_asset("inference_image"),
            model_artifact=ModelArtifact.from_asset("build/model/model.tar.gz"),
        )
        endpoint.grant_invoke(my_function)
    """

    @staticmethod
    def from_endpoint_name(
        scope: Construct, construct_id: str, endpoint_name: str, *, variant_name: str = DEFAULT_VARIANT_NAME
    ) -> ImportedSageMakerEndpoint:
        """Import an existing endpoint by name, for grants and metrics.

        Args:
            endpoint_name: the endpoint's name.
            variant_name: the variant the metric helpers report on. Default: AllTraffic.
        """
        return ImportedSageMakerEndpoint(
            scope, construct_id, endpoint_name=endpoint_name, variant_name=variant_name
        )

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ContainerImage,
        model_artifact: ModelArtifact,
        instance_type: str | None = None,
        initial_instance_count: int | None = None,
        variants: Sequence[ProductionVariant] | None = None,
        shadow_variants: Sequence[ProductionVariant] | None = None,
        environment: Mapping[str, str] | None = None,
        role: iam.IRole | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        network_isolation: bool = False,
        volume_encryption_key: kms.IKey | None = None,
        async_inference: AsyncInference | None = None,
        data_capture: DataCapture | None = None,
        deployment: DeploymentGuardrails | None = None,
        retain_all_variant_properties: bool = False,
        exclude_retained_variant_properties: Sequence[str] | None = None,
        container_startup_health_check_timeout: Duration | None = None,
        model_data_download_timeout: Duration | None = None,
        endpoint_name: str | None = None,
    ) -> None:
        """Create the model, the endpoint configuration and the endpoint (and, by default, the role).

        Args:
            image: the inference image (``ContainerImage.from_asset`` / ``.from_repository`` / ...).
            model_artifact: the model.tar.gz (``ModelArtifact.from_asset`` / ``.from_bucket`` / ...), or an S3
                prefix: many models for a multi-model endpoint (``.from_multi_model_prefix``; invoke with
                ``TargetModel``) or one model's files uncompressed (``.from_uncompressed_prefix``).
            instance_type: instance type of the default single variant. Default: ml.m5.large.
            initial_instance_count: instances of the default single variant. Default: 1.
            variants: the production variants (``InstanceVariant`` / ``ServerlessVariant``), instead of the
                default single one. Default: one InstanceVariant ``AllTraffic``, ml.m5.large x 1.
            shadow_variants: one ``InstanceVariant`` that gets a copy of the production variant's requests,
                its answers dropped: a shadow test of another model (``InstanceVariant(model=...)``, a
                ``Model`` of its own or one from the model registry) or instance type. SageMaker allows it
                next to exactly one production variant, without serverless or asynchronous inference.
                Default: none.
            environment: container environment, added to the contract's defaults. Default: the defaults only.
            role: execution role; the endpoint grants what it needs to it. Default: a new, least privilege.
            vpc: run the model's network interfaces in this VPC. Default: SageMaker's managed network.
            vpc_subnets: subnets of ``vpc``. Default: the VPC's private subnets.
            security_groups: security groups (1-5) of the network interfaces. Default: a new one with
                outbound access only, when ``vpc`` is given.
            network_isolation: no network access from the container at all. Default: False.
            volume_encryption_key: KMS key for the instances' storage volumes. Default: AWS managed key.
            async_inference: queue requests and write responses to S3. Default: real-time inference.
            data_capture: record requests/responses to S3. Default: no capture.
            deployment: blue/green or rolling updates with automatic rollback. Default: SageMaker's
                all-at-once blue/green without alarms.
            retain_all_variant_properties: keep variant properties (instance counts set by autoscaling,
                weights) across updates. Default: False.
            exclude_retained_variant_properties: with ``retain_all_variant_properties``, properties to take
                from the new configuration anyway (DesiredInstanceCount, DesiredWeight, DataCaptureConfig).
                Default: none.
            container_startup_health_check_timeout: for every instance variant without its own (60-3600 s).
                Default: SageMaker's.
            model_data_download_timeout: for every instance variant without its own (60-3600 s).
                Default: SageMaker's.
            endpoint_name: the endpoint's name. Default: derived from the construct path (stable, lowercase).

        Raises:
            TypeError: ``image`` or ``model_artifact`` is not a ContainerImage / ModelArtifact (a plain URI
                string, say); the message names the factory to pass instead.
            ValueError: a value or combination SageMaker would reject at deploy time (see the message).
        """
        check_sources(image=image, model_artifact=model_artifact, prefixes_allowed=True)
        resolved_variants = resolve_variants(variants, instance_type, initial_instance_count)
        resolve_shadow_variants(resolved_variants, shadow_variants, async_inference=async_inference)
        startup_timeout = whole_seconds(
            "container_startup_health_check_timeout", container_startup_health_check_timeout, 60, 3600
        )
        download_timeout = whole_seconds("model_data_download_timeout", model_data_download_timeout, 60, 3600)
        validate_combinations(
            resolved_variants,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            network_isolation=network_isolation,
            volume_encryption_key=volume_encryption_key,
            async_inference=async_inference,
            data_capture=data_capture,
            deployment=deployment,
            retain_all_variant_properties=retain_all_variant_properties,
            exclude_retained_variant_properties=exclude_retained_variant_properties,
            timeouts_given=startup_timeout is not None or download_timeout is not None,
        )
        validate_multi_model_variants(
            resolved_variants if model_artifact.multi_model else (),
            async_inference=async_inference is not None,
        )
        validate_environment(environment)
        if endpoint_name is not None:
            validate_endpoint_name(endpoint_name)

        super().__init__(scope, construct_id)
        physical_name = endpoint_name or generated_name(self)
        self._metrics_name = physical_name
        self._default_variant = resolved_variants[0].name
        self._variants = resolved_variants
        self._scaling: dict[str, ScalableInstanceCount] = {}

        self._role: iam.IRole = role or iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Execution role of a SageMaker endpoint (ml-inference-cdk): least privilege",
        )
        image.bind(self, self._role)  # the image asset (and copy) where this pattern made them before its L2s
        if vpc is not None and not security_groups:
            security_groups = [network_interfaces_group(self, vpc)]  # here: the logical id it had before
        self._model = Model(
            self,
            "Model",
            image=image,
            model_artifact=model_artifact,
            environment=environment,
            role=self._role,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            network_isolation=network_isolation,
        )
        self._endpoint_config = EndpointConfig(
            self,
            "EndpointConfig",
            model=self._model,
            variants=resolved_variants,
            shadow_variants=shadow_variants,
            volume_encryption_key=volume_encryption_key,
            async_inference=async_inference,
            data_capture=data_capture,
            container_startup_health_check_timeout=container_startup_health_check_timeout,
            model_data_download_timeout=model_data_download_timeout,
        )
        self._rollback_alarms: tuple[cloudwatch.IAlarm, ...] = ()
        if deployment is not None:
            self._rollback_alarms = rollback_alarms(self, self, resolved_variants, deployment)
        self._endpoint = Endpoint(
            self,
            "Endpoint",
            endpoint_config=self._endpoint_config,
            endpoint_name=physical_name,
            deployment=with_alarms(deployment, self._rollback_alarms) if deployment else None,
            retain_all_variant_properties=retain_all_variant_properties,
            exclude_retained_variant_properties=exclude_retained_variant_properties,
        )
        self._name = self._endpoint.endpoint_name
        self._arn = self._endpoint.endpoint_arn

    @property
    def model(self) -> Model:
        """The model L2, for what this pattern does not expose."""
        return self._model

    @property
    def endpoint_config(self) -> EndpointConfig:
        """The endpoint configuration L2."""
        return self._endpoint_config

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint L2."""
        return self._endpoint

    @property
    def role(self) -> iam.IRole:
        """The execution role SageMaker runs the model with (created here unless one was given)."""
        return self._role

    @property
    def model_name(self) -> str:
        """The SageMaker model's name (generated; a new model when the image or the artifact changes)."""
        return self._model.model_name

    @property
    def endpoint_config_name(self) -> str:
        """The endpoint configuration's name (generated; a new configuration on every change)."""
        return self._endpoint_config.endpoint_config_name

    @property
    def image_uri(self) -> str:
        """The image the model runs."""
        uri = self._model.image_uri
        assert uri is not None  # this pattern's model always runs an image
        return uri

    @property
    def model_data_url(self) -> str:
        """``s3://BUCKET/KEY`` of the model.tar.gz the model serves (``s3://BUCKET/PREFIX/`` for a prefix)."""
        url = self._model.model_data_url
        assert url is not None  # this pattern's model always has model data
        return url

    @property
    def connections(self) -> ec2.Connections | None:
        """The network interfaces' security groups when the endpoint runs in a VPC, else None."""
        return self._model.connections

    @property
    def rollback_alarms(self) -> tuple[cloudwatch.IAlarm, ...]:
        """The alarms that roll a guarded deployment back (the created ones first, then the caller's)."""
        return self._rollback_alarms

    @property
    def variant_names(self) -> tuple[str, ...]:
        """The production variants' names, in order."""
        return tuple(variant.name for variant in self._variants)

    @property
    def variants(self) -> tuple[ProductionVariant, ...]:
        """The production variants, in order."""
        return self._variants

    @property
    def shadow_variants(self) -> tuple[ProductionVariant, ...]:
        """The shadow variants (none, or one); ``metric_*(variant_name=...)`` reports on them too."""
        return self._endpoint_config.shadow_variants

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
            self._variants,
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
        return self._endpoint.grant_invoke_async(grantee)
