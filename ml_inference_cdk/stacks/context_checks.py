"""The checks of the context keys: the constructs' own checks, run on the values the user typed.

``Settings.from_context`` runs them when the app starts. A construct's message names its parameter
(``instance_type``); run here, it starts with the context key and the value instead
(``context instanceType=m5.large: instance_type must be ...``), which is what the user can find and fix.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ml_inference_cdk.constructs.ecs import validation as fargate_check
from ml_inference_cdk.constructs.eks.manifests import InferenceManifests
from ml_inference_cdk.constructs.sagemaker.retraining import split_s3_prefix
from ml_inference_cdk.constructs.sagemaker.variants import validate_instance_count, validate_instance_type

if TYPE_CHECKING:
    from ml_inference_cdk.stacks.settings import Settings

_ECS_COUNTS = (
    ("ecsDesiredCount", "desired_count", 0),
    ("ecsMinCapacity", "min_capacity", 0),
    ("ecsMaxCapacity", "max_capacity", 1),
)
"""Each ECS count key, the FargateInferenceService parameter it sets, and that parameter's minimum."""
_EKS_PARAMETERS = {"eksReplicas": "replicas", "eksMaxReplicas": "max_replicas", "eksNamespace": "namespace"}
_INTEGER_KEYS = frozenset({*(key for key, _, _ in _ECS_COUNTS), "eksReplicas", "eksMaxReplicas"})
_CERTIFICATE_ARN = re.compile(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+")


def check(settings: Settings) -> None:
    """Every key's value, by the checks of the construct it reaches.

    ``imageDirectory`` and ``modelArtifact`` are checked when a stack asks for the image and the model
    (``Settings.image()`` / ``.model()``, named the same way): the local model need not exist when
    ``modelS3Uri`` is set.

    Raises:
        ValueError: ``context KEY=VALUE[, KEY=VALUE]: <the construct's message>``.
    """
    _check_sagemaker(settings)
    _check_ecs(settings)
    _check_eks(settings)


@contextmanager
def naming(values: Mapping[str, Any]) -> Iterator[None]:
    """A library check run on context values: its ValueError starts with the keys and values it checked."""
    try:
        yield
    except ValueError as error:
        keys = ", ".join(f"{key}={_shown(value)}" for key, value in values.items())
        raise ValueError(f"context {keys}: {error}") from error


def _shown(value: Any) -> str:
    """A value as it is written after ``-c key=``."""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value)


def _given(settings: Settings, *keys: str) -> dict[str, Any]:
    """The target-specific keys among ``keys`` that the context sets, parsed."""
    return {
        key: settings.integer(key, 0) if key in _INTEGER_KEYS else settings.text(key)
        for key in keys
        if settings.text(key) is not None
    }


def _check_sagemaker(settings: Settings) -> None:
    """The keys SageMakerStack reads, by SageMakerEndpoint's checks."""
    if settings.image_uri:
        settings.image()
    if settings.model_s3_uri:
        settings.model()
    with naming({"instanceType": settings.instance_type}):
        validate_instance_type(settings.instance_type)
    with naming({"instanceCount": settings.instance_count}):
        validate_instance_count(settings.instance_count)
    for key, uri in (
        ("trainingDataS3Uri", settings.training_data_s3_uri),
        ("trainingOutputS3Uri", settings.training_output_s3_uri),
    ):
        if uri is not None:
            with naming({key: uri}):
                split_s3_prefix(uri)
    if settings.training_output_s3_uri and not settings.training_data_s3_uri:
        raise ValueError(
            f"context trainingOutputS3Uri={settings.training_output_s3_uri}: needs trainingDataS3Uri "
            "(the retraining workflow is added only with training data)"
        )


def _check_ecs(settings: Settings) -> None:
    """The ``ecs*`` keys, by FargateInferenceService's checks. Its minimum capacity defaults to the desired
    count, so ``ecsMaxCapacity`` is compared with ``ecsMinCapacity``, or else ``ecsDesiredCount``."""
    given = _given(
        settings,
        *(key for key, _, _ in _ECS_COUNTS),
        "ecsCertificateArn",
        "ecsDomainName",
        "ecsHostedZoneName",
    )
    settings.boolean("ecsRestrictDefaultSecurityGroup", True)
    for key, parameter, minimum in _ECS_COUNTS:
        if key in given:
            with naming({key: given[key]}):
                fargate_check.at_least(parameter, given[key], minimum)
    lower = next((key for key in ("ecsMinCapacity", "ecsDesiredCount") if key in given), None)
    if lower is not None and "ecsMaxCapacity" in given:
        with naming({lower: given[lower], "ecsMaxCapacity": given["ecsMaxCapacity"]}):
            fargate_check.capacity(given[lower], given["ecsMaxCapacity"])
    if "ecsCertificateArn" in given:
        with naming({"ecsCertificateArn": given["ecsCertificateArn"]}):
            _certificate_arn(given["ecsCertificateArn"])
    dns: dict[str, Any] = {key: given[key] for key in ("ecsDomainName", "ecsHostedZoneName") if key in given}
    if dns:
        with naming(dns):
            fargate_check.tls(
                domain_name=dns.get("ecsDomainName"), has_hosted_zone="ecsHostedZoneName" in dns
            )
            _domain_in_zone(dns["ecsDomainName"], dns["ecsHostedZoneName"])


def _check_eks(settings: Settings) -> None:
    """The ``eks*`` keys, by the checks of the manifests EksStack applies (whose defaults it shares)."""
    given = _given(settings, *_EKS_PARAMETERS)
    # Each check names the keys it read: the last of each group, with the one it is compared to.
    for keys in (("eksNamespace",), ("eksReplicas",), ("eksReplicas", "eksMaxReplicas")):
        if keys[-1] not in given:
            continue
        checked = {key: given[key] for key in keys if key in given}
        with naming(checked):
            InferenceManifests(
                image_uri="${IMAGE_URI}",
                model_bucket="${MODEL_S3_BUCKET}",
                model_key="${MODEL_S3_KEY}",
                **{_EKS_PARAMETERS[key]: value for key, value in checked.items()},
            )
    cidrs = settings.text("eksPublicEndpointCidrs")
    if cidrs is not None:
        with naming({"eksPublicEndpointCidrs": cidrs}):
            _networks(cidrs)


def _certificate_arn(arn: str) -> None:
    if not _CERTIFICATE_ARN.fullmatch(arn):
        raise ValueError(
            "certificate must be an ACM certificate ARN, arn:aws:acm:REGION:ACCOUNT:certificate/ID, "
            f"got {arn!r}"
        )


def _domain_in_zone(domain_name: str, zone_name: str) -> None:
    domain, zone = domain_name.lower().rstrip("."), zone_name.lower().rstrip(".")
    if domain != zone and not domain.endswith(f".{zone}"):
        raise ValueError(
            f"domain_name must be in hosted_zone {zone_name!r} (the zone holds its alias record), "
            f"got {domain_name!r}"
        )


def public_endpoint_networks(cidrs: list[str]) -> list[str]:
    """EksStack's public endpoint networks, normalized; none may be the whole internet.

    Raises:
        ValueError: a value that is not a network, or one of prefix length 0.
    """
    networks = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as error:
            raise ValueError(
                f"public_endpoint_cidrs must be networks like 203.0.113.0/24, got {cidr!r}"
            ) from error
        if network.prefixlen == 0:
            raise ValueError(
                f"public_endpoint_cidrs must not include the whole internet ({cidr}); leave them out for a "
                "private endpoint"
            )
        networks.append(str(network))
    return networks


def _networks(text: str) -> None:
    public_endpoint_networks([part.strip() for part in text.split(",") if part.strip()])
