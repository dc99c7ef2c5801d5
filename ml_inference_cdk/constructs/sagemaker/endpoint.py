"""A SageMaker real-time endpoint serving the inference image: model, endpoint configuration and endpoint.

Written in the style of aws-sagemaker-alpha's ``Model`` + ``EndpointConfig`` + ``Endpoint``, as one construct,
without the alpha module's ``AmazonSageMakerFullAccess`` role: the execution role created here gets only what
this endpoint uses (its image, its model object, its log group, the prefixes it writes to). The CloudFormation
resources stay private; callers get typed attributes, grants, metrics and autoscaling.

The endpoint always gets a deterministic physical name (unless the caller gives one): its role's log-group
permission, its rollback alarms and its scaling target all need the name, while the endpoint depends on
them; a CloudFormation-generated name would make that a circular dependency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aws_cdk import Duration, Names, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_inference_cdk.constructs.contract import ENV_MODEL_DIR, MODEL_DIR, container_environment
from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact
from ml_inference_cdk.constructs.sagemaker import cfn as cfn
from ml_inference_cdk.constructs.sagemaker import permissions as permissions
from ml_inference_cdk.constructs.sagemaker.deployment import DeploymentGuardrails
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.scaling import INSTANCE_METRICS_NAMESPACE, ScalableInstanceCount
from ml_inference_cdk.constructs.sagemaker.validation import (
    resolve_variants,
    validate_autoscaling,
    validate_combinations,
    validate_endpoint_name,
)
from ml_inference_cdk.constructs.sagemaker.variants import (
    DEFAULT_VARIANT_NAME,
    ProductionVariant,
    whole_seconds,
)
from ml_inference_cdk.constructs.sources import check_sources

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
        self._arn = _endpoint_arn(self, endpoint_name)


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
            model_artifact: the model.tar.gz (``ModelArtifact.from_asset`` / ``.from_bucket`` / ...).
            instance_type: instance type of the default single variant. Default: ml.m5.large.
            initial_instance_count: instances of the default single variant. Default: 1.
            variants: the production variants (``InstanceVariant`` / ``ServerlessVariant``), instead of the
                default single one. Default: one InstanceVariant ``AllTraffic``, ml.m5.large x 1.
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
        check_sources(image=image, model_artifact=model_artifact)
        resolved_variants = resolve_variants(variants, instance_type, initial_instance_count)
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
        if endpoint_name is not None:
            validate_endpoint_name(endpoint_name)

        super().__init__(scope, construct_id)
        physical_name = endpoint_name or _generated_name(self)
        self._metrics_name = physical_name
        self._default_variant = resolved_variants[0].name
        self._variants = resolved_variants
        self._async_inference = async_inference
        self._scaling: dict[str, ScalableInstanceCount] = {}

        self._role: iam.IRole = role or iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Execution role of a SageMaker endpoint (ml-inference-cdk): least privilege",
        )
        image_config = image.bind(self, self._role)
        artifact_config = model_artifact.bind(self, self._role)
        self._image_uri = image_config.image_uri
        self._model_data_url = artifact_config.s3_uri

        self._connections: ec2.Connections | None = None
        vpc_config: sagemaker.CfnModel.VpcConfigProperty | None = None
        if vpc is not None:
            groups = list(security_groups or []) or [
                ec2.SecurityGroup(
                    self,
                    "SecurityGroup",
                    vpc=vpc,
                    description="SageMaker endpoint network interfaces (ml-inference-cdk)",
                    allow_all_outbound=True,
                )
            ]
            subnets = _select_subnets(vpc, vpc_subnets)
            self._connections = ec2.Connections(security_groups=groups)
            vpc_config = sagemaker.CfnModel.VpcConfigProperty(
                security_group_ids=[group.security_group_id for group in groups], subnets=subnets.subnet_ids
            )
            permissions.grant_network_interfaces(self, self._role, vpc, subnets.subnet_ids, groups)

        permissions.grant_logs_and_metrics(self, self._role, physical_name)
        if volume_encryption_key is not None:
            permissions.grant_volume_key(self._role, volume_encryption_key)
        if async_inference is not None:
            permissions.grant_async_inference(self, self._role, async_inference)
        if data_capture is not None:
            permissions.grant_data_capture(self, self._role, data_capture)

        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self._role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_config.image_uri,
                model_data_url=artifact_config.s3_uri,
                mode="SingleModel",
                environment={ENV_MODEL_DIR: MODEL_DIR, **container_environment(extra=environment)},
            ),
            vpc_config=vpc_config,
            enable_network_isolation=network_isolation or None,
        )
        # SageMaker checks the role's access to the image and the model data when it creates the model, so the
        # role's policies (separate AWS::IAM::Policy resources) and the image copy must exist first. The role
        # itself is already implied by ExecutionRoleArn.
        for policy in self._role.node.children:
            if policy.node.id != "Resource":
                model.node.add_dependency(policy)
        if image_config.dependable is not None:
            model.node.add_dependency(image_config.dependable)

        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[
                cfn.production_variant(variant, model.attr_model_name, startup_timeout, download_timeout)
                for variant in resolved_variants
            ],
            kms_key_id=volume_encryption_key.key_arn if volume_encryption_key else None,
            async_inference_config=cfn.async_inference_config(async_inference) if async_inference else None,
            data_capture_config=cfn.data_capture_config(data_capture) if data_capture else None,
        )

        self._rollback_alarms = self._create_rollback_alarms(deployment) if deployment else ()
        endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_config_name=config.attr_endpoint_config_name,
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
        self._endpoint = endpoint
        self._name = endpoint.attr_endpoint_name
        self._arn = endpoint.ref  # Ref is the ARN, exactly as SageMaker spells it
        self._model_name = model.attr_model_name
        self._endpoint_config_name = config.attr_endpoint_config_name

    @property
    def role(self) -> iam.IRole:
        """The execution role SageMaker runs the model with (created here unless one was given)."""
        return self._role

    @property
    def model_name(self) -> str:
        """The SageMaker model's name (generated; a new model when the image or the artifact changes)."""
        return self._model_name

    @property
    def endpoint_config_name(self) -> str:
        """The endpoint configuration's name (generated; a new configuration on every change)."""
        return self._endpoint_config_name

    @property
    def image_uri(self) -> str:
        """The image the model runs."""
        return self._image_uri

    @property
    def model_data_url(self) -> str:
        """``s3://BUCKET/KEY`` of the model.tar.gz the model serves."""
        return self._model_data_url

    @property
    def connections(self) -> ec2.Connections | None:
        """The network interfaces' security groups when the endpoint runs in a VPC, else None."""
        return self._connections

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
        name = variant_name or self._default_variant
        validate_autoscaling(self._variants, name, min_capacity, max_capacity)
        if name in self._scaling:
            raise ValueError(
                f"variant_name {name!r} already has autoscaling; add policies to the first result"
            )
        scaling = ScalableInstanceCount(
            self,
            f"Scaling{name}",
            endpoint_name=self._endpoint.attr_endpoint_name,
            variant_name=name,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            cpu_utilization=self.metric_cpu_utilization(variant_name=name, period=Duration.minutes(1)),
        )
        self._scaling[name] = scaling
        return scaling

    def grant_invoke_async(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call InvokeEndpointAsync, upload requests and read responses and failures.

        With ``async_inference`` the grantee may put objects under its ``input_prefix`` and get objects under
        its ``output_prefix`` and ``failure_prefix`` (and use the bucket's KMS key for that), nothing else.
        """
        grant = super().grant_invoke_async(grantee)
        if self._async_inference is None:
            return grant
        return grant.combine(permissions.grant_async_caller(self, grantee, self._async_inference))

    def _create_rollback_alarms(self, deployment: DeploymentGuardrails) -> tuple[cloudwatch.IAlarm, ...]:
        """5XX-error and model-latency alarms per variant, plus the caller's.

        The alarms name the endpoint by its literal name, not a reference: the endpoint refers to the alarms.
        """
        created: list[cloudwatch.IAlarm] = []
        if deployment.default_alarms:
            scope = Construct(self, "RollbackAlarms")
            for variant in self._variants:
                errors = self.metric_invocations_5xx(variant_name=variant.name, period=Duration.minutes(1))
                created.append(
                    errors.create_alarm(
                        scope,
                        f"{variant.name}Invocation5XXErrors",
                        alarm_description=f"Rolls a deployment back: {variant.name} answers with 5XX errors.",
                        threshold=deployment.error_threshold,
                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                        evaluation_periods=1,
                        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    )
                )
                latency = self.metric_model_latency(variant_name=variant.name, period=Duration.minutes(1))
                created.append(
                    latency.create_alarm(
                        scope,
                        f"{variant.name}ModelLatency",
                        alarm_description=f"Rolls a deployment back: {variant.name} answers too slowly.",
                        threshold=deployment.latency_threshold_microseconds,
                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        evaluation_periods=2,
                        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    )
                )
        return (*created, *deployment.alarms)


def _generated_name(scope: Construct) -> str:
    """Stable and unique per stack and path, lowercase so it reads the same in the name and the ARN."""
    name = Names.unique_resource_name(scope, max_length=63, separator="-").lower()
    return re.sub(r"[^a-z0-9-]", "", name).strip("-")


def _endpoint_arn(scope: Construct, name: str) -> str:
    resource_name = name if Token.is_unresolved(name) else name.lower()
    return Stack.of(scope).format_arn(service="sagemaker", resource="endpoint", resource_name=resource_name)


def _select_subnets(vpc: ec2.IVpc, selection: ec2.SubnetSelection | None) -> ec2.SelectedSubnets:
    """``vpc.select_subnets`` takes the selection's fields as keywords in Python."""
    if selection is None:
        return vpc.select_subnets()
    return vpc.select_subnets(
        availability_zones=selection.availability_zones,
        one_per_az=selection.one_per_az,
        subnet_filters=selection.subnet_filters,
        subnet_group_name=selection.subnet_group_name,
        subnets=selection.subnets,
        subnet_type=selection.subnet_type,
    )
