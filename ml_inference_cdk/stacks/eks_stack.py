"""EksStack: the inference server on EKS Auto Mode, on a cluster this stack creates or one you bring.

The cluster it creates is locked down the way AwsSolutions' EKS rules would want (they do not inspect
``aws_eks_v2`` clusters, so the tests assert these properties themselves):

- API endpoint PRIVATE by default: CDK's kubectl provider runs inside the VPC and reaches it there. Give
  ``public_endpoint_cidrs`` (context ``eksPublicEndpointCidrs``, comma-separated) to also open the public
  endpoint to exactly those networks (PUBLIC_AND_PRIVATE), never to the whole internet.
- Every control-plane log type to CloudWatch Logs; Kubernetes secrets envelope-encrypted with a KMS key that
  rotates; a VPC with flow logs.
- Auto Mode with a node role this stack owns, so the image pull is granted to it explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from aws_cdk import (
    Aspects,
    CfnElement,
    CfnOutput,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer
from constructs import Construct, IConstruct

from ml_inference_cdk.constructs.control_tower import exempt, restrict_grants_to_aws_services
from ml_inference_cdk.constructs.eks.deployment import EksInferenceDeployment
from ml_inference_cdk.constructs.eks.exposure import network_policy_controller_object
from ml_inference_cdk.constructs.eks.manifests import EXPOSURES
from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.constructs.log_encryption import create_log_key
from ml_inference_cdk.constructs.nag import acknowledge
from ml_inference_cdk.constructs.repository import InferenceRepository
from ml_inference_cdk.stacks.context_checks import public_endpoint_networks
from ml_inference_cdk.stacks.settings import Settings

KUBERNETES_VERSION = eks.KubernetesVersion.V1_35
"""Matches the kubectl layer (lambda-layer-kubectl-v35): kubectl supports one minor version of skew."""

_MANAGED = "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
"""The start of the id cdk-nag gives an AWS managed policy finding."""

ALL_LOG_TYPES = (
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
)


class EksStack(Stack):
    """An EKS Auto Mode cluster (or yours) running the inference Deployment of the shared image and model."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        cluster: eks.ICluster | None = None,
        node_role: iam.IGrantable | None = None,
        public_endpoint_cidrs: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the stack.

        Args:
            settings: the app's settings; reads ``eksReplicas`` (default 3), ``eksMaxReplicas`` (default three
                times the replicas), ``eksNamespace`` (default ml-inference), ``eksPublicEndpointCidrs``,
                ``eksAllowedNamespaces`` (comma-separated: who may call the service; default none),
                ``eksExposure`` (ClusterIP, LoadBalancer or Ingress; default ClusterIP), and for a public
                load balancer ``eksInternetFacing``, ``eksAllowedCidrs`` and ``eksCertificateArn``.
            cluster: run on this cluster (it needs a kubectl provider). Default: a new Auto Mode cluster.
            node_role: with ``cluster``, the role of its nodes, granted the image pull. Default: no grant.
            public_endpoint_cidrs: networks allowed on the public API endpoint of the new cluster.
                Default: context ``eksPublicEndpointCidrs``, else none (private endpoint only).

        Raises:
            ValueError: a bad setting, a CIDR that is not a network or is the whole internet, or
                ``public_endpoint_cidrs`` with a cluster of your own.
        """
        super().__init__(scope, construct_id, **kwargs)
        replicas = settings.integer("eksReplicas", 3)
        max_replicas = settings.integer("eksMaxReplicas", 3 * replicas)
        namespace = settings.text("eksNamespace") or "ml-inference"
        cidrs = _public_endpoint_cidrs(public_endpoint_cidrs, settings.text("eksPublicEndpointCidrs"))
        model = settings.model()
        if cluster is not None and cidrs:
            raise ValueError("public_endpoint_cidrs only applies to the cluster this stack creates")

        creates_cluster = cluster is None
        if cluster is None:
            auto_mode_node_role = self._node_role()
            # jsii's Python Cluster lacks one ICluster protocol member; it is an ICluster all the same.
            cluster = cast(eks.ICluster, self._cluster(auto_mode_node_role, cidrs))
            node_role = auto_mode_node_role
        self.cluster: eks.ICluster = cluster
        """The cluster the service runs on."""

        exposure = settings.text("eksExposure") or "ClusterIP"
        if exposure not in EXPOSURES:
            raise ValueError(
                f"context key eksExposure must be one of {', '.join(EXPOSURES)}, got {exposure!r}"
            )
        self.deployment: EksInferenceDeployment = EksInferenceDeployment(
            self,
            "Inference",
            cluster=cluster,
            image=self._image(settings),
            model_artifact=model,
            node_role=node_role,
            namespace=namespace,
            replicas=replicas,
            max_replicas=max_replicas,
            exposure=exposure,
            internet_facing=settings.boolean("eksInternetFacing", False),
            allowed_cidrs=_list(settings.text("eksAllowedCidrs")),
            certificate_arn=settings.text("eksCertificateArn"),
            allowed_namespaces=_list(settings.text("eksAllowedNamespaces")),
            # This stack's cluster runs EKS Auto Mode, whose ALBs need its own IngressClass.
            create_ingress_class=exposure == "Ingress" and creates_cluster,
        )
        """The inference Deployment and what it grants (service URL, service account role)."""

        Aspects.of(self).add(DropImpliedDependsOn())

        CfnOutput(self, "ClusterName", value=cluster.cluster_name)
        CfnOutput(self, "Namespace", value=self.deployment.namespace)
        CfnOutput(
            self, "ServiceUrl", value=self.deployment.service_url, description="In-cluster URL of the Service"
        )
        CfnOutput(self, "ServiceAccountRoleArn", value=self.deployment.service_account_role.role_arn)

    def _image(self, settings: Settings) -> ContainerImage:
        if settings.image_uri or not settings.copy_image_to_repository:
            return settings.image()
        repository = InferenceRepository(
            self,
            "Repository",
            removal_policy=RemovalPolicy.DESTROY if settings.destroy_on_delete else RemovalPolicy.RETAIN,
        )
        return settings.image(copy_to=repository)

    def _node_role(self) -> iam.Role:
        """The Auto Mode node pools' role: the minimal policies AWS documents for Auto Mode nodes."""
        role = iam.Role(
            self,
            "NodeRole",
            description="EKS Auto Mode node role (built-in node pools)",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKSWorkerNodeMinimalPolicy"),
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEC2ContainerRegistryPullOnly"),
            ],
        )
        acknowledge(
            role,
            {
                f"{_MANAGED}AmazonEKSWorkerNodeMinimalPolicy]": (
                    "The policy AWS documents for EKS Auto Mode node roles; it lets nodes join the cluster "
                    "and "
                    "is maintained by AWS as EKS evolves."
                ),
                f"{_MANAGED}AmazonEC2ContainerRegistryPullOnly]": (
                    "Auto Mode nodes pull system images (and the inference image) from ECR; pull-only, no "
                    "push or "
                    "delete."
                ),
                "AwsSolutions-IAM5[Resource::*]": (
                    "ecr:GetAuthorizationToken, granted with the inference image pull, has no resource-level "
                    "permissions; the pull itself is granted on the one repository."
                ),
            },
        )
        return role

    def _cluster(self, node_role: iam.IRole, public_endpoint_cidrs: list[str]) -> eks.Cluster:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=2,
            subnet_configuration=[
                # Load balancers and NAT gateways get their addresses explicitly (CT.EC2.PR.11).
                ec2.SubnetConfiguration(
                    name="Public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=19
                ),
            ],
        )
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=create_log_key(self, "LogKey", description="Encrypts the EKS VPC's flow logs"),
            removal_policy=RemovalPolicy.DESTROY,
        )
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group))

        secrets_key = kms.Key(
            self,
            "SecretsKey",
            description="Envelope encryption of the EKS cluster's Kubernetes secrets",
            enable_key_rotation=True,
        )
        restrict_grants_to_aws_services(secrets_key)
        endpoint = (
            eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*public_endpoint_cidrs)
            if public_endpoint_cidrs
            else eks.EndpointAccess.PRIVATE
        )
        cluster = eks.Cluster(
            self,
            "Cluster",
            version=KUBERNETES_VERSION,
            default_capacity_type=eks.DefaultCapacityType.AUTOMODE,
            compute=eks.ComputeConfig(node_pools=["system", "general-purpose"], node_role=node_role),
            vpc=vpc,
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            endpoint_access=endpoint,
            secrets_encryption_key=secrets_key,
            cluster_logging=list(ALL_LOG_TYPES),
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=KubectlV35Layer(self, "KubectlLayer")
            ),
        )
        # The autoscaler reads pod CPU from the metrics server, which EKS does not install by default.
        eks.Addon(self, "MetricsServer", cluster=cast(eks.ICluster, cluster), addon_name="metrics-server")
        # Auto Mode enforces NetworkPolicies (the inference namespace's default deny) once this is set.
        cluster.add_manifest("NetworkPolicyController", network_policy_controller_object())
        _acknowledge_cluster_findings(cluster)
        return cluster


def _acknowledge_cluster_findings(cluster: eks.Cluster) -> None:
    """What aws_eks_v2 brings that AwsSolutions flags, acknowledged where it lives, each with its reason."""
    managed = _MANAGED
    acknowledge(
        cluster.role,
        {
            f"{managed}{policy}]": (
                f"{policy} is one of the AWS managed policies AWS documents for the EKS Auto Mode cluster "
                "role "
                "(compute, block storage, load balancing, networking); AWS updates them as Auto Mode changes."
            )
            for policy in (
                "AmazonEKSClusterPolicy",
                "AmazonEKSComputePolicy",
                "AmazonEKSBlockStoragePolicy",
                "AmazonEKSLoadBalancingPolicy",
                "AmazonEKSNetworkingPolicy",
            )
        },
    )
    provider = cluster.kubectl_provider
    assert provider is not None, "the cluster is created with kubectl_provider_options"
    lambda_logs = (
        "writes only its own CloudWatch Logs with this policy; it runs during deployment only (aws-cdk-lib's "
        "kubectl provider)."
    )
    vpc_access = (
        "runs inside the VPC to reach the private cluster endpoint; this policy only manages its network "
        "interfaces (aws-cdk-lib's kubectl provider)."
    )
    handler = provider.node.find_child("Handler")
    in_vpc = (
        "runs in the cluster's VPC (private subnets, the cluster security group). The static check "
        "recognizes only security groups declared in the template, and aws_eks_v2 uses the one EKS "
        "creates (Fn::GetAtt Cluster.ClusterSecurityGroupId); a Control Tower hook sees the resolved "
        "sg- id and passes it."
    )
    exempt(handler, {"CT.LAMBDA.PR.3": f"aws-cdk-lib's kubectl handler {in_vpc}"})
    exempt(
        provider.node.find_child("Provider").node.find_child("framework-onEvent"),
        {"CT.LAMBDA.PR.3": f"aws-cdk-lib's kubectl provider framework function {in_vpc}"},
    )
    acknowledge(
        handler,
        {
            f"{managed}service-role/AWSLambdaBasicExecutionRole]": f"The kubectl handler {lambda_logs}",
            f"{managed}service-role/AWSLambdaVPCAccessExecutionRole]": f"The kubectl handler {vpc_access}",
            f"{managed}AmazonEC2ContainerRegistryReadOnly]": (
                "aws-cdk-lib attaches read-only ECR access so the kubectl handler's helm can pull OCI "
                "charts; "
                "it cannot push or delete."
            ),
            (
                f'AwsSolutions-IAM4[Policy::{{"Fn::If":["{_logical_id(handler.node.find_child("HasEcrPublic"))}",'
                '{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},'
                '":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]'
            ): (
                "Read-only ECR Public access for helm OCI charts, attached by aws-cdk-lib only in partitions "
                "that have ECR Public."
            ),
            "AwsSolutions-L1": (
                "aws-cdk-lib pins the kubectl handler's Python runtime to the one its kubectl/helm layers "
                "are "
                "built and tested for; it moves with aws-cdk-lib upgrades."
            ),
        },
    )
    acknowledge(
        provider.node.find_child("Provider"),
        {
            f"{managed}service-role/AWSLambdaBasicExecutionRole]": (
                f"The provider framework function {lambda_logs}"
            ),
            f"{managed}service-role/AWSLambdaVPCAccessExecutionRole]": (
                f"The provider framework function {vpc_access}"
            ),
            f"AwsSolutions-IAM5[Resource::<{_logical_id(handler.node.find_child('Resource'))}.Arn>:*]": (
                "The provider framework may invoke every version of the one kubectl handler function and "
                "nothing else; Lambda ARNs with ':*' name that function's versions."
            ),
        },
    )


def _list(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


def _public_endpoint_cidrs(given: Sequence[str] | None, context: str | None) -> list[str]:
    return public_endpoint_networks(list(given) if given is not None else _list(context))


def _logical_id(element: IConstruct) -> str:
    """The logical id cdk-nag prints for a CloudFormation element (finding ids embed them)."""
    assert isinstance(element, CfnElement)
    stack = Stack.of(element)
    logical_id = stack.resolve(stack.get_logical_id(element))
    assert isinstance(logical_id, str)
    return logical_id
