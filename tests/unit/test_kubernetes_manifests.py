"""The Kubernetes objects: what they say, that Kubernetes accepts them strictly, that pods are restricted."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import kubernetes_validate
import pytest

from ml_inference_cdk.constructs.contract import (
    CONTAINER_PORT,
    ENV_BIND_TO_PORT,
    ENV_MODEL_DIR,
    ENV_WORKERS,
    MODEL_DIR,
    container_environment,
)
from ml_inference_cdk.constructs.eks.manifests import (
    EXPOSURES,
    MODEL_LOADER_COMMAND,
    InferenceManifests,
    Manifest,
    Probes,
    parse_quantity,
    split_s3_uri,
)

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference:1.0.0"
TARGET_KUBERNETES = "1.35.0"
"""The version EksStack creates (KubernetesVersion.V1_35, kubectl layer v35)."""
KUBERNETES_VERSIONS = sorted({TARGET_KUBERNETES, kubernetes_validate.latest_version()})


VPC_CIDR = "10.0.0.0/16"


def build(**options: Any) -> InferenceManifests:
    defaults: dict[str, Any] = {
        "image_uri": IMAGE,
        "model_bucket": "models-bucket",
        "model_key": "iris/model.tar.gz",
        "aws_region": "eu-west-1",
    }
    if options.get("exposure", "ClusterIP") != "ClusterIP":
        defaults["load_balancer_source_cidrs"] = (VPC_CIDR,)
    return InferenceManifests(**(defaults | options))


def of_kind(objects: list[Manifest], kind: str) -> Manifest:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def pod_spec(manifests: InferenceManifests) -> dict[str, Any]:
    spec: dict[str, Any] = manifests.deployment_object()["spec"]["template"]["spec"]
    return spec


def server(manifests: InferenceManifests) -> dict[str, Any]:
    (container,) = pod_spec(manifests)["containers"]
    return dict(container)


def restricted_violations(objects: list[Manifest]) -> list[str]:
    """What the Kubernetes 'restricted' Pod Security Standard forbids, found in the pods of ``objects``."""
    problems: list[str] = []
    for manifest in objects:
        if manifest["kind"] != "Deployment":
            continue
        pod = manifest["spec"]["template"]["spec"]
        pod_context = pod.get("securityContext", {})
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(field):
                problems.append(f"pod sets {field}")
        for volume in pod.get("volumes", []):
            allowed = {"configMap", "emptyDir", "projected", "secret", "persistentVolumeClaim", "ephemeral"}
            if not set(volume) - {"name"} <= allowed:
                problems.append(
                    f"volume {volume['name']} is not an allowed type: {sorted(set(volume) - {'name'})}"
                )
        for container in pod.get("initContainers", []) + pod["containers"]:
            name = container["name"]
            context = container.get("securityContext", {})

            def effective(
                key: str, context: dict[str, Any] = context, pod_context: dict[str, Any] = pod_context
            ) -> Any:
                return context.get(key, pod_context.get(key))

            if effective("runAsNonRoot") is not True:
                problems.append(f"{name}: runAsNonRoot is not true")
            if effective("runAsUser") == 0:
                problems.append(f"{name}: runs as uid 0")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"{name}: privileged")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: does not drop ALL capabilities")
            if context.get("capabilities", {}).get("add"):
                problems.append(f"{name}: adds capabilities")
            if (effective("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{name}: seccompProfile is not RuntimeDefault")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: root filesystem is writable")
            if any(port.get("hostPort") for port in container.get("ports", [])):
                problems.append(f"{name}: uses a hostPort")
    return problems


@pytest.fixture(scope="module")
def manifests() -> InferenceManifests:
    return build()


@pytest.fixture(scope="module")
def objects(manifests: InferenceManifests) -> list[Manifest]:
    return manifests.objects()


# --- What the objects say -------------------------------------------------------------------------


def test_objects_come_in_the_order_kubectl_should_apply_them(objects: list[Manifest]) -> None:
    assert [o["kind"] for o in objects] == [
        "Namespace",
        "ServiceAccount",
        "NetworkPolicy",
        "NetworkPolicy",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ]


def test_every_object_lives_in_the_ml_inference_namespace(objects: list[Manifest]) -> None:
    assert {o["metadata"].get("namespace") for o in objects[1:]} == {"ml-inference"}


def test_deployment_is_ml_inference_with_three_replicas(manifests: InferenceManifests) -> None:
    deployment = manifests.deployment_object()
    assert deployment["metadata"]["name"] == "ml-inference"
    assert deployment["spec"]["replicas"] == 3


def test_rollouts_never_drop_below_the_wanted_replicas(manifests: InferenceManifests) -> None:
    strategy = manifests.deployment_object()["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_server_container_is_inference_on_port_8080(manifests: InferenceManifests) -> None:
    container = server(manifests)
    assert container["name"] == "inference"
    assert container["ports"] == [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}]
    assert CONTAINER_PORT == 8080


def test_server_gets_the_sagemaker_environment_contract(manifests: InferenceManifests) -> None:
    env = {e["name"]: e["value"] for e in server(manifests)["env"]}
    assert env == {ENV_BIND_TO_PORT: "8080", ENV_MODEL_DIR: MODEL_DIR}


def test_container_environment_is_passed_to_the_server() -> None:
    env = {e["name"]: e["value"] for e in server(build(environment=container_environment(workers=2)))["env"]}
    assert env[ENV_WORKERS] == "2"
    assert env[ENV_MODEL_DIR] == MODEL_DIR


def test_all_probes_ask_ping_on_the_server_port(manifests: InferenceManifests) -> None:
    container = server(manifests)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ping", "port": "http"}


def test_startup_probe_allows_five_minutes_to_load_the_model(manifests: InferenceManifests) -> None:
    startup = server(manifests)["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 300


def test_liveness_is_more_patient_than_readiness(manifests: InferenceManifests) -> None:
    container = server(manifests)
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 120
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > (
        readiness["periodSeconds"] * readiness["failureThreshold"]
    )
    assert liveness["timeoutSeconds"] > readiness["timeoutSeconds"]


def test_probe_timeouts_are_shorter_than_their_periods(manifests: InferenceManifests) -> None:
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        settings = server(manifests)[probe]
        assert settings["timeoutSeconds"] < settings["periodSeconds"]


def test_resources_default_to_one_cpu_and_2gi_requested_and_limited(manifests: InferenceManifests) -> None:
    assert server(manifests)["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }


def test_limits_can_exceed_requests() -> None:
    resources = server(build(cpu="500m", cpu_limit="2", memory="1Gi", memory_limit="1536Mi"))["resources"]
    assert resources == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "1536Mi"},
    }


def test_model_loader_runs_the_shared_loader_from_the_inference_image(manifests: InferenceManifests) -> None:
    (loader,) = pod_spec(manifests)["initContainers"]
    assert loader["name"] == "model-loader"
    assert loader["image"] == IMAGE
    assert loader["command"] == MODEL_LOADER_COMMAND
    assert {e["name"]: e["value"] for e in loader["env"]} == {
        "MODEL_S3_BUCKET": "models-bucket",
        "MODEL_S3_KEY": "iris/model.tar.gz",
        "MODEL_DIR": MODEL_DIR,
        "MODEL_S3_REGION": "eu-west-1",
    }


def test_model_folder_is_written_by_the_loader_and_read_only_for_the_server(
    manifests: InferenceManifests,
) -> None:
    (loader,) = pod_spec(manifests)["initContainers"]
    assert loader["volumeMounts"] == [{"name": "model", "mountPath": "/opt/ml"}]
    assert {"name": "model", "mountPath": MODEL_DIR, "subPath": "model", "readOnly": True} in server(
        manifests
    )["volumeMounts"]


def test_tmp_is_a_writable_empty_dir_on_a_read_only_root(manifests: InferenceManifests) -> None:
    assert {"name": "tmp", "mountPath": "/tmp"} in server(manifests)["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pod_spec(manifests)["volumes"]


def test_pods_run_as_the_service_account(manifests: InferenceManifests) -> None:
    assert pod_spec(manifests)["serviceAccountName"] == "ml-inference"
    assert manifests.service_account_object()["metadata"] == {
        "name": "ml-inference",
        "namespace": "ml-inference",
        "labels": manifests.labels,
    }


def test_service_account_can_carry_annotations() -> None:
    annotations = {"example.com/owner": "team-ml"}
    assert build(service_account_annotations=annotations).service_account_object()["metadata"][
        "annotations"
    ] == (annotations)


def test_pods_spread_across_zones_and_hosts(manifests: InferenceManifests) -> None:
    spread = {c["topologyKey"]: c for c in pod_spec(manifests)["topologySpreadConstraints"]}
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "ScheduleAnyway"
    for constraint in spread.values():
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"] == {"matchLabels": manifests.selector_labels}


def test_terminating_pods_keep_serving_briefly_for_the_load_balancer(manifests: InferenceManifests) -> None:
    assert server(manifests)["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert pod_spec(manifests)["terminationGracePeriodSeconds"] == 30
    assert "lifecycle" not in server(build(pre_stop_sleep_seconds=0))


def test_namespace_enforces_the_restricted_pod_security_standard(manifests: InferenceManifests) -> None:
    labels = manifests.namespace_object()["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_namespace_can_be_left_out_for_an_existing_one() -> None:
    assert "Namespace" not in [o["kind"] for o in build(create_namespace=False).objects()]


def test_autoscaler_scales_on_cpu_from_replicas_to_three_times_as_many(manifests: InferenceManifests) -> None:
    hpa = manifests.autoscaler_object()
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ml-inference",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]


def test_autoscaler_maximum_is_configurable() -> None:
    assert build(replicas=2, max_replicas=5).autoscaler_object()["spec"]["maxReplicas"] == 5


def test_disruption_budget_lets_one_pod_go_at_a_time(manifests: InferenceManifests) -> None:
    pdb = manifests.disruption_budget_object()
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == {"matchLabels": manifests.selector_labels}


def test_service_is_cluster_ip_on_port_80_by_default(manifests: InferenceManifests) -> None:
    service = manifests.service_object()
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0] | {"port": 80, "targetPort": "http"} == service["spec"]["ports"][0]
    assert "annotations" not in service["metadata"]
    assert manifests.service_url == "http://ml-inference.ml-inference.svc.cluster.local:80"


def test_load_balancer_service_is_an_internal_nlb_checking_ping() -> None:
    service = build(exposure="LoadBalancer").service_object()
    annotations = service["metadata"]["annotations"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-healthcheck-path"] == "/ping"


def test_internet_facing_load_balancer_is_opt_in_and_admits_only_the_allowed_cidrs() -> None:
    service = build(
        exposure="LoadBalancer",
        internet_facing=True,
        allowed_cidrs=("203.0.113.0/24",),
        allow_public_http=True,
    ).service_object()
    annotations = service["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]


def test_ingress_is_an_alb_with_ip_targets_checking_ping() -> None:
    ingress = of_kind(build(exposure="Ingress").objects(), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/ping"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "ml-inference", "port": {"number": 80}}}


def test_ingress_with_a_certificate_listens_on_https_only() -> None:
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    annotations = of_kind(build(exposure="Ingress", certificate_arn=arn).objects(), "Ingress")["metadata"][
        "annotations"
    ]
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == arn


def test_ingress_keeps_the_service_cluster_ip() -> None:
    assert build(exposure="Ingress").service_object()["spec"]["type"] == "ClusterIP"


def test_cdk_tokens_and_envsubst_placeholders_pass_unchecked() -> None:
    manifests = build(
        image_uri="${IMAGE_URI}", model_bucket="${Token[TOKEN.12]}", model_key="${MODEL_S3_KEY}"
    )
    assert server(manifests)["image"] == "${IMAGE_URI}"


def test_s3_uris_split_into_bucket_and_key() -> None:
    assert split_s3_uri("s3://my-bucket/a/b/model.tar.gz") == ("my-bucket", "a/b/model.tar.gz")
    assert split_s3_uri("${MODEL_S3_URI}") == ("${MODEL_S3_BUCKET}", "${MODEL_S3_KEY}")
    assert build().model_s3_uri == "s3://models-bucket/iris/model.tar.gz"


def test_quantities_are_compared_by_value() -> None:
    assert parse_quantity("cpu", "500m") < parse_quantity("cpu", "1")
    assert parse_quantity("memory", "2Gi") == parse_quantity("memory", "2048Mi")
    assert parse_quantity("memory", "1e3") == parse_quantity("memory", "1k")


# --- Kubernetes accepts them, strictly ------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("exposure", EXPOSURES)
def test_every_object_passes_strict_kubernetes_validation(exposure: str, version: str) -> None:
    for manifest in build(exposure=exposure, certificate_arn=None).objects():
        kubernetes_validate.validate(manifest, version, strict=True)


def test_strict_validation_would_catch_a_misspelled_field(manifests: InferenceManifests) -> None:
    deployment = manifests.deployment_object()
    deployment["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, TARGET_KUBERNETES, strict=True)


# --- The restricted Pod Security Standard ---------------------------------------------------------


@pytest.mark.parametrize("exposure", EXPOSURES)
def test_every_container_meets_the_restricted_pod_security_standard(exposure: str) -> None:
    objects = build(exposure=exposure).objects()
    assert restricted_violations(objects) == []
    assert len(pod_spec(build())["initContainers"]) == 1  # the init container is checked too


def test_the_restricted_check_would_catch_a_privileged_init_container(manifests: InferenceManifests) -> None:
    deployment = manifests.deployment_object()
    context = deployment["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]
    context |= {"privileged": True, "allowPrivilegeEscalation": True, "capabilities": {"add": ["NET_ADMIN"]}}
    deployment["spec"]["template"]["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    assert restricted_violations([deployment]) == [
        "volume host is not an allowed type: ['hostPath']",
        "model-loader: allowPrivilegeEscalation is not false",
        "model-loader: privileged",
        "model-loader: does not drop ALL capabilities",
        "model-loader: adds capabilities",
    ]


# --- Validation: a ValueError naming the value and what is allowed --------------------------------

INVALID = [
    pytest.param({"replicas": 0}, "replicas must be >= 1, got 0", id="replicas below one"),
    pytest.param(
        {"replicas": 4, "max_replicas": 3}, r"max_replicas must be >= replicas \(4\)", id="max below min"
    ),
    pytest.param({"max_replicas": 0}, "max_replicas must be >= 1", id="max of zero"),
    pytest.param({"target_cpu_utilization": 0}, "target_cpu_utilization must be 1-100", id="cpu target zero"),
    pytest.param({"container_port": 0}, "container_port must be 1-65535, got 0", id="container port zero"),
    pytest.param(
        {"container_port": 70000}, "container_port must be 1-65535, got 70000", id="container port high"
    ),
    pytest.param({"service_port": 65536}, "service_port must be 1-65535", id="service port high"),
    pytest.param(
        {"name": "ML_Inference"}, "name must be a DNS-1123 label.*'ML_Inference'", id="name uppercase"
    ),
    pytest.param({"namespace": "-ns"}, "namespace must be a DNS-1123 label", id="namespace leading dash"),
    pytest.param({"name": "a" * 64}, "name must be a DNS-1123 label: 1-63", id="name too long"),
    pytest.param(
        {"service_account_name": "sa.x"}, "service_account_name must be a DNS-1123", id="sa with dot"
    ),
    pytest.param({"cpu": "one"}, "cpu must be a Kubernetes quantity.*'one'", id="cpu unparseable"),
    pytest.param({"memory": "2GB"}, "memory must be a Kubernetes quantity.*'2GB'", id="memory wrong unit"),
    pytest.param({"memory": "0"}, "memory must be greater than zero", id="memory zero"),
    pytest.param(
        {"cpu": "2", "cpu_limit": "1"}, r"cpu_limit must be at least the cpu request \(2\)", id="cpu lim"
    ),
    pytest.param(
        {"memory_limit": "1Gi"}, r"memory_limit must be at least the memory request \(2Gi\)", id="mem lim"
    ),
    pytest.param(
        {"model_volume_size": "lots"}, "model_volume_size must be a Kubernetes quantity", id="volume size"
    ),
    pytest.param({"image_uri": "not an image"}, "image_uri must be a pinned image", id="image malformed"),
    pytest.param(
        {"image_uri": "repo/image:latest"}, "image_uri must be pinned.*not :latest", id="image latest"
    ),
    pytest.param(
        {"model_bucket": "Bad_Bucket"}, "model_bucket must be an S3 bucket name", id="bucket invalid"
    ),
    pytest.param({"model_key": "/abs.tar.gz"}, "model_key must be a non-empty S3 key", id="key absolute"),
    pytest.param({"aws_region": "Europe"}, "aws_region must be an AWS Region name", id="region invalid"),
    pytest.param({"run_as_user": 0}, "run_as_user must be >= 1, got 0", id="run as root"),
    pytest.param(
        {"exposure": "NodePort"}, "exposure must be one of ClusterIP, LoadBalancer, Ingress", id="exposure"
    ),
    pytest.param(
        {"ingress_class_name": "ALB"}, "ingress_class_name must be a DNS subdomain", id="ingress class"
    ),
    pytest.param(
        {"certificate_arn": "arn:aws:acm:eu-west-1:1:certificate/x"},
        "certificate_arn needs exposure='Ingress'",
        id="certificate without ingress",
    ),
    pytest.param(
        {"exposure": "Ingress", "certificate_arn": "my-cert"},
        "certificate_arn must be an ACM certificate ARN",
        id="certificate not an arn",
    ),
    pytest.param(
        {"pre_stop_sleep_seconds": 30}, "pre_stop_sleep_seconds must be shorter than", id="pre stop long"
    ),
    pytest.param({"termination_grace_period_seconds": 0}, "termination_grace_period_seconds", id="no grace"),
    pytest.param({"environment": {"BAD-NAME": "1"}}, "environment names must be", id="environment name"),
    pytest.param({"replicas": True}, "replicas must be a whole number", id="replicas boolean"),
]


@pytest.mark.parametrize(("options", "message"), INVALID)
def test_invalid_option_raises_value_error_naming_it(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**options)


INVALID_PROBES = [
    pytest.param({"period_seconds": 0}, "period_seconds must be a positive whole number", id="period zero"),
    pytest.param({"timeout_seconds": -1}, "timeout_seconds must be a positive", id="timeout negative"),
    pytest.param(
        {"timeout_seconds": 10}, r"timeout_seconds must be shorter than period_seconds \(10\)", id="slow"
    ),
    pytest.param(
        {"liveness_timeout_seconds": 20},
        r"liveness_timeout_seconds must be shorter than liveness_period_seconds \(20\)",
        id="liveness timeout equals period",
    ),
    pytest.param(
        {"startup_timeout_seconds": 5}, "startup_timeout_seconds must be 10-3600", id="startup short"
    ),
    pytest.param(
        {"startup_timeout_seconds": 7200}, "startup_timeout_seconds must be 10-3600", id="startup long"
    ),
    pytest.param(
        {"liveness_failure_threshold": 0}, "liveness_failure_threshold must be", id="no liveness failures"
    ),
]


@pytest.mark.parametrize(("options", "message"), INVALID_PROBES)
def test_invalid_probe_timing_raises_value_error_naming_it(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Probes(**options)


def test_probe_timings_size_the_startup_budget() -> None:
    probes = Probes(startup_timeout_seconds=605, period_seconds=10)
    assert server(build(probes=probes))["startupProbe"]["failureThreshold"] == 61


def test_malformed_s3_uri_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"model_s3_uri must look like s3://BUCKET/KEY"):
        split_s3_uri("https://bucket/model.tar.gz")


def test_an_s3_uri_may_name_any_key_as_cdk_file_assets_do() -> None:
    assert split_s3_uri("s3://cdk-hnb659fds-assets-1-us-east-1/87f9.gz") == (
        "cdk-hnb659fds-assets-1-us-east-1",
        "87f9.gz",
    )


# --- The model loader, run as the manifest runs it ------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint(demo_model_artifact: Path) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    try:
        _, port = moto.get_host_and_port()
        endpoint = f"http://localhost:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="models-bucket")
        s3.upload_file(str(demo_model_artifact), "models-bucket", "iris/model.tar.gz")
        yield endpoint
    finally:
        moto.stop()


def run_loader(
    manifests: InferenceManifests,
    endpoint: str,
    model_volume: Path,
    *,
    python: str = sys.executable,
    **run: Any,
) -> Path:
    """Run the init container's command and environment as written, with MODEL_DIR inside ``model_volume``."""
    (loader,) = pod_spec(manifests)["initContainers"]
    env = {e["name"]: e["value"] for e in loader["env"]}
    model_dir = model_volume / Path(env["MODEL_DIR"]).name
    env |= {
        "MODEL_DIR": str(model_dir),
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PATH": os.environ["PATH"],
    }
    assert loader["command"][0] == "python3"
    command = [python, *loader["command"][1:]]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False, **run
    )
    assert completed.returncode == 0, completed.stderr
    return model_dir


def test_the_init_container_command_unpacks_the_model_from_s3(s3_endpoint: str, tmp_path: Path) -> None:
    model_dir = run_loader(build(aws_region="us-east-1"), s3_endpoint, tmp_path)
    assert sorted(p.name for p in model_dir.iterdir()) == ["model-metadata.json", "model.joblib"]


def interpreter_for(uid: int) -> str | None:
    """A python3 the unprivileged ``uid`` may run (the venv's may live under root's home)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            subprocess.run([candidate, "-c", "pass"], user=uid, check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.CalledProcessError):
            continue
        return candidate
    return None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to switch users")
def test_the_init_container_works_as_an_unprivileged_user_in_a_root_owned_empty_dir(s3_endpoint: str) -> None:
    python = interpreter_for(10001)
    if python is None:
        pytest.skip("no python3 that uid 10001 may run")
    # An emptyDir is a root-owned folder with mode 0777; the pod runs as uid 10001.
    with tempfile.TemporaryDirectory() as volume:
        Path(volume).chmod(0o777)
        model_dir = run_loader(
            build(aws_region="us-east-1"), s3_endpoint, Path(volume), python=python, user=10001, group=10001
        )
        assert model_dir.stat().st_uid == 10001
        assert (model_dir / "model.joblib").stat().st_mode & 0o777 == 0o644
