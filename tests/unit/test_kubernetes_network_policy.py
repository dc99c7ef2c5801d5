"""Who may reach the pods on Kubernetes: NetworkPolicies, the load balancer's gate, the IngressClass."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from ml_inference_cdk.constructs.eks.exposure import IngressOidc, network_policy_controller_object
from ml_inference_cdk.constructs.eks.manifests import EXPOSURES, InferenceManifests, Manifest

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference:1.0.0"
CERTIFICATE_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
VPC_CIDR = "10.0.0.0/16"
KUBERNETES_VERSIONS = sorted({"1.35.0", kubernetes_validate.latest_version()})
OIDC = IngressOidc(
    issuer="https://login.example.com/",
    authorization_endpoint="https://login.example.com/authorize",
    token_endpoint="https://login.example.com/token",
    user_info_endpoint="https://login.example.com/userinfo",
    secret_name="inference-oidc",
)


def build(**options: Any) -> InferenceManifests:
    defaults: dict[str, Any] = {"image_uri": IMAGE, "model_bucket": "models-bucket", "model_key": "m.tar.gz"}
    if options.get("exposure", "ClusterIP") != "ClusterIP":
        defaults["load_balancer_source_cidrs"] = (VPC_CIDR,)
    return InferenceManifests(**(defaults | options))


def named(objects: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def ingress_rules(manifests: InferenceManifests) -> list[dict[str, Any]]:
    policy = named(manifests.objects(), "NetworkPolicy", "ml-inference-ingress")
    rules: list[dict[str, Any]] = policy["spec"]["ingress"]
    return rules


# --- the NetworkPolicies ------------------------------------------------------------------------------------


def test_the_namespace_denies_all_ingress_by_default() -> None:
    deny = named(build().objects(), "NetworkPolicy", "default-deny-ingress")

    assert deny["metadata"]["namespace"] == "ml-inference"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_by_default_no_caller_is_admitted_to_the_inference_pods() -> None:
    policy = named(build().objects(), "NetworkPolicy", "ml-inference-ingress")

    assert policy["spec"]["podSelector"] == {"matchLabels": build().selector_labels}
    assert policy["spec"]["ingress"] == []


def test_the_named_namespaces_are_admitted_on_the_servers_port_only() -> None:
    assert ingress_rules(build(allowed_namespaces=("clients", "batch"))) == [
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "clients"}}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "batch"}}},
            ],
            "ports": [{"protocol": "TCP", "port": "http"}],
        }
    ]


@pytest.mark.parametrize("exposure", ["LoadBalancer", "Ingress"])
def test_a_load_balancer_is_admitted_from_its_subnets(exposure: str) -> None:
    (rule,) = ingress_rules(
        build(exposure=exposure, load_balancer_source_cidrs=("10.0.0.0/24", "10.0.1.0/24"))
    )

    assert rule["from"] == [{"ipBlock": {"cidr": "10.0.0.0/24"}}, {"ipBlock": {"cidr": "10.0.1.0/24"}}]


@pytest.mark.parametrize("exposure", ["LoadBalancer", "Ingress"])
def test_a_load_balancer_without_its_source_cidrs_is_refused(exposure: str) -> None:
    with pytest.raises(ValueError, match=f"exposure='{exposure}' needs load_balancer_source_cidrs"):
        build(exposure=exposure, load_balancer_source_cidrs=())


def test_the_network_policies_can_be_left_out() -> None:
    kinds = [o["kind"] for o in build(network_policy=False).objects()]

    assert "NetworkPolicy" not in kinds


def test_a_namespace_that_is_not_a_dns_label_is_refused() -> None:
    with pytest.raises(ValueError, match=r"allowed_namespaces entries must be namespace names.*'Clients'"):
        build(allowed_namespaces=("Clients",))


def test_the_controller_config_map_turns_on_network_policy_enforcement_in_auto_mode() -> None:
    config = network_policy_controller_object()

    assert config["metadata"] == {"name": "amazon-vpc-cni", "namespace": "kube-system"}
    assert config["data"] == {"enable-network-policy-controller": "true"}


# --- an internet-facing load balancer needs a gate ----------------------------------------------------------


@pytest.mark.parametrize("exposure", ["LoadBalancer", "Ingress"])
def test_internet_facing_without_cidrs_or_authentication_is_refused_naming_the_choices(exposure: str) -> None:
    with pytest.raises(ValueError, match=r"choose at least one of: allowed_cidrs=.*oidc=IngressOidc"):
        build(exposure=exposure, internet_facing=True, allow_public_http=True)


def test_allowed_cidrs_of_the_whole_internet_count_as_no_gate() -> None:
    with pytest.raises(ValueError, match=r"allowed_cidrs=\['0.0.0.0/0'\] and no oidc"):
        build(
            exposure="LoadBalancer",
            internet_facing=True,
            allowed_cidrs=("0.0.0.0/0",),
            allow_public_http=True,
        )


def test_public_plain_http_needs_the_explicit_opt_in() -> None:
    with pytest.raises(ValueError, match="allow_public_http=True"):
        build(exposure="LoadBalancer", internet_facing=True, allowed_cidrs=("203.0.113.0/24",))


def test_an_internet_facing_ingress_admits_only_the_allowed_cidrs_over_https() -> None:
    ingress = build(
        exposure="Ingress",
        internet_facing=True,
        allowed_cidrs=("203.0.113.0/24", "198.51.100.0/24"),
        certificate_arn=CERTIFICATE_ARN,
    ).ingress_object()
    annotations = ingress["metadata"]["annotations"]

    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "203.0.113.0/24,198.51.100.0/24"
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'


def test_oidc_signs_users_in_on_the_ingresss_https_listener() -> None:
    annotations = build(
        exposure="Ingress", internet_facing=True, oidc=OIDC, certificate_arn=CERTIFICATE_ARN
    ).ingress_object()["metadata"]["annotations"]

    assert annotations["alb.ingress.kubernetes.io/auth-type"] == "oidc"
    assert json.loads(annotations["alb.ingress.kubernetes.io/auth-idp-oidc"]) == {
        "issuer": "https://login.example.com/",
        "authorizationEndpoint": "https://login.example.com/authorize",
        "tokenEndpoint": "https://login.example.com/token",
        "userInfoEndpoint": "https://login.example.com/userinfo",
        "secretName": "inference-oidc",
    }
    assert annotations["alb.ingress.kubernetes.io/auth-on-unauthenticated-request"] == "authenticate"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"exposure": "LoadBalancer"}, "oidc needs exposure='Ingress'", id="nlb"),
        pytest.param({"exposure": "Ingress"}, "oidc needs certificate_arn", id="no-certificate"),
        pytest.param(
            {"exposure": "Ingress", "certificate_arn": CERTIFICATE_ARN, "create_ingress_class": True},
            "oidc is not supported by EKS Auto Mode",
            id="auto-mode",
        ),
    ],
)
def test_oidc_where_the_load_balancer_cannot_do_it_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(internet_facing=True, oidc=OIDC, **options)


@pytest.mark.parametrize("option", ["internet_facing", "allowed_cidrs", "create_ingress_class"])
def test_load_balancer_options_without_a_load_balancer_are_refused(option: str) -> None:
    value: object = ("203.0.113.0/24",) if option == "allowed_cidrs" else True
    with pytest.raises(ValueError, match=f"{option} needs exposure='LoadBalancer' or 'Ingress'"):
        build(**{option: value})


def test_an_oidc_endpoint_that_is_not_https_is_refused() -> None:
    with pytest.raises(ValueError, match="token_endpoint must be an https:// URL"):
        IngressOidc(
            issuer="https://login.example.com/",
            authorization_endpoint="https://login.example.com/authorize",
            token_endpoint="http://login.example.com/token",
            user_info_endpoint="https://login.example.com/userinfo",
            secret_name="inference-oidc",
        )


# --- EKS Auto Mode's IngressClass ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auto_mode() -> InferenceManifests:
    return build(exposure="Ingress", create_ingress_class=True, certificate_arn=CERTIFICATE_ARN)


def test_auto_mode_gets_an_ingress_class_with_its_alb_controller(auto_mode: InferenceManifests) -> None:
    ingress_class = named(auto_mode.objects(), "IngressClass", "alb")

    assert ingress_class["spec"] == {
        "controller": "eks.amazonaws.com/alb",
        "parameters": {"apiGroup": "eks.amazonaws.com", "kind": "IngressClassParams", "name": "alb"},
    }
    assert auto_mode.ingress_object()["spec"]["ingressClassName"] == "alb"


def test_the_ingress_class_params_set_scheme_certificate_and_the_one_namespace(
    auto_mode: InferenceManifests,
) -> None:
    params = named(auto_mode.objects(), "IngressClassParams", "alb")

    assert params["apiVersion"] == "eks.amazonaws.com/v1"
    assert params["spec"] == {
        "scheme": "internal",
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ml-inference"}},
        "certificateARNs": [CERTIFICATE_ARN],
    }


def test_the_ingress_class_comes_before_everything_else(auto_mode: InferenceManifests) -> None:
    assert [o["kind"] for o in auto_mode.objects()[:3]] == ["IngressClassParams", "IngressClass", "Namespace"]


def test_no_ingress_class_unless_asked() -> None:
    assert build(exposure="Ingress").ingress_class_objects() == []


# --- Kubernetes accepts them, strictly ----------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("exposure", EXPOSURES)
def test_the_network_policies_and_ingress_class_pass_strict_kubernetes_validation(
    exposure: str, version: str
) -> None:
    options: dict[str, Any] = {"allowed_namespaces": ("clients",)}
    if exposure == "Ingress":
        options |= {"create_ingress_class": True, "certificate_arn": CERTIFICATE_ARN}
    objects = build(exposure=exposure, **options).objects()
    # IngressClassParams is EKS Auto Mode's custom resource: no schema ships with Kubernetes.
    checked = [o for o in objects if o["kind"] != "IngressClassParams"]
    for manifest in checked:
        kubernetes_validate.validate(manifest, version, strict=True)
    assert {o["kind"] for o in checked} >= {"NetworkPolicy"} | (
        {"IngressClass"} if exposure == "Ingress" else set()
    )


def test_strict_validation_would_catch_a_misspelled_network_policy_field() -> None:
    policy = named(build().objects(), "NetworkPolicy", "default-deny-ingress")
    policy["spec"]["policyType"] = ["Ingress"]

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(policy, "1.35.0", strict=True)
