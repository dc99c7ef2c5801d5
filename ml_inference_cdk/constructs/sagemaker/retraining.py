"""Retraining: a Step Functions workflow that trains with the inference image, then updates an endpoint.

``RetrainingWorkflow`` runs the image's ``train`` (the image that serves) as a SageMaker training job on an
S3 prefix of training data, makes a model of the result, a new endpoint configuration with the endpoint's
variants, and updates the endpoint to it (a blue/green update, as any configuration change). Built on
aws-stepfunctions-tasks; every task gets a role made here, never the ``AmazonSageMakerFullAccess`` role the
tasks would otherwise create:

- the training role may pull the image, read the input prefix, write the output prefix, and write its own logs
  and metrics; nothing else;
- the endpoint's execution role may read the output prefix (the new model.tar.gz lands there);
- the state machine may pass exactly those two roles to SageMaker.

Each run names its training job, model and endpoint configuration ``<name_prefix>-<UUID>``, so runs never
collide. An endpoint updated by this workflow differs from its CloudFormation template until the next deploy,
which sets it back to the template's configuration: deploy a new ``ModelArtifact`` to make a retrained model
permanent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from aws_cdk import Duration, RemovalPolicy, Size, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.log_encryption import create_log_key
from ml_inference_cdk.constructs.nag import acknowledge
from ml_inference_cdk.constructs.sagemaker import permissions
from ml_inference_cdk.constructs.sagemaker.endpoint import Endpoint
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from ml_inference_cdk.constructs.sagemaker.model import Model
from ml_inference_cdk.constructs.sagemaker.permissions import wildcard_finding
from ml_inference_cdk.constructs.sagemaker.variants import InstanceVariant, validate_instance_type

TRAINING_METRICS_NAMESPACE: Final = "/aws/sagemaker/TrainingJobs"
_NAME_PREFIX = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,25}")
_S3_PREFIX = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>[^/].*/)")
_CHANNEL = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
_PER_RUN = (
    "Each run names its training job, model and endpoint configuration <prefix>-<UUID> at run time, so the "
    "ARNs end in a wildcard after this workflow's own prefix."
)


class RetrainingWorkflow(Construct):
    """Train with the inference image on S3 data, then update an endpoint to the new model.

    Example::

        workflow = RetrainingWorkflow(
            self, "Retraining",
            endpoint=endpoint,
            image=image,
            training_data=data_bucket, training_prefix="iris/train/",
            output_bucket=artifact_bucket, output_prefix="retraining/",
            hyperparameters={"estimator": "sklearn.linear_model.LogisticRegression", "target": "species"},
        )
        workflow.grant_start_execution(scheduler_role)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: SageMakerEndpoint | Endpoint,
        image: ContainerImage,
        training_data: s3.IBucket,
        training_prefix: str,
        output_bucket: s3.IBucket,
        output_prefix: str,
        hyperparameters: Mapping[str, str] | None = None,
        channel_name: str = "train",
        instance_type: str = "ml.m5.large",
        instance_count: int = 1,
        volume_size: Size | None = None,
        max_runtime: Duration | None = None,
        name_prefix: str = "retrain",
    ) -> None:
        """Create the training role and the state machine.

        Args:
            endpoint: the endpoint to update (a ``SageMakerEndpoint``, or an ``Endpoint`` L2 whose variants
                all serve one ``Model``); its instance variants keep their instance types, counts and weights.
            image: the inference image; SageMaker runs it with ``train``.
            training_data: the bucket holding the training data.
            training_prefix: the key prefix of the training channel's files, ending with "/".
            output_bucket: where SageMaker writes the trained model.tar.gz.
            output_prefix: the key prefix for the trained models, ending with "/".
            hyperparameters: the training job's hyperparameters (strings, as SageMaker passes them).
                Default: none.
            channel_name: the training channel's name (``/opt/ml/input/data/<name>``). Default: train.
            instance_type: the training instance type. Default: ml.m5.large.
            instance_count: training instances. Default: 1.
            volume_size: the training instance's storage. Default: 10 GiB.
            max_runtime: stop a training job that runs longer (1 s to 28 days). Default: 1 hour.
            name_prefix: the prefix of each run's job, model and configuration names (1-26 letters, digits,
                hyphens). Default: retrain.

        Raises:
            ValueError: a value SageMaker would reject, or an endpoint this workflow cannot update (serverless
                variants, variants serving different models, a model without a known execution role).
        """
        model, variants = _endpoint_parts(endpoint)
        _validate(
            training_prefix=training_prefix,
            output_prefix=output_prefix,
            channel_name=channel_name,
            instance_type=instance_type,
            instance_count=instance_count,
            max_runtime=max_runtime,
            name_prefix=name_prefix,
        )
        super().__init__(scope, construct_id)
        self._training_role = iam.Role(
            self,
            "TrainingRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Execution role of the retraining jobs (ml-inference-cdk): least privilege",
        )
        self._grant_training_logs()
        image_uri = image.bind(self, self._training_role).image_uri
        outputs = output_bucket.arn_for_objects(f"{output_prefix}*")
        model.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[outputs]))
        acknowledge(
            model.role,
            {
                wildcard_finding(
                    self, outputs
                ): "The endpoint reads the model.tar.gz each retraining run writes "
                "under the output prefix; the key holds the run's job name."
            },
        )

        run_id = sfn.JsonPath.string_at("$.run.id")
        run_name = sfn.JsonPath.format(f"{name_prefix}-{{}}", run_id)
        name_run = sfn.Pass(self, "NameTheRun", parameters={"id": sfn.JsonPath.uuid()}, result_path="$.run")
        train = tasks.SageMakerCreateTrainingJob(
            self,
            "Train",
            training_job_name=run_name,
            role=self._training_role,
            algorithm_specification=tasks.AlgorithmSpecification(
                training_image=tasks.DockerImage.from_registry(image_uri),
                training_input_mode=tasks.InputMode.FILE,
            ),
            input_data_config=[
                tasks.Channel(
                    channel_name=channel_name,
                    data_source=tasks.DataSource(
                        s3_data_source=tasks.S3DataSource(
                            s3_location=tasks.S3Location.from_bucket(training_data, training_prefix),
                            s3_data_type=tasks.S3DataType.S3_PREFIX,
                        )
                    ),
                )
            ],
            output_data_config=tasks.OutputDataConfig(
                s3_output_location=tasks.S3Location.from_bucket(output_bucket, output_prefix)
            ),
            resource_config=tasks.ResourceConfig(
                instance_count=instance_count,
                instance_type=ec2.InstanceType(instance_type.removeprefix("ml.")),
                volume_size=volume_size or Size.gibibytes(10),
            ),
            stopping_condition=tasks.StoppingCondition(max_runtime=max_runtime or Duration.hours(1)),
            hyperparameters=dict(hyperparameters or {}) or None,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_path="$.training",
        )
        stack = Stack.of(self)
        run_scoped = {
            kind: stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{name_prefix}-*")
            for kind in ("model", "endpoint-config")
        }
        # aws-sdk integrations with explicit IAM resources: the optimized CreateModel task grants its role
        # s3:GetObject on every bucket for a model location read from the state, and scopes nothing by name.
        create_model = tasks.CallAwsService(
            self,
            "CreateModel",
            service="sagemaker",
            action="createModel",
            iam_action="sagemaker:CreateModel",
            iam_resources=[run_scoped["model"]],
            parameters={
                "ModelName": run_name,
                "ExecutionRoleArn": model.role.role_arn,
                "EnableNetworkIsolation": model.network_isolation,
                "PrimaryContainer": {
                    "Image": model.image_uri,
                    "Mode": "SingleModel",
                    "ModelDataUrl": sfn.JsonPath.string_at("$.training.ModelArtifacts.S3ModelArtifacts"),
                    "Environment": dict(model.environment),
                },
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        create_config = tasks.CallAwsService(
            self,
            "CreateEndpointConfig",
            service="sagemaker",
            action="createEndpointConfig",
            iam_action="sagemaker:CreateEndpointConfig",
            iam_resources=[run_scoped["endpoint-config"]],
            parameters={
                "EndpointConfigName": run_name,
                "ProductionVariants": [_variant_parameters(variant, run_name) for variant in variants],
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        update = tasks.CallAwsService(
            self,
            "UpdateEndpoint",
            service="sagemaker",
            action="updateEndpoint",
            iam_action="sagemaker:UpdateEndpoint",
            iam_resources=[endpoint.endpoint_arn, run_scoped["endpoint-config"]],
            parameters={"EndpointName": endpoint.endpoint_name, "EndpointConfigName": run_name},
            result_path=sfn.JsonPath.DISCARD,
        )
        wait = sfn.Wait(self, "WaitForTheUpdate", time=sfn.WaitTime.duration(Duration.seconds(30)))
        describe = tasks.CallAwsService(
            self,
            "DescribeEndpoint",
            service="sagemaker",
            action="describeEndpoint",
            iam_action="sagemaker:DescribeEndpoint",
            iam_resources=[endpoint.endpoint_arn],
            parameters={"EndpointName": endpoint.endpoint_name},
            result_selector={"status": sfn.JsonPath.string_at("$.EndpointStatus")},
            result_path="$.endpoint",
        )
        done = (
            sfn.Choice(self, "UpdatedYet")
            .when(sfn.Condition.string_equals("$.endpoint.status", "InService"), sfn.Succeed(self, "Updated"))
            .when(
                sfn.Condition.or_(
                    sfn.Condition.string_equals("$.endpoint.status", "Failed"),
                    sfn.Condition.string_equals("$.endpoint.status", "RollingBack"),
                ),
                sfn.Fail(
                    self,
                    "UpdateFailed",
                    error="EndpointUpdateFailed",
                    cause="The endpoint did not take the retrained model (see its events, rollback alarms)",
                ),
            )
            .otherwise(wait)
        )
        self._log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=create_log_key(
                self, "LogKey", description="Encrypts the retraining workflow's logs (ml-inference-cdk)"
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(
                name_run.next(train)
                .next(create_model)
                .next(create_config)
                .next(update)
                .next(wait)
                .next(describe)
                .next(done)
            ),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self._log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            comment="Train with the inference image, then update the endpoint to the new model",
        )
        self._state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[model.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        self._acknowledge_run_scoped_permissions(
            inputs=training_data.arn_for_objects(f"{training_prefix}*"),
            outputs=outputs,
            run_scoped=run_scoped,
        )

    @property
    def state_machine(self) -> sfn.StateMachine:
        """The workflow; start an execution to retrain (its input is not read)."""
        return self._state_machine

    @property
    def training_role(self) -> iam.IRole:
        """The role the training jobs run with."""
        return self._training_role

    @property
    def log_group(self) -> logs.ILogGroup:
        """Where the state machine logs every state, with its input and output."""
        return self._log_group

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start a retraining run (and nothing else)."""
        return self._state_machine.grant_start_execution(grantee)

    def _grant_training_logs(self) -> None:
        permissions.grant_log_group(
            self,
            self._training_role,
            TRAINING_METRICS_NAMESPACE,
            "SageMaker names the log streams after each training job; access is limited to the training-jobs "
            "log group.",
        )
        permissions.grant_metrics(self._training_role, TRAINING_METRICS_NAMESPACE)
        acknowledge(
            self._training_role,
            {
                "AwsSolutions-IAM5[Resource::*]": "cloudwatch:PutMetricData has no resource-level "
                "permissions (limited to the training-jobs namespace by a condition); "
                "ecr:GetAuthorizationToken has none either.",
            },
        )

    def _acknowledge_run_scoped_permissions(
        self, *, inputs: str, outputs: str, run_scoped: Mapping[str, str]
    ) -> None:
        """The tasks' own statements: SageMaker names per run, and the read/write grants on the prefixes."""
        acknowledge(
            self._state_machine.role,
            {
                "AwsSolutions-IAM5[Resource::*]": "Step Functions' X-Ray and log delivery actions have no "
                "resource-level permissions; " + _PER_RUN,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                "training-job/*]": _PER_RUN,
                **{wildcard_finding(self, arn): _PER_RUN for arn in run_scoped.values()},
            },
        )
        acknowledge(
            self._training_role,
            {
                "AwsSolutions-IAM5[Action::s3:GetObject*]": "Reading the training data takes the object "
                "reads (object, version, ACL for the SDK); only under the training prefix.",
                "AwsSolutions-IAM5[Action::s3:GetBucket*]": "The training job locates the bucket of its "
                "input prefix.",
                "AwsSolutions-IAM5[Action::s3:List*]": "The training job lists the keys under its input "
                "prefix.",
                "AwsSolutions-IAM5[Action::s3:DeleteObject*]": "SageMaker replaces its own partial output "
                "on retry; only under the output prefix.",
                "AwsSolutions-IAM5[Action::s3:Abort*]": "Multipart uploads of the model.tar.gz; only under "
                "the output prefix.",
                wildcard_finding(
                    self, inputs
                ): "The training channel is every object under the training prefix.",
                wildcard_finding(
                    self, outputs
                ): "Each run writes <output prefix><job name>/output/model.tar.gz.",
            },
        )


def _endpoint_parts(endpoint: SageMakerEndpoint | Endpoint) -> tuple[Model, tuple[InstanceVariant, ...]]:
    config = endpoint.endpoint_config
    carried = {
        "async_inference": config.async_inference,
        "data_capture": config.data_capture,
        "volume_encryption_key": config.volume_encryption_key,
    }
    for option, value in carried.items():
        if value is not None:
            raise ValueError(
                f"endpoint: its configuration has {option}, which the retraining workflow does not carry "
                "into the configurations it creates; retrain an endpoint without it, or deploy retrained "
                "models with a new ModelArtifact"
            )
    if config.shadow_variants:
        raise ValueError(
            f"endpoint: its configuration has the shadow variant {config.shadow_variants[0].name!r}, which "
            "the retraining workflow would drop from the configurations it creates; end the shadow test first"
        )
    if config.models and isinstance(config.models[0], Model) and config.models[0].model_package is not None:
        raise ValueError(
            "endpoint: its model serves a model package from the registry; the retraining workflow makes "
            "models of an image and a model.tar.gz (register the retrained version instead)"
        )
    if config.models and isinstance(config.models[0], Model) and config.models[0].in_vpc:
        raise ValueError(
            "endpoint: its model runs in a VPC; the retraining workflow creates models without one "
            "(retraining inside a VPC is not supported yet)"
        )
    models = config.models
    if len(models) != 1 or not isinstance(models[0], Model):
        raise ValueError(
            "endpoint: the retraining workflow updates endpoints whose variants all serve one Model made in "
            f"this app (it reuses its image, environment and role), got {len(models)} model(s)"
        )
    if models[0].multi_model:
        raise ValueError(
            "endpoint: its model serves many models from an S3 prefix (multi-model); the retraining workflow "
            "trains and deploys one model.tar.gz: upload retrained models under the prefix instead"
        )
    variants = []
    for variant in config.variants:
        if not isinstance(variant, InstanceVariant):
            raise ValueError(
                f"endpoint: variant {variant.name!r} is serverless; the retraining workflow creates instance "
                "variants only (Step Functions' CreateEndpointConfig task has no serverless option)"
            )
        variants.append(variant)
    return models[0], tuple(variants)


def split_s3_prefix(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` as (bucket, prefix).

    Raises:
        ValueError: not an s3:// URI of a bucket and a key prefix ending with "/".
    """
    match = _S3_PREFIX.fullmatch(uri)
    if match is None:
        raise ValueError(f"must be s3://BUCKET/PREFIX/ (a key prefix ending with '/'), got {uri!r}")
    return match["bucket"], match["prefix"]


def _variant_parameters(variant: InstanceVariant, model_name: str) -> dict[str, object]:
    """CreateEndpointConfig's ProductionVariant for one of the endpoint's instance variants."""
    parameters: dict[str, object] = {
        "VariantName": variant.name,
        "ModelName": model_name,
        "InstanceType": variant.instance_type,
        "InitialInstanceCount": variant.initial_instance_count,
        "InitialVariantWeight": variant.initial_weight,
    }
    for key, duration in (
        ("ContainerStartupHealthCheckTimeoutInSeconds", variant.container_startup_health_check_timeout),
        ("ModelDataDownloadTimeoutInSeconds", variant.model_data_download_timeout),
    ):
        if duration is not None:
            parameters[key] = int(duration.to_seconds())
    if variant.routing_strategy is not None:
        parameters["RoutingConfig"] = {"RoutingStrategy": variant.routing_strategy}
    if variant.volume_size_gb is not None:
        parameters["VolumeSizeInGB"] = variant.volume_size_gb
    if variant.enable_ssm_access:
        parameters["EnableSSMAccess"] = True
    if variant.inference_ami_version is not None:
        parameters["InferenceAmiVersion"] = variant.inference_ami_version
    return parameters


def _validate(
    *,
    training_prefix: str,
    output_prefix: str,
    channel_name: str,
    instance_type: str,
    instance_count: int,
    max_runtime: Duration | None,
    name_prefix: str,
) -> None:
    for name, prefix in (("training_prefix", training_prefix), ("output_prefix", output_prefix)):
        if not Token.is_unresolved(prefix) and (not prefix.endswith("/") or prefix.startswith("/")):
            raise ValueError(f"{name} must be a key prefix ending with '/' (no leading '/'), got {prefix!r}")
    if not _CHANNEL.fullmatch(channel_name):
        raise ValueError(f"channel_name must be 1-64 letters, digits, '.', '-' or '_', got {channel_name!r}")
    validate_instance_type(instance_type)
    if not Token.is_unresolved(instance_count) and not 1 <= instance_count <= 100:
        raise ValueError(f"instance_count must be 1-100, got {instance_count}")
    if max_runtime is not None:
        seconds = max_runtime.to_seconds()
        if not Token.is_unresolved(seconds) and not 1 <= seconds <= 28 * 24 * 3600:
            raise ValueError(f"max_runtime must be 1 second to 28 days, got {max_runtime.to_human_string()}")
    if not _NAME_PREFIX.fullmatch(name_prefix):
        raise ValueError(
            "name_prefix must be 1-26 letters, digits or inner hyphens (the run's UUID follows it within "
            f"SageMaker's 63 characters), got {name_prefix!r}"
        )
