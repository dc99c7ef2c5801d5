"""Every limit the Kubernetes manifests check, pinned on both edges (see boundaries.py).

InferenceManifests and Probes are plain dataclasses: each case builds one and either gets the objects or a
ValueError naming the option. EksInferenceDeployment and ml-inference-manifests run the very same checks.
"""

from __future__ import annotations

from typing import Any

import pytest

from ml_inference_cdk.constructs.eks.manifests import InferenceManifests, Probes
from tests.unit.boundaries import case, check, edges, lengths

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference"


def manifests(**options: Any) -> InferenceManifests:
    defaults: dict[str, Any] = {
        "image_uri": f"{REGISTRY}:1.0.0",
        "model_bucket": "models-bucket",
        "model_key": "iris/model.tar.gz",
    }
    return InferenceManifests(**(defaults | options))


def label(length: int) -> str:
    return "a" * length


# --- probes -----------------------------------------------------------------------------------------------

POSITIVE_PROBE_OPTIONS = [
    "timeout_seconds",
    "readiness_failure_threshold",
    "liveness_timeout_seconds",
    "liveness_failure_threshold",
]


@pytest.mark.parametrize("option", POSITIVE_PROBE_OPTIONS)
@pytest.mark.parametrize(("value", "accepted"), edges(1))
def test_probe_timeouts_and_thresholds_are_at_least_1(option: str, value: int, accepted: bool) -> None:
    check(
        accepted,
        rf"{option} must be a positive whole number of seconds or probes, got {value}",
        lambda: Probes(**{option: value}),
    )


@pytest.mark.parametrize(("value", "accepted"), edges(maximum=9, unit=" s, against a period of 10 s"))
def test_a_ping_times_out_before_the_next_period(value: int, accepted: bool) -> None:
    check(
        accepted,
        rf"timeout_seconds must be shorter than period_seconds \(10\), got {value}",
        lambda: Probes(period_seconds=10, timeout_seconds=value),
    )


@pytest.mark.parametrize(("value", "accepted"), edges(maximum=19, unit=" s, against a period of 20 s"))
def test_a_liveness_ping_times_out_before_the_next_period(value: int, accepted: bool) -> None:
    check(
        accepted,
        rf"liveness_timeout_seconds must be shorter than liveness_period_seconds \(20\), got {value}",
        lambda: Probes(liveness_period_seconds=20, liveness_timeout_seconds=value),
    )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        case(0, False, "0 s, not a positive number"),
        case(1, False, "1 s, no longer than a 1 s ping timeout"),
        case(2, True, "2 s, just longer than a 1 s ping timeout"),
    ],
)
def test_the_probe_period_is_longer_than_its_ping_timeout(value: int, accepted: bool) -> None:
    check(
        accepted,
        "period_seconds",
        lambda: Probes(period_seconds=value, timeout_seconds=1, startup_timeout_seconds=60),
    )


@pytest.mark.parametrize(("value", "accepted"), edges(10, 3600, unit=" s, with a period of 10 s"))
def test_the_startup_budget_is_one_period_to_an_hour(value: int, accepted: bool) -> None:
    check(
        accepted,
        rf"startup_timeout_seconds must be 10-3600 .*got {value}",
        lambda: Probes(period_seconds=10, startup_timeout_seconds=value),
    )


# --- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["name", "namespace"])
@pytest.mark.parametrize(("value", "accepted"), lengths(1, 63, label))
def test_names_are_dns_labels_of_1_to_63_characters(option: str, value: str, accepted: bool) -> None:
    check(accepted, rf"{option} must be a DNS-1123 label", lambda: manifests(**{option: value}))


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        case("", True, "empty, which means the Deployment's name"),
        case(label(63), True, "63 characters, the maximum"),
        case(label(64), False, "64 characters, one more than the maximum"),
    ],
)
def test_the_service_account_name_is_a_dns_label_of_up_to_63_characters(value: str, accepted: bool) -> None:
    check(
        accepted,
        "service_account_name must be a DNS-1123 label",
        lambda: manifests(service_account_name=value),
    )


@pytest.mark.parametrize(("value", "accepted"), lengths(3, 63, label))
def test_the_model_bucket_is_3_to_63_characters(value: str, accepted: bool) -> None:
    check(accepted, "model_bucket must be an S3 bucket name", lambda: manifests(model_bucket=value))


@pytest.mark.parametrize(("value", "accepted"), lengths(1, 253, label))
def test_the_ingress_class_is_a_dns_subdomain_of_up_to_253_characters(value: str, accepted: bool) -> None:
    check(
        accepted,
        "ingress_class_name must be a DNS subdomain name",
        lambda: manifests(
            exposure="Ingress", ingress_class_name=value, load_balancer_source_cidrs=["10.0.0.0/16"]
        ),
    )


@pytest.mark.parametrize(("tag", "accepted"), lengths(1, 128, label))
def test_the_image_tag_is_1_to_128_characters(tag: str, accepted: bool) -> None:
    check(accepted, "image_uri must be a pinned image", lambda: manifests(image_uri=f"{REGISTRY}:{tag}"))


# --- counts, ports and users ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "accepted"), edges(1, unit=" replica"))
def test_at_least_one_replica_runs(value: int, accepted: bool) -> None:
    check(accepted, rf"replicas must be >= 1, got {value}", lambda: manifests(replicas=value, max_replicas=3))


@pytest.mark.parametrize(("value", "accepted"), edges(3, unit=" replicas, against 3 replicas"))
def test_the_autoscaler_maximum_is_at_least_the_replicas(value: int, accepted: bool) -> None:
    check(
        accepted,
        rf"max_replicas must be >= replicas \(3\), the autoscaler's minimum, got {value}",
        lambda: manifests(replicas=3, max_replicas=value),
    )


@pytest.mark.parametrize(("value", "accepted"), edges(1, 100, unit="%"))
def test_the_autoscaler_cpu_target_is_1_to_100_percent(value: int, accepted: bool) -> None:
    check(
        accepted,
        rf"target_cpu_utilization must be 1-100, got {value}",
        lambda: manifests(target_cpu_utilization=value),
    )


@pytest.mark.parametrize("option", ["container_port", "service_port"])
@pytest.mark.parametrize(("value", "accepted"), edges(1, 65535))
def test_ports_are_1_to_65535(option: str, value: int, accepted: bool) -> None:
    check(accepted, rf"{option} must be 1-65535, got {value}", lambda: manifests(**{option: value}))


@pytest.mark.parametrize(("value", "accepted"), edges(1, unit=", the first uid that is not root"))
def test_pods_run_as_a_uid_of_at_least_1(value: int, accepted: bool) -> None:
    check(accepted, rf"run_as_user must be >= 1, got {value}", lambda: manifests(run_as_user=value))


@pytest.mark.parametrize(("value", "accepted"), edges(0, 29, unit=" s, against a 30 s grace period"))
def test_the_pre_stop_sleep_is_0_to_just_under_the_grace_period(value: int, accepted: bool) -> None:
    check(
        accepted,
        "pre_stop_sleep_seconds must be",
        lambda: manifests(pre_stop_sleep_seconds=value, termination_grace_period_seconds=30),
    )


@pytest.mark.parametrize(("value", "accepted"), edges(1, unit=" s"))
def test_the_termination_grace_period_is_at_least_1_second(value: int, accepted: bool) -> None:
    check(
        accepted,
        rf"termination_grace_period_seconds must be >= 1, got {value}",
        lambda: manifests(termination_grace_period_seconds=value, pre_stop_sleep_seconds=0),
    )


# --- resources --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["cpu", "memory", "model_volume_size"])
@pytest.mark.parametrize(
    ("value", "accepted"), [case("0", False, "zero"), case("1m", True, "the smallest positive milli-unit")]
)
def test_resource_quantities_are_above_zero(option: str, value: str, accepted: bool) -> None:
    limits = {"cpu_limit": "1", "memory_limit": "2Gi"}

    check(
        accepted,
        rf"{option} must be greater than zero, got '{value}'",
        lambda: manifests(**{option: value, **limits}),
    )


@pytest.mark.parametrize(
    ("resource", "requested", "limit", "accepted"),
    [
        pytest.param("cpu", "1", "999m", False, id="a cpu limit 1m under the request, is refused"),
        pytest.param("cpu", "1", "1000m", True, id="a cpu limit equal to the request, is accepted"),
        pytest.param("memory", "2Gi", "2047Mi", False, id="a memory limit 1Mi under the request, is refused"),
        pytest.param("memory", "2Gi", "2048Mi", True, id="a memory limit equal to the request, is accepted"),
    ],
)
def test_a_limit_is_at_least_its_request(resource: str, requested: str, limit: str, accepted: bool) -> None:
    check(
        accepted,
        rf"{resource}_limit must be at least the {resource} request",
        lambda: manifests(**{resource: requested, f"{resource}_limit": limit}),
    )
