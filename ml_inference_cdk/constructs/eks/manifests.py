"""The Kubernetes objects that run the inference server: one builder, plain dicts out.

``EksInferenceDeployment`` applies these objects to an EKS cluster, and ``ml-inference-manifests`` writes the
very same objects as YAML for ``kubectl apply -f``: there is one definition of the workload, not two. This
module imports nothing from the CDK; values only known later (the image URI, the model's bucket and key) may
be CDK tokens or ``${IMAGE_URI}``-style placeholders for ``envsubst``, which are passed through unchecked.

What the objects do, and why:

- The pods meet the Kubernetes "restricted" Pod Security Standard (non-root uid, read-only root filesystem,
  no privilege escalation, every capability dropped, the RuntimeDefault seccomp profile), on every container
  including the init container, and the namespace enforces it.
- model.tar.gz is unpacked into ``/opt/ml/model`` before the server starts, as SageMaker does, by the same
  init container the ECS target runs: the inference image itself with the standard-library loader
  ``model_loader.py`` (``python3 -c``; the image has no boto3 or AWS CLI, and the AWS CLI image has no
  ``tar``: aws/aws-cli#5106). It signs one S3 GET with the ServiceAccount's EKS Pod Identity credentials, so
  no second image is pulled from a public registry. The server mounts the result read-only.
- Probes on ``/ping`` are sized to model loading: the startup probe allows ``startup_timeout_seconds`` before
  the first 200, readiness takes a pod out of the Service quickly, liveness restarts it only after minutes of
  failed pings, so a slow-but-alive pod under load is not killed.
- The HorizontalPodAutoscaler scales on CPU between ``replicas`` and ``max_replicas``; the PodDisruptionBudget
  lets node drains take one pod at a time; pods spread across zones and hosts.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, get_args

from ml_inference_cdk.constructs.contract import (
    CONTAINER_PORT,
    ENV_BIND_TO_PORT,
    ENV_MODEL_DIR,
    MODEL_DIR,
    PING_PATH,
)
from ml_inference_cdk.constructs.eks.exposure import (
    IngressOidc,
    check_exposure,
    check_namespaces,
    ingress_class_objects,
    network_policy_objects,
)
from ml_inference_cdk.constructs.model_loader import loader_command

Manifest = dict[str, Any]
"""One Kubernetes object, as ``kubectl apply`` and ``KubernetesManifest`` take it."""

Exposure = Literal["ClusterIP", "LoadBalancer", "Ingress"]
"""How the Service is reached: inside the cluster only, through a Network Load Balancer, or through an
Application Load Balancer made from an Ingress."""

EXPOSURES: Final[tuple[Exposure, ...]] = get_args(Exposure)

RUN_AS_USER: Final = 10001
"""The inference image's unprivileged uid (its Dockerfile's ``USER 10001:10001``)."""

CONTAINER_NAME: Final = "inference"
LOADER_CONTAINER_NAME: Final = "model-loader"
PORT_NAME: Final = "http"

MODEL_LOADER_COMMAND: Final = loader_command()
"""The model loader both container targets run with ``python3 -c`` (standard library only)."""

_MODEL_PARENT: Final = posixpath.dirname(MODEL_DIR)
# The loader creates MODEL_DIR itself inside the volume, so the unprivileged uid owns it (and may chmod it);
# the server mounts just that folder, read-only.
_MODEL_SUBPATH: Final = posixpath.basename(MODEL_DIR)
_TMP_DIR: Final = "/tmp"  # noqa: S108 - an emptyDir mounted there, not the image's /tmp

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUANTITY = re.compile(
    r"(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?"
)
_SUFFIXES: Final = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>\S+)")
"""Any key: CDK names file assets ``<hash>.gz``, and neither SageMaker nor the loader needs ``.tar.gz``."""
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IMAGE = re.compile(r"(?:[^\s/]+/)*[^\s:@/]+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})")
_PLACEHOLDER = re.compile(r"\$\{[A-Z_][A-Z0-9_]*\}")
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d+")
_MAX_STARTUP_SECONDS: Final = 3600


@dataclass(frozen=True, kw_only=True)
class Probes:
    """Startup, readiness and liveness checks on ``/ping``, sized to model loading.

    The server answers 200 on ``/ping`` only once the model is loaded and 503 before or after a failed load,
    so one path serves all three probes; what differs is how patient each one is.
    """

    startup_timeout_seconds: int = 300
    """Longest time from the server's start to its first 200, i.e. the model load (the download happens
    before, in the init container). Default: 300."""
    period_seconds: int = 10
    """How often the startup and readiness probes ask. Default: 10."""
    timeout_seconds: int = 2
    """How long one startup or readiness ping may take (the SageMaker contract's 2 s). Default: 2."""
    readiness_failure_threshold: int = 3
    """Failed pings in a row that take a pod out of the Service. Default: 3 (30 s)."""
    liveness_period_seconds: int = 20
    """How often the liveness probe asks. Default: 20."""
    liveness_timeout_seconds: int = 5
    """How long one liveness ping may take; generous, so a busy pod is not taken for dead. Default: 5."""
    liveness_failure_threshold: int = 6
    """Failed liveness pings in a row before the container is restarted. Default: 6 (2 minutes)."""

    def __post_init__(self) -> None:
        for name in (
            "startup_timeout_seconds",
            "period_seconds",
            "timeout_seconds",
            "readiness_failure_threshold",
            "liveness_period_seconds",
            "liveness_timeout_seconds",
            "liveness_failure_threshold",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{name} must be a positive whole number of seconds or probes, got {value!r}"
                )
        if self.timeout_seconds >= self.period_seconds:
            raise ValueError(
                f"timeout_seconds must be shorter than period_seconds ({self.period_seconds}), "
                f"got {self.timeout_seconds}"
            )
        if self.liveness_timeout_seconds >= self.liveness_period_seconds:
            raise ValueError(
                f"liveness_timeout_seconds must be shorter than liveness_period_seconds "
                f"({self.liveness_period_seconds}), got {self.liveness_timeout_seconds}"
            )
        if not self.period_seconds <= self.startup_timeout_seconds <= _MAX_STARTUP_SECONDS:
            raise ValueError(
                f"startup_timeout_seconds must be {self.period_seconds}-{_MAX_STARTUP_SECONDS} "
                f"(at least one period_seconds, at most SageMaker's longest startup window), "
                f"got {self.startup_timeout_seconds}"
            )

    @property
    def startup_failure_threshold(self) -> int:
        """Startup pings that may fail before the container is restarted."""
        return math.ceil(self.startup_timeout_seconds / self.period_seconds)


@dataclass(frozen=True, kw_only=True)
class InferenceManifests:
    """The Kubernetes objects for one inference service, validated on creation.

    ``objects()`` returns them in apply order: the EKS Auto Mode IngressClassParams and IngressClass (with
    ``create_ingress_class``), Namespace, ServiceAccount, the two NetworkPolicies, Deployment, Service,
    HorizontalPodAutoscaler, PodDisruptionBudget, then the Ingress when ``exposure="Ingress"``.

    Raises:
        ValueError: a value Kubernetes (or the container) would reject, naming it and what is allowed.
    """

    image_uri: str
    """The inference image, ``REGISTRY/NAME:TAG`` or ``REGISTRY/NAME@sha256:DIGEST``."""
    model_bucket: str
    """The S3 bucket holding model.tar.gz."""
    model_key: str
    """The object key of model.tar.gz in ``model_bucket`` (``split_s3_uri`` splits an ``s3://`` URI)."""
    name: str = "ml-inference"
    """Name of the Deployment, Service, autoscaler and budget. Default: ml-inference."""
    namespace: str = "ml-inference"
    """The namespace everything lives in. Default: ml-inference."""
    create_namespace: bool = True
    """Include the Namespace object (labelled to enforce the restricted Pod Security Standard). Turn off to
    deploy into a namespace someone else owns. Default: True."""
    service_account_name: str | None = None
    """The ServiceAccount whose IAM role reads the model. Default: the same as ``name``."""
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)
    """Extra ServiceAccount annotations. Default: none (EKS Pod Identity needs none: the association lives
    in the EKS API; the model loader reads Pod Identity's credentials endpoint, not IRSA's web identity)."""
    replicas: int = 3
    """Pods to run, and the autoscaler's minimum. Default: 3."""
    max_replicas: int | None = None
    """The autoscaler's maximum. Default: three times ``replicas``."""
    target_cpu_utilization: int = 70
    """Average CPU, in percent of the request, the autoscaler steers towards. Default: 70."""
    cpu: str = "1"
    """CPU request per pod, a Kubernetes quantity. Default: 1."""
    memory: str = "2Gi"
    """Memory request per pod. Default: 2Gi."""
    cpu_limit: str | None = None
    """CPU limit per pod; the server sizes its workers from it. Default: the same as ``cpu``."""
    memory_limit: str | None = None
    """Memory limit per pod. Default: the same as ``memory`` (no overcommit)."""
    container_port: int = CONTAINER_PORT
    """Port the server listens on (passed as SAGEMAKER_BIND_TO_PORT). Default: 8080."""
    service_port: int = 80
    """Port the Service (and load balancer) listens on. Default: 80."""
    exposure: Exposure = "ClusterIP"
    """``ClusterIP`` (in-cluster only), ``LoadBalancer`` (a Network Load Balancer from EKS Auto Mode or the
    AWS Load Balancer Controller) or ``Ingress`` (an Application Load Balancer). Default: ClusterIP."""
    internet_facing: bool = False
    """Make the load balancer public; it then needs ``allowed_cidrs`` or ``oidc`` (see
    ``eks.exposure``). Default: False (internal)."""
    allowed_cidrs: Sequence[str] = ()
    """Networks that may connect to the load balancer (Service ``loadBalancerSourceRanges``, Ingress
    ``inbound-cidrs``). Default: none (the controller's default: anywhere for a public one, the VPC for an
    internal one)."""
    oidc: IngressOidc | None = None
    """OpenID Connect sign-in on the Ingress's HTTPS listener (AWS Load Balancer Controller only).
    Default: none."""
    allow_public_http: bool = False
    """Accept an internet-facing load balancer without TLS (plain HTTP on the internet). Default: False."""
    network_policy: bool = True
    """Add a default-deny ``NetworkPolicy`` for the namespace and one admitting the server's port only from
    ``allowed_namespaces`` and ``load_balancer_source_cidrs``. Default: True."""
    allowed_namespaces: Sequence[str] = ()
    """Namespaces whose pods may call the service. Default: none."""
    load_balancer_source_cidrs: Sequence[str] = ()
    """With a load balancer: the CIDRs of the subnets it runs in (its nodes' addresses), which the
    NetworkPolicy admits. Required then (``EksInferenceDeployment`` defaults to the cluster VPC's CIDR).
    Default: none."""
    ingress_class_name: str = "alb"
    """IngressClass for ``exposure="Ingress"``. Default: alb (the AWS Load Balancer Controller's, or the one
    ``create_ingress_class`` makes for EKS Auto Mode)."""
    create_ingress_class: bool = False
    """Also make an EKS Auto Mode IngressClass named ``ingress_class_name`` (controller
    ``eks.amazonaws.com/alb``) and its IngressClassParams (scheme, certificate, usable only from
    ``namespace``). Default: False."""
    certificate_arn: str | None = None
    """ACM certificate for an HTTPS-only listener on 443 (``exposure="Ingress"``). Default: HTTP on 80."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """More server environment, usually ``contract.container_environment(...)``. Default: none."""
    probes: Probes = field(default_factory=Probes)
    """Probe timings. Default: ``Probes()`` (up to 5 minutes to load the model)."""
    aws_region: str | None = None
    """Region of the model bucket. Default: found from S3's redirect (the loader starts with us-east-1)."""
    run_as_user: int = RUN_AS_USER
    """Unprivileged uid (and gid) every container runs as. Default: 10001, the inference image's user."""
    model_volume_size: str = "1Gi"
    """Size limit of the volume the model is unpacked into (the archive is streamed). Default: 1Gi."""
    pre_stop_sleep_seconds: int = 5
    """Seconds a terminating pod keeps serving so load balancers stop sending to it first; 0 disables.
    Default: 5."""
    termination_grace_period_seconds: int = 30
    """Time between SIGTERM and SIGKILL (the SageMaker contract's 30 s). Default: 30."""

    def __post_init__(self) -> None:
        _check_dns_label("name", self.name)
        _check_dns_label("namespace", self.namespace)
        _check_dns_label("service_account_name", self.account_name)
        _check_image("image_uri", self.image_uri)
        if not _is_token(self.model_bucket) and not _BUCKET.fullmatch(self.model_bucket):
            raise ValueError(
                f"model_bucket must be an S3 bucket name (3-63 lowercase letters, digits, '.' and '-'), "
                f"got {self.model_bucket!r}"
            )
        if not _is_token(self.model_key) and (not self.model_key or self.model_key.startswith("/")):
            raise ValueError(
                f"model_key must be a non-empty S3 key without a leading '/', got {self.model_key!r}"
            )
        if (
            self.aws_region is not None
            and not _is_token(self.aws_region)
            and not _REGION.fullmatch(self.aws_region)
        ):
            raise ValueError(
                f"aws_region must be an AWS Region name such as eu-west-1, got {self.aws_region!r}"
            )
        _check_whole("replicas", self.replicas, minimum=1)
        _check_whole("max_replicas", self.autoscaling_max, minimum=1)
        if self.autoscaling_max < self.replicas:
            raise ValueError(
                f"max_replicas must be >= replicas ({self.replicas}), the autoscaler's minimum, "
                f"got {self.autoscaling_max}"
            )
        _check_whole("target_cpu_utilization", self.target_cpu_utilization, minimum=1, maximum=100)
        _check_whole("container_port", self.container_port, minimum=1, maximum=65535)
        _check_whole("service_port", self.service_port, minimum=1, maximum=65535)
        _check_whole("run_as_user", self.run_as_user, minimum=1)
        _check_whole("pre_stop_sleep_seconds", self.pre_stop_sleep_seconds, minimum=0)
        _check_whole("termination_grace_period_seconds", self.termination_grace_period_seconds, minimum=1)
        if self.pre_stop_sleep_seconds >= self.termination_grace_period_seconds:
            raise ValueError(
                f"pre_stop_sleep_seconds must be shorter than termination_grace_period_seconds "
                f"({self.termination_grace_period_seconds}), got {self.pre_stop_sleep_seconds}"
            )
        requests = {"cpu": parse_quantity("cpu", self.cpu), "memory": parse_quantity("memory", self.memory)}
        limits = {
            "cpu": parse_quantity("cpu_limit", self.cpu_limit or self.cpu),
            "memory": parse_quantity("memory_limit", self.memory_limit or self.memory),
        }
        for resource in ("cpu", "memory"):
            if limits[resource] < requests[resource]:
                raise ValueError(
                    f"{resource}_limit must be at least the {resource} request ({getattr(self, resource)}), "
                    f"got {getattr(self, f'{resource}_limit')!r}"
                )
        parse_quantity("model_volume_size", self.model_volume_size)
        if self.exposure not in EXPOSURES:
            raise ValueError(f"exposure must be one of {', '.join(EXPOSURES)}, got {self.exposure!r}")
        if not _DNS_SUBDOMAIN.fullmatch(self.ingress_class_name) or len(self.ingress_class_name) > 253:
            raise ValueError(
                f"ingress_class_name must be a DNS subdomain name (lowercase letters, digits, '-' and '.'), "
                f"got {self.ingress_class_name!r}"
            )
        if self.certificate_arn is not None:
            if self.exposure != "Ingress":
                raise ValueError(f"certificate_arn needs exposure='Ingress', got exposure={self.exposure!r}")
            if not _is_token(self.certificate_arn) and not self.certificate_arn.startswith("arn:"):
                raise ValueError(
                    f"certificate_arn must be an ACM certificate ARN, got {self.certificate_arn!r}"
                )
        check_exposure(
            exposure=self.exposure,
            internet_facing=self.internet_facing,
            allowed_cidrs=self.allowed_cidrs,
            oidc=self.oidc,
            certificate_arn=self.certificate_arn,
            allow_public_http=self.allow_public_http,
            load_balancer_source_cidrs=self.load_balancer_source_cidrs,
            network_policy=self.network_policy,
            create_ingress_class=self.create_ingress_class,
        )
        check_namespaces(self.allowed_namespaces, _DNS_LABEL)
        if not isinstance(self.probes, Probes):
            raise ValueError(f"probes must be a Probes(...), got {self.probes!r}")
        for key in self.environment:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"environment names must be letters, digits and _, got {key!r}")

    # ----------------------------------------------------------------------------------------------------
    # What callers read

    @property
    def account_name(self) -> str:
        """The ServiceAccount's name."""
        return self.service_account_name or self.name

    @property
    def autoscaling_max(self) -> int:
        """The autoscaler's maximum, ``max_replicas`` or three times ``replicas``."""
        return self.max_replicas if self.max_replicas is not None else 3 * self.replicas

    @property
    def model_s3_uri(self) -> str:
        """``s3://BUCKET/KEY`` of the model archive."""
        return f"s3://{self.model_bucket}/{self.model_key}"

    @property
    def selector_labels(self) -> dict[str, str]:
        """The labels that pick this service's pods (Deployment selector, Service, budget, spread)."""
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/component": "inference-server"}

    @property
    def labels(self) -> dict[str, str]:
        """The labels on every object."""
        return {**self.selector_labels, "app.kubernetes.io/part-of": "ml-inference-cdk"}

    @property
    def service_url(self) -> str:
        """The in-cluster URL of the Service, e.g. ``http://ml-inference.ml-inference.svc.cluster.local:80``."""
        return f"http://{self.name}.{self.namespace}.svc.cluster.local:{self.service_port}"

    def objects(self) -> list[Manifest]:
        """Every object, in the order ``kubectl apply -f`` should see them."""
        namespace = [self.namespace_object()] if self.create_namespace else []
        return self.ingress_class_objects() + namespace + self.workload_objects()

    def workload_objects(self) -> list[Manifest]:
        """Everything inside the namespace (the namespace itself excluded)."""
        objects = [
            self.service_account_object(),
            *self.network_policy_objects(),
            self.deployment_object(),
            self.service_object(),
            self.autoscaler_object(),
            self.disruption_budget_object(),
        ]
        if self.exposure == "Ingress":
            objects.append(self.ingress_object())
        return objects

    def ingress_class_objects(self) -> list[Manifest]:
        """EKS Auto Mode's IngressClassParams and IngressClass, with ``create_ingress_class``."""
        if not self.create_ingress_class:
            return []
        return ingress_class_objects(
            name=self.ingress_class_name,
            namespace=self.namespace,
            labels=self.labels,
            internet_facing=self.internet_facing,
            certificate_arn=self.certificate_arn,
        )

    def network_policy_objects(self) -> list[Manifest]:
        """The namespace's default-deny policy and the one admitting callers (with ``network_policy``)."""
        if not self.network_policy:
            return []
        return network_policy_objects(
            name=self.name,
            namespace=self.namespace,
            labels=self.labels,
            selector_labels=self.selector_labels,
            port_name=PORT_NAME,
            allowed_namespaces=self.allowed_namespaces,
            load_balancer_source_cidrs=self.load_balancer_source_cidrs
            if self.exposure != "ClusterIP"
            else (),
        )

    # ----------------------------------------------------------------------------------------------------
    # The objects

    def namespace_object(self) -> Manifest:
        """The namespace, enforcing (and warning and auditing on) the restricted Pod Security Standard."""
        pod_security = {
            f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
        }
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": {**self.labels, **pod_security}},
        }

    def service_account_object(self) -> Manifest:
        """The identity the init container downloads the model with."""
        metadata: dict[str, Any] = {
            "name": self.account_name,
            "namespace": self.namespace,
            "labels": self.labels,
        }
        if self.service_account_annotations:
            metadata["annotations"] = dict(self.service_account_annotations)
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}

    def deployment_object(self) -> Manifest:
        """The inference pods: an init container fetches and unpacks the model, then the server starts."""
        template_metadata = {"labels": self.labels}
        pod_spec: dict[str, Any] = {
            "serviceAccountName": self.account_name,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": self.termination_grace_period_seconds,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": self.run_as_user,
                "runAsGroup": self.run_as_user,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "topologySpreadConstraints": [
                self._spread("topology.kubernetes.io/zone", "DoNotSchedule"),
                self._spread("kubernetes.io/hostname", "ScheduleAnyway"),
            ],
            "initContainers": [self._loader_container()],
            "containers": [self._server_container()],
            "volumes": [
                {"name": "model", "emptyDir": {"sizeLimit": self.model_volume_size}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            ],
        }
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self._metadata(),
            "spec": {
                "replicas": self.replicas,
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": self.selector_labels},
                # Never below the wanted count during a rollout: a new pod must load its model and turn
                # ready before an old one goes.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {"metadata": template_metadata, "spec": pod_spec},
            },
        }

    def service_object(self) -> Manifest:
        """The stable name in front of the ready pods; an NLB with ``exposure="LoadBalancer"``."""
        metadata = self._metadata()
        spec: dict[str, Any] = {
            "type": "LoadBalancer" if self.exposure == "LoadBalancer" else "ClusterIP",
            "selector": self.selector_labels,
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": self.service_port,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        }
        if self.exposure == "LoadBalancer":
            prefix = "service.beta.kubernetes.io/aws-load-balancer-"
            metadata["annotations"] = {
                f"{prefix}type": "external",
                f"{prefix}nlb-target-type": "ip",
                f"{prefix}scheme": "internet-facing" if self.internet_facing else "internal",
                f"{prefix}healthcheck-protocol": "http",
                f"{prefix}healthcheck-port": "traffic-port",
                f"{prefix}healthcheck-path": PING_PATH,
            }
            if self.allowed_cidrs:
                spec["loadBalancerSourceRanges"] = list(self.allowed_cidrs)
        return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}

    def autoscaler_object(self) -> Manifest:
        """CPU-based scaling between ``replicas`` and ``max_replicas`` (needs the metrics server)."""
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": self._metadata(),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name},
                "minReplicas": self.replicas,
                "maxReplicas": self.autoscaling_max,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {
                                "type": "Utilization",
                                "averageUtilization": self.target_cpu_utilization,
                            },
                        },
                    }
                ],
            },
        }

    def disruption_budget_object(self) -> Manifest:
        """Voluntary disruptions (node drains, Auto Mode consolidation) take one pod at a time."""
        return {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": self._metadata(),
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": self.selector_labels},
                # A pod that never turned ready (a bad model) must not block a drain forever.
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
        }

    def ingress_object(self) -> Manifest:
        """An Application Load Balancer (AWS Load Balancer Controller or EKS Auto Mode) for the pods."""
        prefix = "alb.ingress.kubernetes.io/"
        annotations = {
            f"{prefix}scheme": "internet-facing" if self.internet_facing else "internal",
            f"{prefix}target-type": "ip",
            f"{prefix}healthcheck-path": PING_PATH,
            f"{prefix}success-codes": "200",
        }
        if self.certificate_arn is not None:
            annotations |= {
                f"{prefix}listen-ports": '[{"HTTPS": 443}]',
                f"{prefix}certificate-arn": self.certificate_arn,
                f"{prefix}ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            }
        if self.allowed_cidrs:
            annotations[f"{prefix}inbound-cidrs"] = ",".join(self.allowed_cidrs)
        if self.oidc is not None:
            annotations |= self.oidc.annotations()
        metadata = self._metadata()
        metadata["annotations"] = annotations
        backend = {"service": {"name": self.name, "port": {"number": self.service_port}}}
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": metadata,
            "spec": {
                "ingressClassName": self.ingress_class_name,
                "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
            },
        }

    # ----------------------------------------------------------------------------------------------------
    # The containers

    def _loader_container(self) -> dict[str, Any]:
        env = {
            "MODEL_S3_BUCKET": self.model_bucket,
            "MODEL_S3_KEY": self.model_key,
            "MODEL_DIR": MODEL_DIR,
        }
        if self.aws_region is not None:
            env["MODEL_S3_REGION"] = self.aws_region
        return {
            "name": LOADER_CONTAINER_NAME,
            "image": self.image_uri,
            "imagePullPolicy": "IfNotPresent",
            "command": MODEL_LOADER_COMMAND,
            "env": [{"name": key, "value": value} for key, value in env.items()],
            # The same size as the server: a pod's request is the larger of its init and app containers, so
            # this costs nothing and unpacks faster.
            "resources": self._server_resources(),
            "securityContext": self._container_security_context(),
            "volumeMounts": [{"name": "model", "mountPath": _MODEL_PARENT}],
        }

    def _server_container(self) -> dict[str, Any]:
        environment = {
            **self.environment,
            ENV_BIND_TO_PORT: str(self.container_port),
            ENV_MODEL_DIR: MODEL_DIR,
        }
        container: dict[str, Any] = {
            "name": CONTAINER_NAME,
            "image": self.image_uri,
            "imagePullPolicy": "IfNotPresent",
            "args": ["serve"],
            "ports": [{"name": PORT_NAME, "containerPort": self.container_port, "protocol": "TCP"}],
            "env": [{"name": key, "value": value} for key, value in sorted(environment.items())],
            "resources": self._server_resources(),
            "startupProbe": self._ping(
                period=self.probes.period_seconds,
                timeout=self.probes.timeout_seconds,
                failures=self.probes.startup_failure_threshold,
            ),
            "readinessProbe": self._ping(
                period=self.probes.period_seconds,
                timeout=self.probes.timeout_seconds,
                failures=self.probes.readiness_failure_threshold,
            ),
            "livenessProbe": self._ping(
                period=self.probes.liveness_period_seconds,
                timeout=self.probes.liveness_timeout_seconds,
                failures=self.probes.liveness_failure_threshold,
            ),
            "securityContext": self._container_security_context(),
            "volumeMounts": [
                {"name": "model", "mountPath": MODEL_DIR, "subPath": _MODEL_SUBPATH, "readOnly": True},
                {"name": "tmp", "mountPath": _TMP_DIR},
            ],
        }
        if self.pre_stop_sleep_seconds:
            container["lifecycle"] = {"preStop": {"sleep": {"seconds": self.pre_stop_sleep_seconds}}}
        return container

    def _server_resources(self) -> dict[str, Any]:
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"cpu": self.cpu_limit or self.cpu, "memory": self.memory_limit or self.memory},
        }

    def _container_security_context(self) -> dict[str, Any]:
        """The restricted Pod Security Standard, stated on each container (not only on the pod)."""
        return {
            "runAsNonRoot": True,
            "runAsUser": self.run_as_user,
            "runAsGroup": self.run_as_user,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }

    def _ping(self, *, period: int, timeout: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": PING_PATH, "port": PORT_NAME},
            "periodSeconds": period,
            "timeoutSeconds": timeout,
            "failureThreshold": failures,
        }

    def _spread(self, topology_key: str, when_unsatisfiable: str) -> dict[str, Any]:
        return {
            "maxSkew": 1,
            "topologyKey": topology_key,
            "whenUnsatisfiable": when_unsatisfiable,
            "labelSelector": {"matchLabels": self.selector_labels},
            # Count only pods of the same rollout, so a new ReplicaSet spreads on its own.
            "matchLabelKeys": ["pod-template-hash"],
        }

    def _metadata(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "labels": self.labels}


def parse_quantity(name: str, value: str) -> Decimal:
    """A positive Kubernetes resource quantity ("500m", "2Gi", "1.5") as a number, for comparisons.

    Raises:
        ValueError: not a quantity Kubernetes parses, or not above zero.
    """
    match = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{name} must be a Kubernetes quantity such as 500m, 1, 2Gi or 512Mi, got {value!r}")
    suffix = match["suffix"] or ""
    try:
        number = Decimal(match["number"])
        amount = (
            number * _SUFFIXES[suffix] if suffix in _SUFFIXES else number * Decimal(10) ** int(suffix[1:])
        )
    except (InvalidOperation, ValueError) as error:  # pragma: no cover - the regex admits only numbers
        raise ValueError(f"{name} must be a Kubernetes quantity, got {value!r}") from error
    if amount <= 0:
        raise ValueError(f"{name} must be greater than zero, got {value!r}")
    return amount


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://BUCKET/KEY`` as (bucket, key); a ``${PLACEHOLDER}`` gives two placeholders.

    Raises:
        ValueError: not an s3:// URI with a bucket and a key.
    """
    if _PLACEHOLDER.fullmatch(uri):
        return "${MODEL_S3_BUCKET}", "${MODEL_S3_KEY}"
    match = _S3_URI.fullmatch(uri)
    if match is None:
        raise ValueError(
            f"model_s3_uri must look like s3://BUCKET/KEY, e.g. s3://my-models/iris/model.tar.gz, got {uri!r}"
        )
    return match["bucket"], match["key"]


def _is_token(value: str) -> bool:
    """A value filled in later passes unchecked: a CDK token (resolved at deploy time; this module does not
    import the CDK) or an ``${UPPER_CASE}`` placeholder for ``envsubst``."""
    return "${Token[" in value or _PLACEHOLDER.fullmatch(value) is not None


def _check_dns_label(name: str, value: str) -> None:
    if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{name} must be a DNS-1123 label: 1-63 lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, got {value!r}"
        )


def _check_image(name: str, value: str) -> None:
    if not isinstance(value, str) or (not _is_token(value) and not _IMAGE.fullmatch(value)):
        raise ValueError(
            f"{name} must be a pinned image, REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST, got {value!r}"
        )
    if value.endswith(":latest"):
        raise ValueError(f"{name} must be pinned to a version or digest, not :latest, got {value!r}")


def _check_whole(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    allowed = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number {allowed}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value}")
