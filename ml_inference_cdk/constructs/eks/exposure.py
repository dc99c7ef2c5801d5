"""Who may reach the inference pods on Kubernetes: NetworkPolicies, the load balancer's gate, IngressClass.

- A default-deny ``NetworkPolicy`` for the namespace, and one that admits the inference pods' port only from
  the namespaces the caller names and, with a load balancer, from the addresses its nodes use (the subnets it
  runs in). Kubelet probes come from the node and are not subject to NetworkPolicies. The cluster must
  enforce them: EKS Auto Mode does once the ``amazon-vpc-cni`` ConfigMap enables the network policy
  controller (``EksStack`` applies it; ``network_policy_controller_object()`` is that ConfigMap).
- An internet-facing load balancer follows the same rule as on ECS: ``allowed_cidrs`` (anything but the
  whole internet) or an authenticate action (``IngressOidc``, Ingress only); plain HTTP on the internet also
  needs ``allow_public_http=True``.
- EKS Auto Mode provisions an ALB for an Ingress only through an IngressClass whose controller is
  ``eks.amazonaws.com/alb``, configured by an ``IngressClassParams``; ``ingress_class_objects()`` makes both.

This module imports nothing from the CDK, like ``manifests.py``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

Manifest = dict[str, Any]

AUTO_MODE_ALB_CONTROLLER: Final = "eks.amazonaws.com/alb"
ANYWHERE: Final = ("0.0.0.0/0", "::/0")
_TOKEN = re.compile(r"\$\{Token\[|\$\{[A-Z_][A-Z0-9_]*\}")

CHOICES: Final = (
    "allowed_cidrs=[...] (the networks that may connect), "
    "oidc=IngressOidc(...) with certificate_arn (exposure='Ingress', AWS Load Balancer Controller), "
    "or internet_facing=False (reach it from inside the VPC, or through an authenticated proxy)"
)


@dataclass(frozen=True, kw_only=True)
class IngressOidc:
    """OpenID Connect sign-in on an Ingress's ALB (the AWS Load Balancer Controller's ``auth-type: oidc``).

    The client id and secret live in a Kubernetes Secret (keys ``clientID`` and ``clientSecret``) in the
    Ingress's namespace. EKS Auto Mode does not support this annotation; use the AWS Load Balancer Controller.
    """

    issuer: str
    """The provider's issuer URL (https)."""
    authorization_endpoint: str
    """Its authorization endpoint (https)."""
    token_endpoint: str
    """Its token endpoint (https)."""
    user_info_endpoint: str
    """Its user info endpoint (https)."""
    secret_name: str
    """The Kubernetes Secret with ``clientID`` and ``clientSecret``."""
    scope: str = "openid"
    """Scopes to request. Default: openid."""

    def __post_init__(self) -> None:
        for name in ("issuer", "authorization_endpoint", "token_endpoint", "user_info_endpoint"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.startswith("https://"):
                raise ValueError(f"{name} must be an https:// URL, got {value!r}")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", self.secret_name or ""):
            raise ValueError(f"secret_name must be a Kubernetes Secret name, got {self.secret_name!r}")

    def annotations(self) -> dict[str, str]:
        prefix = "alb.ingress.kubernetes.io/"
        provider = {
            "issuer": self.issuer,
            "authorizationEndpoint": self.authorization_endpoint,
            "tokenEndpoint": self.token_endpoint,
            "userInfoEndpoint": self.user_info_endpoint,
            "secretName": self.secret_name,
        }
        return {
            f"{prefix}auth-type": "oidc",
            f"{prefix}auth-idp-oidc": json.dumps(provider, separators=(",", ":")),
            f"{prefix}auth-on-unauthenticated-request": "authenticate",
            f"{prefix}auth-scope": self.scope,
        }


def check_cidrs(name: str, values: Sequence[str]) -> None:
    if isinstance(values, str):
        raise ValueError(f"{name} must be a list of CIDRs, got the string {values!r}")
    for value in values:
        if _TOKEN.search(value):
            continue
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError as error:
            raise ValueError(f"{name} entries must be networks like 10.0.0.0/16, got {value!r}") from error


def check_namespaces(values: Sequence[str], label: re.Pattern[str]) -> None:
    if isinstance(values, str):
        raise ValueError(f"allowed_namespaces must be a list of namespace names, got the string {values!r}")
    for value in values:
        if not label.fullmatch(value) or len(value) > 63:
            raise ValueError(
                f"allowed_namespaces entries must be namespace names (DNS-1123 labels), got {value!r}"
            )


def check_exposure(
    *,
    exposure: str,
    internet_facing: bool,
    allowed_cidrs: Sequence[str],
    oidc: IngressOidc | None,
    certificate_arn: str | None,
    allow_public_http: bool,
    load_balancer_source_cidrs: Sequence[str],
    network_policy: bool,
    create_ingress_class: bool,
) -> None:
    """Refuse what lets anyone on the internet call the model, or what the load balancer cannot do.

    Raises:
        ValueError: naming the options and the choices that are allowed.
    """
    check_cidrs("allowed_cidrs", allowed_cidrs)
    check_cidrs("load_balancer_source_cidrs", load_balancer_source_cidrs)
    if exposure == "ClusterIP":
        for name, value in (
            ("internet_facing", internet_facing),
            ("allowed_cidrs", list(allowed_cidrs)),
            ("oidc", oidc),
            ("create_ingress_class", create_ingress_class),
        ):
            if value:
                raise ValueError(
                    f"{name} needs exposure='LoadBalancer' or 'Ingress', got exposure='ClusterIP'"
                )
        return
    if oidc is not None:
        if exposure != "Ingress":
            raise ValueError(f"oidc needs exposure='Ingress' (an ALB), got exposure={exposure!r}")
        if certificate_arn is None:
            raise ValueError("oidc needs certificate_arn: the ALB authenticates on HTTPS listeners only")
        if create_ingress_class:
            raise ValueError(
                "oidc is not supported by EKS Auto Mode's load balancing (create_ingress_class=True); use "
                "allowed_cidrs, or the AWS Load Balancer Controller with its own IngressClass"
            )
    if create_ingress_class and exposure != "Ingress":
        raise ValueError(f"create_ingress_class needs exposure='Ingress', got exposure={exposure!r}")
    if network_policy and not load_balancer_source_cidrs:
        raise ValueError(
            f"exposure={exposure!r} needs load_balancer_source_cidrs: the NetworkPolicy admits the load "
            "balancer by the addresses its nodes use, i.e. the CIDRs of the subnets it runs in (or the VPC's "
            "CIDR), e.g. ['10.0.0.0/16']"
        )
    if not internet_facing:
        return
    narrowed = bool(allowed_cidrs) and not any(cidr in ANYWHERE for cidr in allowed_cidrs)
    if not narrowed and oidc is None:
        given = f"allowed_cidrs={list(allowed_cidrs)}" if allowed_cidrs else "no allowed_cidrs"
        raise ValueError(
            f"internet_facing=True with {given} and no oidc lets anyone on the internet call the model; "
            f"choose at least one of: {CHOICES}"
        )
    if certificate_arn is None and not allow_public_http:
        raise ValueError(
            "internet_facing=True without certificate_arn serves plain HTTP on the internet (requests and "
            "predictions readable on the way); pass certificate_arn (exposure='Ingress'), or "
            "allow_public_http=True to accept that"
        )


def network_policy_objects(
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    selector_labels: dict[str, str],
    port_name: str,
    allowed_namespaces: Sequence[str],
    load_balancer_source_cidrs: Sequence[str],
) -> list[Manifest]:
    """Deny all ingress in the namespace; admit the server's port from the named namespaces and the LB."""
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-ingress", "namespace": namespace, "labels": labels},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    peers: list[dict[str, Any]] = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": allowed}}}
        for allowed in allowed_namespaces
    ]
    peers += [{"ipBlock": {"cidr": cidr}} for cidr in load_balancer_source_cidrs]
    allow_spec: dict[str, Any] = {"podSelector": {"matchLabels": selector_labels}, "policyTypes": ["Ingress"]}
    allow_spec["ingress"] = (
        [{"from": peers, "ports": [{"protocol": "TCP", "port": port_name}]}] if peers else []
    )
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{name}-ingress", "namespace": namespace, "labels": labels},
        "spec": allow_spec,
    }
    return [deny, allow]


def ingress_class_objects(
    *, name: str, namespace: str, labels: dict[str, str], internet_facing: bool, certificate_arn: str | None
) -> list[Manifest]:
    """EKS Auto Mode's IngressClassParams and IngressClass (cluster-scoped), usable from ``namespace``."""
    params_spec: dict[str, Any] = {
        "scheme": "internet-facing" if internet_facing else "internal",
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
    }
    if certificate_arn is not None:
        params_spec["certificateARNs"] = [certificate_arn]
    params = {
        "apiVersion": "eks.amazonaws.com/v1",
        "kind": "IngressClassParams",
        "metadata": {"name": name, "labels": labels},
        "spec": params_spec,
    }
    ingress_class = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "controller": AUTO_MODE_ALB_CONTROLLER,
            "parameters": {"apiGroup": "eks.amazonaws.com", "kind": "IngressClassParams", "name": name},
        },
    }
    return [params, ingress_class]


def network_policy_controller_object() -> Manifest:
    """The ConfigMap that makes EKS Auto Mode enforce NetworkPolicies (cluster-wide, in kube-system)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "amazon-vpc-cni", "namespace": "kube-system"},
        "data": {"enable-network-policy-controller": "true"},
    }
