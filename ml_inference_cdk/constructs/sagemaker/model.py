"""A SageMaker model: the inference image, the model data and the execution role SageMaker runs them with.

``Model`` maps one ``AWS::SageMaker::Model``, in the style of aws-sagemaker-alpha's ``Model``, without its
``AmazonSageMakerFullAccess`` role: the role created here may pull exactly this image and read exactly this
model data. Endpoint configurations (``EndpointConfig``) refer to it; the endpoint that serves it grants the
role its own log group (``Endpoint``).

Instead of an image and a model.tar.gz, a model may serve a version from the model registry
(``model_package``): SageMaker reads the image and the model data from the registered version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_inference_cdk.constructs.contract import ENV_MODEL_DIR, MODEL_DIR, container_environment
from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact, ModelArtifactConfig
from ml_inference_cdk.constructs.sagemaker import multi_model, permissions
from ml_inference_cdk.constructs.sagemaker.model_registry import ModelPackage
from ml_inference_cdk.constructs.sagemaker.validation import validate_network
from ml_inference_cdk.constructs.sagemaker.variants import validate_name
from ml_inference_cdk.constructs.sources import check_sources


class ModelBase(Construct):
    """What endpoint configurations need of a model, created here or imported."""

    _model_name: str
    _role: iam.IRole | None = None
    _in_vpc: bool = False
    _network_isolation: bool = False
    _multi_model: bool = False

    @property
    def model_name(self) -> str:
        """The model's name, as endpoint configurations refer to it."""
        return self._model_name

    @property
    def model_arn(self) -> str:
        """``arn:PARTITION:sagemaker:REGION:ACCOUNT:model/NAME``."""
        return Stack.of(self).format_arn(
            service="sagemaker", resource="model", resource_name=self._model_name
        )

    @property
    def role(self) -> iam.IRole | None:
        """The execution role, when known here: endpoints grant it their log group. None when imported."""
        return self._role

    @property
    def in_vpc(self) -> bool:
        """Whether the model's network interfaces run in a VPC (SageMaker serverless refuses that)."""
        return self._in_vpc

    @property
    def network_isolation(self) -> bool:
        """Whether the container runs without network access (SageMaker serverless refuses that)."""
        return self._network_isolation

    @property
    def multi_model(self) -> bool:
        """Whether it serves many models from an S3 prefix (``Mode: MultiModel``). False when imported."""
        return self._multi_model


class ImportedModel(ModelBase):
    """A model created elsewhere, known by name."""

    def __init__(self, scope: Construct, construct_id: str, *, model_name: str) -> None:
        validate_model_name(model_name)
        super().__init__(scope, construct_id)
        self._model_name = model_name


class Model(ModelBase):
    """The inference image serving one model.tar.gz, run by SageMaker with a least-privilege role.

    Example::

        model = Model(
            self, "Model",
            image=ContainerImage.from_asset("inference_image"),
            model_artifact=ModelArtifact.from_asset("build/model/model.tar.gz"),
        )
        config = EndpointConfig(self, "Config", model=model)
        Endpoint(self, "Endpoint", endpoint_config=config)
    """

    @staticmethod
    def from_model_name(scope: Construct, construct_id: str, model_name: str) -> ImportedModel:
        """Refer to an existing model by name (its role is not known here: grant it yourself)."""
        return ImportedModel(scope, construct_id, model_name=model_name)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ContainerImage | None = None,
        model_artifact: ModelArtifact | None = None,
        model_package: ModelPackage | None = None,
        environment: Mapping[str, str] | None = None,
        role: iam.IRole | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        network_isolation: bool = False,
        model_name: str | None = None,
    ) -> None:
        """Create the model (and, by default, its role and, in a VPC, its security group).

        Args:
            image: the inference image (``ContainerImage.from_asset`` / ``.from_repository`` / ...). Required
                unless ``model_package`` is given.
            model_artifact: the model.tar.gz (``ModelArtifact.from_asset`` / ``.from_bucket`` / ...), or an S3
                prefix: many models for a multi-model endpoint (``.from_multi_model_prefix``) or one model's
                files uncompressed (``.from_uncompressed_prefix``). Required unless ``model_package`` is
                given.
            model_package: a version from the model registry (``group.model_package(3)``,
                ``ModelPackage.from_arn(...)``), instead of ``image`` and ``model_artifact``
                (PrimaryContainer.ModelPackageName). The role may describe exactly that version; SageMaker
                pulls the version's image and reads its model data with the role too, so grant those to
                ``model.role`` (``repository.grant_pull``, ``bucket.grant_read``). Default: none.
            environment: container environment, added to the contract's defaults (with ``model_package``:
                the only environment added to the version's own). Default: the defaults only.
            role: execution role; the model grants what it needs to it. Default: a new, least privilege.
            vpc: run the model's network interfaces in this VPC. Default: SageMaker's managed network.
            vpc_subnets: subnets of ``vpc``. Default: the VPC's private subnets.
            security_groups: security groups (1-5) of the network interfaces. Default: a new one with
                outbound access only, when ``vpc`` is given.
            network_isolation: no network access from the container at all. Default: False.
            model_name: the model's name. Default: generated by CloudFormation (a new model on every change).

        Raises:
            TypeError: ``image`` or ``model_artifact`` is not a ContainerImage / ModelArtifact; the message
                names the factory to pass instead.
            ValueError: a value SageMaker would reject at deploy time (see the message).
        """
        _check_sources(image, model_artifact, model_package)
        multi_model.validate_environment(environment)
        validate_network(vpc, vpc_subnets, security_groups)
        if model_name is not None:
            validate_model_name(model_name)
        super().__init__(scope, construct_id)
        self._in_vpc = vpc is not None
        self._network_isolation = network_isolation
        self._multi_model = model_artifact is not None and model_artifact.multi_model
        self._role = role or iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Execution role of a SageMaker endpoint (ml-inference-cdk): least privilege",
        )
        self._image_uri: str | None = None
        self._model_data_url: str | None = None
        self._model_package = model_package
        self._connections: ec2.Connections | None = None
        dependable = None
        if model_package is not None:
            permissions.grant_model_package(self._role, model_package.arn)
            self._environment = dict(environment or {})
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=model_package.arn, environment=self._environment or None
            )
        else:
            assert image is not None  # _check_sources
            assert model_artifact is not None
            image_config = image.bind(self, self._role)
            artifact_config = model_artifact.bind(self, self._role)
            self._image_uri = image_config.image_uri
            self._model_data_url = artifact_config.s3_uri
            dependable = image_config.dependable
            self._environment = {
                ENV_MODEL_DIR: MODEL_DIR,
                **multi_model.container_environment_of(artifact_config),
                **container_environment(extra=environment),
            }
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_config.image_uri, environment=self._environment, **_model_data(artifact_config)
            )
        vpc_config = self._vpc_config(vpc, vpc_subnets, security_groups) if vpc is not None else None

        resource = sagemaker.CfnModel(
            self,
            "Default",  # "Default" keeps the logical id the SageMakerEndpoint pattern had before this L2
            model_name=model_name,
            execution_role_arn=self._role.role_arn,
            primary_container=container,
            vpc_config=vpc_config,
            enable_network_isolation=network_isolation or None,
        )
        # SageMaker checks the role's access to the image and the model data when it creates the model, so the
        # role's policies (separate AWS::IAM::Policy resources) and the image copy must exist first. The role
        # itself is already implied by ExecutionRoleArn.
        for policy in self._role.node.children:
            if policy.node.id != "Resource":
                resource.node.add_dependency(policy)
        if dependable is not None:
            resource.node.add_dependency(dependable)
        self._resource = resource
        self._model_name = resource.attr_model_name

    @property
    def role(self) -> iam.IRole:
        """The execution role SageMaker runs the model with (created here unless one was given)."""
        assert self._role is not None
        return self._role

    @property
    def image_uri(self) -> str | None:
        """The image the model runs; None for a model package (the registered version names it)."""
        return self._image_uri

    @property
    def model_data_url(self) -> str | None:
        """``s3://BUCKET/KEY`` of the model.tar.gz (``s3://BUCKET/PREFIX/``: a prefix); None for a package."""
        return self._model_data_url

    @property
    def model_package(self) -> ModelPackage | None:
        """The registered version the model serves, if it serves one."""
        return self._model_package

    @property
    def environment(self) -> Mapping[str, str]:
        """The container's environment: the contract's defaults and the caller's additions."""
        return dict(self._environment)

    @property
    def connections(self) -> ec2.Connections | None:
        """The network interfaces' security groups when the model runs in a VPC, else None."""
        return self._connections

    def _vpc_config(
        self,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
    ) -> sagemaker.CfnModel.VpcConfigProperty:
        groups = list(security_groups or []) or [network_interfaces_group(self, vpc)]
        subnets = _select_subnets(vpc, vpc_subnets)
        self._connections = ec2.Connections(security_groups=groups)
        permissions.grant_network_interfaces(self, self.role, vpc, subnets.subnet_ids, groups)
        return sagemaker.CfnModel.VpcConfigProperty(
            security_group_ids=[group.security_group_id for group in groups], subnets=subnets.subnet_ids
        )


def _check_sources(
    image: ContainerImage | None, model_artifact: ModelArtifact | None, model_package: ModelPackage | None
) -> None:
    """Either an image and a model.tar.gz, or a registered model package."""
    if model_package is None:
        check_sources(image=image, model_artifact=model_artifact, prefixes_allowed=True)
        return
    if not isinstance(model_package, ModelPackage):
        raise TypeError(
            f"model_package must be a ModelPackage, got {type(model_package).__name__}; pass "
            "ModelPackage.from_arn(arn) or group.model_package(version)"
        )
    given = [
        name for name, value in (("image", image), ("model_artifact", model_artifact)) if value is not None
    ]
    if given:
        raise ValueError(
            f"model_package cannot be used with {' or '.join(given)}: the registered version names its own "
            "image and model data; pass either model_package, or image and model_artifact"
        )


def _model_data(config: ModelArtifactConfig) -> dict[str, Any]:
    """Mode and where the model data is: ModelDataUrl (a model.tar.gz, or a multi-model prefix) or, for
    uncompressed data, ModelDataSource."""
    if not config.compressed:
        return {
            "mode": config.mode,
            "model_data_source": sagemaker.CfnModel.ModelDataSourceProperty(
                s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                    s3_uri=config.s3_uri, s3_data_type="S3Prefix", compression_type="None"
                )
            ),
        }
    if config.mode == "MultiModel":
        return {
            "mode": config.mode,
            "model_data_url": config.s3_uri,
            "multi_model_config": None
            if config.model_caching
            else sagemaker.CfnModel.MultiModelConfigProperty(model_cache_setting="Disabled"),
        }
    return {"mode": config.mode, "model_data_url": config.s3_uri}


def network_interfaces_group(scope: Construct, vpc: ec2.IVpc) -> ec2.SecurityGroup:
    """``SecurityGroup`` in ``scope``: the model's network interfaces, outbound access only."""
    return ec2.SecurityGroup(
        scope,
        "SecurityGroup",
        vpc=vpc,
        description="SageMaker endpoint network interfaces (ml-inference-cdk)",
        allow_all_outbound=True,
    )


def validate_model_name(name: str) -> None:
    validate_name("model_name", name)


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
