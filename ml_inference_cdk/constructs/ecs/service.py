"""The inference container as an ECS Fargate service behind an Application Load Balancer, secure by default.

At the level of ``ecs_patterns.ApplicationLoadBalancedFargateService`` and AWS Copilot's load-balanced web
service, with what they leave to the caller done here: the model artifact unpacked before the server starts,
access logs, least-privilege roles, a read-only root filesystem, autoscaling and a deployment circuit breaker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from ml_inference_cdk.constructs.contract import (
    CONTAINER_PORT,
    ENV_BIND_TO_PORT,
    ENV_MODEL_DIR,
    MODEL_DIR,
    PING_PATH,
)
from ml_inference_cdk.constructs.control_tower import exempt
from ml_inference_cdk.constructs.ecs import validation as check
from ml_inference_cdk.constructs.ecs.api import add_iam_http_api
from ml_inference_cdk.constructs.ecs.exposure import (
    ListenerAuthentication,
    WebApplicationFirewall,
    check_exposure,
)
from ml_inference_cdk.constructs.ecs.load_balancer import add_load_balancer
from ml_inference_cdk.constructs.ecs.waf import add_web_acl
from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.log_encryption import create_log_key
from ml_inference_cdk.constructs.model_artifact import ModelArtifact
from ml_inference_cdk.constructs.model_loader import loader_command
from ml_inference_cdk.constructs.nag import acknowledge
from ml_inference_cdk.constructs.sources import check_sources

LOADER_CONTAINER_NAME: Final = "model-loader"
TMP_DIR: Final = "/tmp"  # noqa: S108 - the container's own /tmp, a task-scoped volume


class FargateInferenceService(Construct):
    """The inference image serving one model.tar.gz on ECS Fargate, behind an Application Load Balancer.

    The model: SageMaker unpacks model.tar.gz into /opt/ml/model itself; here a non-essential init container
    does, started from the *same image* with a stdlib-only loader (``model_loader.py``: no boto3 or
    AWS CLI in the image, no second image to pull from a public registry). The inference container starts only
    after the loader exits 0 (dependency condition SUCCESS) and mounts the unpacked model read-only.

    Users and permissions: the server runs as an unprivileged user (``10001``, the image's ``USER``) on a
    read-only root filesystem with all Linux capabilities dropped; /tmp is a task-scoped volume. Fargate
    creates bind-mount volumes owned by root with mode 0755, so the loader runs as uid 0 - with every
    capability dropped and a read-only root filesystem too - to write the model and to make /tmp writable for
    the server, which is the init-container pattern AWS recommends for Fargate volume permissions
    (aws/containers-roadmap#938).

    IAM: the task role may ``s3:GetObject`` exactly the model object; the execution role may pull exactly the
    image's repository and write to the service's log group. ECS Exec adds ``ssmmessages`` only when enabled.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ContainerImage,
        model_artifact: ModelArtifact,
        vpc: ec2.IVpc | None = None,
        cluster: ecs.ICluster | None = None,
        task_subnets: ec2.SubnetSelection | None = None,
        cpu: int = 1024,
        memory_limit_mib: int = 2048,
        cpu_architecture: Literal["X86_64", "ARM64"] = "X86_64",
        spot: bool = False,
        ephemeral_storage_gib: int | None = None,
        family: str = "ml-inference",
        container_name: str = "inference",
        container_port: int = CONTAINER_PORT,
        environment: Mapping[str, str] | None = None,
        secrets: Mapping[str, ecs.Secret] | None = None,
        user: str = "10001",
        read_only_root_filesystem: bool = True,
        desired_count: int = 2,
        min_healthy_percent: int = 100,
        max_healthy_percent: int = 200,
        circuit_breaker_rollback: bool = True,
        health_check_grace_period: Duration | None = None,
        min_capacity: int | None = None,
        max_capacity: int | None = None,
        target_cpu_utilization_percent: int = 70,
        target_requests_per_target: int | None = 1000,
        internet_facing: bool = False,
        allowed_cidrs: Sequence[str] | None = None,
        authentication: ListenerAuthentication | None = None,
        iam_http_api: bool = False,
        allow_public_http: bool = False,
        waf: WebApplicationFirewall | None = None,
        certificate: acm.ICertificate | None = None,
        domain_name: str | None = None,
        hosted_zone: route53.IHostedZone | None = None,
        ssl_policy: elbv2.SslPolicy | None = None,
        deletion_protection: bool = True,
        access_logs_bucket: s3.IBucket | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        log_encryption_key: kms.IKey | None = None,
        container_insights: ecs.ContainerInsights = ecs.ContainerInsights.ENABLED,
        enable_execute_command: bool = False,
        restrict_default_security_group: bool = True,
    ) -> None:
        """Create the service, its load balancer, roles, logs and scaling.

        Args:
            image: the inference image (``ContainerImage.from_asset`` / ``from_repository`` /
                ``from_image_uri``). It must have ``python3`` on PATH (the model loader and the health check
                use it).
            model_artifact: the model.tar.gz to serve (the same one the SageMaker endpoint serves).
            vpc: the VPC for the load balancer and tasks. Default: the cluster's VPC, else a new VPC with 2
                AZs, public and private subnets, one NAT gateway per AZ, an S3 gateway endpoint and flow logs.
            cluster: an existing ECS cluster. Default: a new cluster with Container Insights.
            task_subnets: where tasks run. Default: the private subnets with egress.
            cpu: task CPU units (256, 512, 1024, 2048, 4096, 8192 or 16384). Default: 1024.
            memory_limit_mib: task memory in MiB, within Fargate's range for ``cpu``. Default: 2048.
            cpu_architecture: ``X86_64`` or ``ARM64`` (Graviton; the image must be built for arm64).
                Default: X86_64.
            spot: run on Fargate Spot, keeping the first task on regular Fargate so a reclaim never empties
                the service (strategy FARGATE base 1 weight 1, FARGATE_SPOT weight 3). X86_64 or ARM64.
                Default: False.
            ephemeral_storage_gib: task ephemeral storage, 21-200 GiB, for models that unpack beyond the
                default. Default: Fargate's 20 GiB.
            family: task definition family. Default: ml-inference.
            container_name: the server container's name. Default: inference.
            container_port: the port the server listens on (passed as SAGEMAKER_BIND_TO_PORT when not 8080).
                Default: 8080.
            environment: extra container environment, e.g. ``container_environment(workers=2)``.
                Default: none.
            secrets: environment variables from Secrets Manager or SSM Parameter Store. Default: none.
            user: the server's user (uid[:gid] or name); root is refused. Default: 10001 (the image's USER).
            read_only_root_filesystem: mount the server's root filesystem read-only. Default: True.
            desired_count: tasks to run (also the default minimum capacity). Default: 2.
            min_healthy_percent: lower bound of running tasks during a deployment. Default: 100.
            max_healthy_percent: upper bound of running tasks during a deployment. Default: 200.
            circuit_breaker_rollback: roll back a deployment the circuit breaker stops. Default: True.
            health_check_grace_period: how long load-balancer health checks are ignored after a task starts;
                size it to model download + load time. Default: 60 seconds.
            min_capacity: autoscaling minimum. Default: ``desired_count``.
            max_capacity: autoscaling maximum. Default: twice the minimum (at least 1).
            target_cpu_utilization_percent: CPU target-tracking setpoint, 1-100. Default: 70.
            target_requests_per_target: ALBRequestCountPerTarget setpoint (requests per task per minute);
                None disables this policy. Default: 1000.
            internet_facing: an internet-facing load balancer in public subnets. It needs a gate: narrow
                ``allowed_cidrs`` or ``authentication`` (see ``fargate_exposure``). Default: False (internal,
                in private subnets, reachable from the VPC only).
            allowed_cidrs: CIDRs allowed to reach the listeners. Default: the VPC's CIDR (internal), or
                anywhere when internet-facing behind ``authentication``.
            authentication: an authenticate action on the HTTPS listener: ``ListenerAuthentication.jwt``
                (bearer tokens, for programs), ``.oidc`` or ``.cognito`` (browser sign-in). Needs
                ``certificate`` or ``domain_name``. Default: none.
            iam_http_api: put an API Gateway HTTP API in front of the internal load balancer (VPC link),
                every route authorized with AWS_IAM: callers sign requests with SigV4 (``grant_invoke``).
                ``url`` is then the API's URL. Default: False.
            allow_public_http: accept an internet-facing load balancer without a certificate (plain HTTP on
                the internet). Default: False.
            waf: an AWS WAF web ACL on the load balancer: AWS managed rule groups and a per-client rate
                limit (``WebApplicationFirewall()``). Default: none.
            certificate: an ACM certificate for an HTTPS listener (then port 80 only redirects).
                Default: none.
            domain_name: a DNS name for the service; with ``hosted_zone`` it gets an alias record and, without
                ``certificate``, a DNS-validated certificate. Default: none (the load balancer's DNS name).
            hosted_zone: the Route 53 zone of ``domain_name``. Default: none.
            ssl_policy: the HTTPS listener's security policy. Default: ``SslPolicy.RECOMMENDED_TLS``
                (TLS 1.3 and 1.2 only; the ELB API's own default still allows TLS 1.0).
            deletion_protection: protect the load balancer from deletion (AWS Control Tower
                CT.ELASTICLOADBALANCING.PR.5); ``cdk destroy`` fails until it is turned off. Default: True.
            access_logs_bucket: where the load balancer writes access logs (SSE-S3 only, an ELB requirement).
                Default: a new versioned, SSE-S3, SSL-only bucket with all public access blocked.
            log_retention: CloudWatch Logs retention of the containers' (and the VPC flow) logs; Control
                Tower's CT.CLOUDWATCH.PR.2 asks for a year or more. Default: one year.
            log_encryption_key: the KMS key that encrypts the log groups created here. Default: a new key
                with rotation that CloudWatch Logs may use for this account's log groups.
            container_insights: Container Insights level of the cluster created here; Control Tower's
                CT.ECS.PR.2 accepts only ENABLED (ENHANCED collects more, and fails that check).
                Default: ENABLED.
            enable_execute_command: allow ``aws ecs execute-command``; needs
                ``read_only_root_filesystem=False`` (the ECS Exec agent writes there). Default: False.
            restrict_default_security_group: strip the rules of the default security group of the VPC created
                here (nothing uses it). CDK does it with a Lambda-backed custom resource, so local emulators
                without Lambda (moto) need False. Default: True.

        Raises:
            ValueError: an impossible Fargate cpu/memory pair, a port, count, capacity, percentage, grace
                period, retention, name, CIDR or storage size out of range, Spot with ARM64, a domain name
                without a hosted zone, a root user, ECS Exec with a read-only root filesystem, or an
                internet-facing load balancer without a gate (``fargate_exposure.check_exposure``).
        """
        check_sources(image=image, model_artifact=model_artifact)
        grace = health_check_grace_period or Duration.seconds(60)
        minimum = desired_count if min_capacity is None else min_capacity
        maximum = max(2 * minimum, 1) if max_capacity is None else max_capacity
        if cpu_architecture not in ("X86_64", "ARM64"):
            raise ValueError(f"cpu_architecture must be 'X86_64' or 'ARM64', got {cpu_architecture!r}")
        check.fargate_cpu_memory(cpu, memory_limit_mib)
        check.port("container_port", container_port)
        check.at_least("desired_count", desired_count, 0)
        check.capacity(minimum, maximum)
        check.healthy_percent(min_healthy_percent, max_healthy_percent)
        check.grace_period(grace)
        check.retention(log_retention)
        check.tls(domain_name=domain_name, has_hosted_zone=hosted_zone is not None)
        check.exec_and_read_only(enable_execute_command, read_only_root_filesystem)
        check.non_root(user)
        check.name("family", family)
        check.name("container_name", container_name)
        if container_name == LOADER_CONTAINER_NAME:
            raise ValueError(
                f"container_name {container_name!r} is taken by the model loader; choose another"
            )
        check.cidrs(allowed_cidrs)
        check_exposure(
            internet_facing=internet_facing,
            allowed_cidrs=allowed_cidrs,
            authentication=authentication,
            https=certificate is not None or domain_name is not None,
            iam_http_api=iam_http_api,
            allow_public_http=allow_public_http,
        )
        check.ephemeral_storage(ephemeral_storage_gib)
        check.between("target_cpu_utilization_percent", target_cpu_utilization_percent, 1, 100)
        if target_requests_per_target is not None:
            check.at_least("target_requests_per_target", target_requests_per_target, 1)
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.log_encryption_key: kms.IKey = log_encryption_key or create_log_key(
            self, "LogKey", description="Encrypts the inference service's CloudWatch Logs"
        )
        """The KMS key of the log groups created here."""
        self.vpc: ec2.IVpc = vpc or (
            cluster.vpc
            if cluster is not None
            else self._create_vpc(restrict_default_security_group, log_retention)
        )
        self.cluster: ecs.ICluster = cluster or ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            container_insights_v2=container_insights,
            enable_fargate_capacity_providers=spot or None,
        )
        if spot and isinstance(self.cluster, ecs.Cluster) and cluster is not None:
            self.cluster.enable_fargate_capacity_providers()

        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, encryption_key=self.log_encryption_key
        )
        self.execution_role: iam.IRole = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Pulls the inference image and writes its logs (ECS task execution role)",
        )
        self.task_role: iam.IRole = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal(
                "ecs-tasks.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:*"
                    },
                },
            ),
            description="Reads the model artifact (ECS task role of the inference service)",
        )
        image_config = image.bind(self, self.execution_role)
        artifact = model_artifact.bind(self, self.task_role)

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=family,
            cpu=cpu,
            memory_limit_mib=memory_limit_mib,
            ephemeral_storage_gib=ephemeral_storage_gib,
            execution_role=self.execution_role,
            task_role=self.task_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.of(cpu_architecture),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            volumes=[ecs.Volume(name="model"), ecs.Volume(name="tmp")],
        )
        container_image = ecs.ContainerImage.from_registry(image_config.image_uri)
        loader = self._add_loader(
            container_image, artifact.bucket_name, artifact.object_key, stack.region, memory_limit_mib
        )
        env = {**(environment or {}), ENV_MODEL_DIR: MODEL_DIR}
        if container_port != CONTAINER_PORT:
            env[ENV_BIND_TO_PORT] = str(container_port)
        self.container = self._add_server(
            container_image,
            name=container_name,
            port=container_port,
            environment=env,
            secrets=secrets,
            user=user,
            read_only_root_filesystem=read_only_root_filesystem,
            drop_capabilities=not enable_execute_command,
            start_period=Duration.seconds(min(grace.to_seconds(), 300)),
            memory_limit_mib=memory_limit_mib,
        )
        self.container.add_container_dependencies(
            ecs.ContainerDependency(container=loader, condition=ecs.ContainerDependencyCondition.SUCCESS)
        )
        self.model_loader: ecs.ContainerDefinition = loader
        """The init container that unpacks the model (non-essential; the server waits for its success)."""
        for container in (loader, self.container):
            Annotations.of(container).acknowledge_warning(
                "@aws-cdk/aws-ecs:ecrImageRequiresPolicy",
                "ContainerImage.bind() granted the execution role the pull on the image's repository",
            )
        exempt(
            self.task_definition,
            {
                "CT.ECS.PR.3": "The model-loader init container runs as uid 0 (every capability dropped, "
                "read-only root filesystem, exits before the server starts) because Fargate creates task "
                "volumes owned by root with mode 0755: only root can unpack the model into them and make "
                "/tmp writable for the server, which runs as uid 10001. No option avoids it on Fargate.",
            },
        )
        acknowledge(
            self.task_definition,
            {
                "AwsSolutions-ECS2": "The environment holds configuration only (the SAGEMAKER_* server "
                "settings, the model directory and the model's S3 location); secrets go through the "
                "`secrets` parameter.",
            },
        )
        acknowledge(
            self.execution_role,
            {
                "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken has no resource-level "
                "permissions; the image pull itself is granted on the image's repository only.",
            },
        )

        self.service_security_group = ec2.SecurityGroup(
            self,
            "ServiceSecurityGroup",
            vpc=self.vpc,
            description="Inference tasks: accept only the load balancer on the container port",
            allow_all_outbound=True,
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=desired_count,
            security_groups=[self.service_security_group],
            vpc_subnets=task_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=circuit_breaker_rollback),
            min_healthy_percent=min_healthy_percent,
            max_healthy_percent=max_healthy_percent,
            health_check_grace_period=grace,
            enable_execute_command=enable_execute_command,
            capacity_provider_strategies=_spot_strategy() if spot else None,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_ecs_managed_tags=True,
        )
        if image_config.dependable is not None:
            self.task_definition.node.add_dependency(image_config.dependable)
            self.service.node.add_dependency(image_config.dependable)
        if enable_execute_command:
            acknowledge(
                self.task_role,
                {
                    "AwsSolutions-IAM5[Resource::*]": "ECS Exec (enabled on request) needs the ssmmessages "
                    "channel actions, which have no resource-level permissions.",
                },
            )

        parts = add_load_balancer(
            self,
            vpc=self.vpc,
            service=self.service,
            container_port=container_port,
            internet_facing=internet_facing,
            allowed_cidrs=list(allowed_cidrs) if allowed_cidrs is not None else None,
            authentication=authentication,
            certificate=certificate,
            domain_name=domain_name,
            hosted_zone=hosted_zone,
            ssl_policy=ssl_policy,
            deletion_protection=deletion_protection,
            access_logs_bucket=access_logs_bucket,
        )
        self.load_balancer: elbv2.ApplicationLoadBalancer = parts.load_balancer
        self.target_group: elbv2.ApplicationTargetGroup = parts.target_group
        self.listener: elbv2.ApplicationListener = parts.listener
        """The listener forwarding to the service: HTTPS :443 with TLS, else HTTP :80."""
        self.access_logs_bucket: s3.IBucket = parts.access_logs_bucket
        self.load_balancer_security_group: ec2.SecurityGroup = parts.security_group
        self.api: apigwv2.HttpApi | None = (
            add_iam_http_api(
                self,
                vpc=self.vpc,
                listener=self.listener,
                log_key=self.log_encryption_key,
                log_retention=log_retention,
                throttling_rate_limit=max(100, 10 * maximum),
                throttling_burst_limit=max(200, 20 * maximum),
            )
            if iam_http_api
            else None
        )
        """The SigV4-authenticated HTTP API in front of the load balancer (``iam_http_api=True``)."""
        self.web_acl: wafv2.CfnWebACL | None = (
            add_web_acl(self, load_balancer=self.load_balancer, firewall=waf, behind_api=iam_http_api)
            if waf is not None
            else None
        )
        """The AWS WAF web ACL on the load balancer (``waf=``)."""
        host = domain_name or self.load_balancer.load_balancer_dns_name
        self.url: str = (
            self.api.api_endpoint
            if self.api is not None
            else f"{'https' if parts.https else 'http'}://{host}"
        )
        """The API's URL with ``iam_http_api``, else ``http(s)://`` + the domain name or the load balancer's
        DNS name."""

        self.scalable_task_count = self.service.auto_scale_task_count(
            min_capacity=minimum, max_capacity=maximum
        )
        self.scalable_task_count.scale_on_cpu_utilization(
            "CpuScaling",
            target_utilization_percent=target_cpu_utilization_percent,
            scale_out_cooldown=Duration.seconds(60),
            scale_in_cooldown=Duration.seconds(300),
        )
        if target_requests_per_target is not None:
            self.scalable_task_count.scale_on_request_count(
                "RequestCountScaling",
                requests_per_target=target_requests_per_target,
                target_group=self.target_group,
                scale_out_cooldown=Duration.seconds(60),
                scale_in_cooldown=Duration.seconds(300),
            )

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow ``grantee`` to call the model through the HTTP API (``execute-api:Invoke`` on every route).

        Raises:
            ValueError: without ``iam_http_api=True`` there is no API to grant on.
        """
        if self.api is None:
            raise ValueError(
                "grant_invoke needs iam_http_api=True: without the API, IAM does not guard the calls"
            )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["execute-api:Invoke"],
            resource_arns=[self.api.arn_for_execute_api()],
        )

    # --- metrics --------------------------------------------------------------------------------------------

    def metric(self, metric_name: str, **props: Any) -> cloudwatch.Metric:
        """Any AWS/ECS metric of the service (ClusterName and ServiceName dimensions)."""
        return self.service.metric(metric_name, **props)

    def metric_cpu_utilization(self, **props: Any) -> cloudwatch.Metric:
        """Average CPU utilization of the service's tasks, in percent."""
        return self.service.metric_cpu_utilization(**props)

    def metric_memory_utilization(self, **props: Any) -> cloudwatch.Metric:
        """Average memory utilization of the service's tasks, in percent."""
        return self.service.metric_memory_utilization(**props)

    def metric_request_count(self, **props: Any) -> cloudwatch.Metric:
        """Requests the load balancer routed to the service (sum)."""
        return self.target_group.metrics.request_count(**props)

    def metric_request_count_per_target(self, **props: Any) -> cloudwatch.Metric:
        """Requests per task (the request-count scaling signal)."""
        return self.target_group.metrics.request_count_per_target(**props)

    def metric_target_response_time(self, **props: Any) -> cloudwatch.Metric:
        """Seconds from the load balancer sending a request to a task until the response starts (average)."""
        return self.target_group.metrics.target_response_time(**props)

    def metric_http_5xx(self, **props: Any) -> cloudwatch.Metric:
        """5xx responses returned by the tasks (sum)."""
        return self.target_group.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, **props)

    def metric_unhealthy_host_count(self, **props: Any) -> cloudwatch.Metric:
        """Tasks failing the /ping health check (average)."""
        return self.target_group.metrics.unhealthy_host_count(**props)

    # --- parts ----------------------------------------------------------------------------------------------

    def _create_vpc(
        self, restrict_default_security_group: bool, log_retention: logs.RetentionDays
    ) -> ec2.Vpc:
        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=log_retention, encryption_key=self.log_encryption_key
        )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=2,
            subnet_configuration=[
                # The NAT gateways and an internet-facing load balancer get their addresses explicitly;
                # nothing should get a public IP by landing here (CT.EC2.PR.11).
                ec2.SubnetConfiguration(
                    name="Public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22
                ),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
            flow_logs={
                "FlowLogs": ec2.FlowLogOptions(
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                )
            },
            restrict_default_security_group=restrict_default_security_group,
        )
        if restrict_default_security_group:
            _exempt_default_security_group_function(self)
        return vpc

    def _add_loader(
        self, image: ecs.ContainerImage, bucket_name: str, object_key: str, region: str, memory_limit_mib: int
    ) -> ecs.ContainerDefinition:
        linux = ecs.LinuxParameters(self, "ModelLoaderLinuxParameters")
        linux.drop_capabilities(ecs.Capability.ALL)
        loader = self.task_definition.add_container(
            "ModelLoader",
            container_name=LOADER_CONTAINER_NAME,
            image=image,
            essential=False,
            entry_point=loader_command(),
            user="0",
            memory_limit_mib=memory_limit_mib,
            readonly_root_filesystem=True,
            privileged=False,
            linux_parameters=linux,
            environment={
                "MODEL_S3_BUCKET": bucket_name,
                "MODEL_S3_KEY": object_key,
                "MODEL_S3_REGION": region,
                "MODEL_DIR": MODEL_DIR,
                "SHARED_WRITABLE_DIRS": TMP_DIR,
            },
            logging=ecs.LogDrivers.aws_logs(stream_prefix=LOADER_CONTAINER_NAME, log_group=self.log_group),
        )
        loader.add_mount_points(
            ecs.MountPoint(source_volume="model", container_path=MODEL_DIR, read_only=False),
            ecs.MountPoint(source_volume="tmp", container_path=TMP_DIR, read_only=False),
        )
        return loader

    def _add_server(
        self,
        image: ecs.ContainerImage,
        *,
        name: str,
        port: int,
        environment: dict[str, str],
        secrets: Mapping[str, ecs.Secret] | None,
        user: str,
        read_only_root_filesystem: bool,
        drop_capabilities: bool,
        start_period: Duration,
        memory_limit_mib: int,
    ) -> ecs.ContainerDefinition:
        linux = ecs.LinuxParameters(self, "InferenceLinuxParameters", init_process_enabled=True)
        if drop_capabilities:
            linux.drop_capabilities(ecs.Capability.ALL)
        ping = f"import urllib.request as r; r.urlopen('http://127.0.0.1:{port}{PING_PATH}', timeout=4)"
        container = self.task_definition.add_container(
            "Inference",
            container_name=name,
            image=image,
            essential=True,
            port_mappings=[ecs.PortMapping(container_port=port, protocol=ecs.Protocol.TCP, name="http")],
            environment=environment,
            secrets=dict(secrets) if secrets else None,
            user=user,
            readonly_root_filesystem=read_only_root_filesystem,
            privileged=False,
            linux_parameters=linux,
            # A hard limit per container (CT.ECS.PR.7): the task's memory; the loader exits first.
            memory_limit_mib=memory_limit_mib,
            health_check=ecs.HealthCheck(
                command=["CMD", "python3", "-c", ping],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=start_period,
            ),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=self.log_group),
        )
        container.add_mount_points(
            ecs.MountPoint(source_volume="model", container_path=MODEL_DIR, read_only=True),
            ecs.MountPoint(source_volume="tmp", container_path=TMP_DIR, read_only=False),
        )
        return container


def _spot_strategy() -> list[ecs.CapacityProviderStrategy]:
    return [
        ecs.CapacityProviderStrategy(capacity_provider="FARGATE", base=1, weight=1),
        ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=3),
    ]


def _exempt_default_security_group_function(scope: Construct) -> None:
    """The CDK's stack-level function that strips the VPC's default security group runs outside a VPC."""
    provider = Stack.of(scope).node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
    handler = provider.node.try_find_child("Handler") if provider is not None else None
    if handler is not None:
        exempt(
            handler,
            {
                "CT.LAMBDA.PR.3": "aws-cdk-lib's deployment-time function that removes the rules of the new "
                "VPC's default security group; it calls only the EC2 API, runs during deployments, and CDK "
                "offers no VPC placement for it. restrict_default_security_group=False removes it (and "
                "leaves the default security group's rules in place).",
            },
        )
