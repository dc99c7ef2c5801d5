"""Run the inference server on an EKS cluster: the manifests of ``eks/manifests.py``, applied by the CDK.

Identity: EKS Pod Identity. The init container that loads model.tar.gz runs as the ServiceAccount, which
an ``AWS::EKS::PodIdentityAssociation`` maps to an IAM role allowed ``s3:GetObject`` on exactly that object.
Pod Identity rather than IRSA because EKS Auto Mode ships the Pod Identity Agent (no IAM OIDC provider to
create), the ServiceAccount needs no role annotation (so the YAML export and the CDK apply the same objects),
and the role's trust policy names a service principal, not one cluster's OIDC issuer, so it survives a cluster
replacement; and the model loader shared with ECS already reads the container credentials endpoint that Pod
Identity (like ECS) provides, where IRSA would need a web identity token exchange. Clusters without Auto Mode
need the ``eks-pod-identity-agent`` add-on; Fargate pods cannot use Pod Identity.

Image pull: the nodes pull the image, not the pod, so the pull is granted to ``node_role`` (on EKS Auto
Mode, the node pool's role).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from ml_inference_cdk.constructs.eks.exposure import IngressOidc
from ml_inference_cdk.constructs.eks.manifests import Exposure, InferenceManifests, Probes
from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact
from ml_inference_cdk.constructs.sources import check_sources

_PLACEHOLDER_IMAGE = "registry.invalid/validation-only:0"
_PLACEHOLDER_BUCKET = "validation-only"
_PLACEHOLDER_KEY = "model.tar.gz"


class EksInferenceDeployment(Construct):
    """The inference Deployment, Service, autoscaler and disruption budget on an ``aws_eks_v2`` cluster.

    The cluster needs a kubectl provider (``kubectl_provider_options`` on ``aws_eks_v2.Cluster``, or
    ``kubectl_provider`` on an imported one): the objects are applied with ``kubectl`` during deployment.
    The autoscaler needs the Kubernetes metrics server (the ``metrics-server`` EKS add-on).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        image: ContainerImage,
        model_artifact: ModelArtifact,
        node_role: iam.IGrantable | None = None,
        name: str = "ml-inference",
        namespace: str = "ml-inference",
        create_namespace: bool = True,
        replicas: int = 3,
        max_replicas: int | None = None,
        target_cpu_utilization: int = 70,
        cpu: str = "1",
        memory: str = "2Gi",
        cpu_limit: str | None = None,
        memory_limit: str | None = None,
        exposure: Exposure = "ClusterIP",
        internet_facing: bool = False,
        allowed_cidrs: Sequence[str] = (),
        oidc: IngressOidc | None = None,
        allow_public_http: bool = False,
        network_policy: bool = True,
        allowed_namespaces: Sequence[str] = (),
        load_balancer_source_cidrs: Sequence[str] | None = None,
        service_port: int = 80,
        ingress_class_name: str = "alb",
        create_ingress_class: bool = False,
        certificate_arn: str | None = None,
        environment: Mapping[str, str] | None = None,
        probes: Probes | None = None,
    ) -> None:
        """Apply the manifests and grant what they need.

        Args:
            cluster: the cluster to run on; it must have a kubectl provider.
            image: the inference image.
            model_artifact: the model.tar.gz every target serves.
            node_role: who pulls the image: the nodes' role (EKS Auto Mode: the node pool role). Default: no
                grant, for nodes that may already pull it (the Auto Mode node role ``aws_eks_v2`` generates
                has AmazonEC2ContainerRegistryReadOnly, enough for a repository in the same account without a
                customer managed key).
            name: the Deployment, Service, autoscaler and budget name. Default: ml-inference.
            namespace: the namespace. Default: ml-inference.
            create_namespace: create the namespace (enforcing the restricted Pod Security Standard); turn off
                to use one that exists. Default: True.
            replicas: pods, and the autoscaler's minimum. Default: 3.
            max_replicas: the autoscaler's maximum. Default: three times ``replicas``.
            target_cpu_utilization: the autoscaler's CPU target, percent of the request. Default: 70.
            cpu: CPU request per pod. Default: 1.
            memory: memory request per pod. Default: 2Gi.
            cpu_limit: CPU limit per pod. Default: the request.
            memory_limit: memory limit per pod. Default: the request.
            exposure: ``ClusterIP``, ``LoadBalancer`` (NLB) or ``Ingress`` (ALB). Default: ClusterIP.
            internet_facing: make the load balancer public; it then needs ``allowed_cidrs`` or ``oidc``, and
                ``certificate_arn`` or ``allow_public_http``. Default: False (internal).
            allowed_cidrs: networks that may connect to the load balancer. Default: the controller's.
            oidc: OpenID Connect sign-in on the Ingress's HTTPS listener (AWS Load Balancer Controller
                only). Default: none.
            allow_public_http: accept a public load balancer without TLS. Default: False.
            network_policy: a default-deny NetworkPolicy for the namespace, admitting the server's port only
                from ``allowed_namespaces`` and the load balancer. Default: True.
            allowed_namespaces: namespaces whose pods may call the service. Default: none.
            load_balancer_source_cidrs: the load balancer's subnets, admitted by the NetworkPolicy.
                Default: the cluster VPC's CIDR (with a load balancer).
            service_port: the Service's port. Default: 80.
            ingress_class_name: the IngressClass with ``exposure="Ingress"``. Default: alb.
            create_ingress_class: create that IngressClass for EKS Auto Mode (controller
                ``eks.amazonaws.com/alb``) with its IngressClassParams. Default: False.
            certificate_arn: ACM certificate for an HTTPS listener with ``exposure="Ingress"``. Default: HTTP.
            environment: more server environment, e.g. ``container_environment(workers=2)``. Default: none.
            probes: probe timings. Default: ``Probes()`` (up to 5 minutes to load the model).

        Raises:
            ValueError: an option Kubernetes would reject, naming it and what is allowed.
        """
        check_sources(image=image, model_artifact=model_artifact)
        super().__init__(scope, construct_id)
        if load_balancer_source_cidrs is None:
            load_balancer_source_cidrs = _vpc_cidr(cluster) if exposure != "ClusterIP" else []
        # Validate before creating anything: the real image and model URIs are deploy-time tokens.
        spec = InferenceManifests(
            image_uri=_PLACEHOLDER_IMAGE,
            model_bucket=_PLACEHOLDER_BUCKET,
            model_key=_PLACEHOLDER_KEY,
            name=name,
            namespace=namespace,
            create_namespace=create_namespace,
            replicas=replicas,
            max_replicas=max_replicas,
            target_cpu_utilization=target_cpu_utilization,
            cpu=cpu,
            memory=memory,
            cpu_limit=cpu_limit,
            memory_limit=memory_limit,
            exposure=exposure,
            internet_facing=internet_facing,
            allowed_cidrs=tuple(allowed_cidrs),
            oidc=oidc,
            allow_public_http=allow_public_http,
            network_policy=network_policy,
            allowed_namespaces=tuple(allowed_namespaces),
            load_balancer_source_cidrs=tuple(load_balancer_source_cidrs),
            service_port=service_port,
            ingress_class_name=ingress_class_name,
            create_ingress_class=create_ingress_class,
            certificate_arn=certificate_arn,
            environment=dict(environment or {}),
            probes=probes or Probes(),
        )
        self._cluster = cluster

        self.service_account_role: iam.IRole = iam.Role(
            self,
            "ServiceAccountRole",
            description=f"EKS Pod Identity role of {namespace}/{spec.account_name}: reads the model archive",
            assumed_by=iam.SessionTagsPrincipal(
                iam.ServicePrincipal("pods.eks.amazonaws.com")
            ).with_conditions(
                {
                    # Pod Identity sets these session tags; without the condition any association in the
                    # account could use this role.
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-name": cluster.cluster_name,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": spec.account_name,
                    }
                }
            ),
        )
        """The IAM role the pods' ServiceAccount assumes (through EKS Pod Identity)."""
        model_config = model_artifact.bind(self, self.service_account_role)
        image_config = image.bind(self, node_role or _NoGrant.of(self))

        association = eks.CfnPodIdentityAssociation(
            self,
            "PodIdentityAssociation",
            cluster_name=cluster.cluster_name,
            namespace=namespace,
            service_account=spec.account_name,
            role_arn=self.service_account_role.role_arn,
        )

        self.manifests: InferenceManifests = dataclasses.replace(
            spec,
            image_uri=image_config.image_uri,
            model_bucket=model_config.bucket_name,
            model_key=model_config.object_key,
            aws_region=Stack.of(self).region,
        )
        """The objects applied to the cluster (the image and model URIs may be deploy-time tokens)."""

        workload = eks.KubernetesManifest(
            self, "Workload", cluster=cluster, manifest=self.manifests.workload_objects()
        )
        if create_namespace:
            namespace_manifest = eks.KubernetesManifest(
                self, "Namespace", cluster=cluster, manifest=[self.manifests.namespace_object()]
            )
            workload.node.add_dependency(namespace_manifest)
        if create_ingress_class:
            ingress_class = eks.KubernetesManifest(
                self, "IngressClass", cluster=cluster, manifest=self.manifests.ingress_class_objects()
            )
            workload.node.add_dependency(ingress_class)
        # Pod Identity injects credentials when a pod is created: the association and the role's policy must
        # exist before the first pod, or its init container starts without credentials.
        workload.node.add_dependency(association, self.service_account_role)
        if image_config.dependable is not None:
            workload.node.add_dependency(image_config.dependable)
        self.workload_manifest: eks.KubernetesManifest = workload
        """The ``KubernetesManifest`` holding everything inside the namespace (for dependencies)."""

    @property
    def service_name(self) -> str:
        """The Kubernetes Service's name."""
        return self.manifests.name

    @property
    def namespace(self) -> str:
        return self.manifests.namespace

    @property
    def service_account_name(self) -> str:
        return self.manifests.account_name

    @property
    def service_url(self) -> str:
        """The in-cluster URL, ``http://NAME.NAMESPACE.svc.cluster.local:PORT``."""
        return self.manifests.service_url

    def load_balancer_address(self, *, timeout: Duration | None = None) -> str:
        """The load balancer's DNS name (``exposure`` LoadBalancer or Ingress), read once it exists.

        Adds a custom resource that waits for the address during deployment.

        Args:
            timeout: how long to wait for the controller to create the load balancer. Default: 10 minutes.

        Raises:
            ValueError: with ``exposure="ClusterIP"`` there is no load balancer.
        """
        exposure = self.manifests.exposure
        if exposure == "ClusterIP":
            raise ValueError(
                "load_balancer_address needs exposure='LoadBalancer' or 'Ingress', got 'ClusterIP'"
            )
        existing = self.node.try_find_child("LoadBalancerAddress")
        if isinstance(existing, eks.KubernetesObjectValue):
            return existing.value
        value = eks.KubernetesObjectValue(
            self,
            "LoadBalancerAddress",
            cluster=self._cluster,
            object_type="service" if exposure == "LoadBalancer" else "ingress",
            object_name=self.manifests.name,
            object_namespace=self.manifests.namespace,
            json_path=".status.loadBalancer.ingress[0].hostname",
            timeout=timeout or Duration.minutes(10),
        )
        value.node.add_dependency(self.workload_manifest)
        return value.value


def _vpc_cidr(cluster: eks.ICluster) -> list[str]:
    """The cluster VPC's CIDR, or nothing for an imported cluster without its VPC (the builder then asks)."""
    try:
        return [cluster.vpc.vpc_cidr_block]
    except RuntimeError:  # jsii: "vpc" is not defined for this imported cluster
        return []


class _NoGrant:
    """Bind the image without granting anything, for nodes that may already pull it."""

    @staticmethod
    def of(scope: Construct) -> iam.IGrantable:
        # An immutable imported role accepts grants and drops them: no policy, no resource.
        return iam.Role.from_role_name(
            scope, "NodeRoleNotGranted", "nodes-pull-with-their-own-role", mutable=False
        )
