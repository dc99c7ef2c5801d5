"""Instance variant options beyond type, count and weight: routing, volume size, SSM access, inference AMI.

Each option is asserted on the synthesized EndpointConfig and each limit on both edges, as in
test_sagemaker_boundaries.py.
"""

from __future__ import annotations

import pytest
from aws_cdk import CfnParameter
from aws_cdk.assertions import Match

from ml_inference_cdk.constructs.sagemaker.variants import (
    INFERENCE_AMI_VERSIONS,
    ROUTING_STRATEGIES,
    InstanceVariant,
)
from tests.unit.boundaries import case, check, edges, literally
from tests.unit.test_sagemaker_endpoint import build_endpoint, new_stack, template_of


def variant_properties(variant: InstanceVariant) -> dict[str, object]:
    """The one ProductionVariant of an endpoint serving ``variant``."""
    template = template_of(build_endpoint(variants=[variant]))
    config = next(iter(template.find_resources("AWS::SageMaker::EndpointConfig").values()))
    variants = config["Properties"]["ProductionVariants"]
    assert len(variants) == 1
    properties: dict[str, object] = variants[0]
    return properties


def test_a_variant_states_none_of_the_options_by_default() -> None:
    properties = variant_properties(InstanceVariant())

    for name in ("RoutingConfig", "VolumeSizeInGB", "EnableSSMAccess", "InferenceAmiVersion"):
        assert name not in properties


def test_a_variant_routes_to_the_instance_with_the_fewest_requests_in_flight() -> None:
    properties = variant_properties(InstanceVariant(routing_strategy="LEAST_OUTSTANDING_REQUESTS"))

    assert properties["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}


def test_a_variant_sizes_its_instances_storage_volume() -> None:
    assert variant_properties(InstanceVariant(volume_size_gb=256))["VolumeSizeInGB"] == 256


def test_a_variant_turns_on_ssm_access_to_its_containers() -> None:
    assert variant_properties(InstanceVariant(enable_ssm_access=True))["EnableSSMAccess"] is True


def test_a_variant_boots_the_chosen_inference_ami() -> None:
    variant = InstanceVariant(
        instance_type="ml.g5.xlarge", inference_ami_version="al2-ami-sagemaker-inference-gpu-3-1"
    )

    assert variant_properties(variant)["InferenceAmiVersion"] == "al2-ami-sagemaker-inference-gpu-3-1"


def test_each_variant_of_an_endpoint_keeps_its_own_options() -> None:
    endpoint = build_endpoint(
        variants=[
            InstanceVariant(name="Blue", routing_strategy="RANDOM", volume_size_gb=30),
            InstanceVariant(
                name="Green", routing_strategy="LEAST_OUTSTANDING_REQUESTS", enable_ssm_access=True
            ),
        ]
    )

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": "Blue",
                        "RoutingConfig": {"RoutingStrategy": "RANDOM"},
                        "VolumeSizeInGB": 30,
                        "EnableSSMAccess": Match.absent(),
                    }
                ),
                Match.object_like(
                    {
                        "VariantName": "Green",
                        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
                        "VolumeSizeInGB": Match.absent(),
                        "EnableSSMAccess": True,
                    }
                ),
            ]
        },
    )


ROUTING = [
    *(case(strategy, True, strategy) for strategy in ROUTING_STRATEGIES),
    case("least_outstanding_requests", False, "lowercase"),
    case("PREFIX_AWARE", False, "PREFIX_AWARE, which needs a prefix-aware configuration and LLM components"),
    case("ROUND_ROBIN", False, "ROUND_ROBIN, no SageMaker strategy"),
]


@pytest.mark.parametrize(("strategy", "accepted"), ROUTING)
def test_the_routing_strategy_is_least_outstanding_requests_or_random(strategy: str, accepted: bool) -> None:
    check(
        accepted,
        literally(f"routing_strategy must be one of LEAST_OUTSTANDING_REQUESTS, RANDOM, got {strategy!r}"),
        lambda: InstanceVariant(routing_strategy=strategy),
    )


AMI_VERSIONS = [
    *(case(version, True, version) for version in INFERENCE_AMI_VERSIONS),
    case("al2-ami-sagemaker-inference-gpu-9", False, "an unknown version"),
    case("ami-0123456789abcdef0", False, "an EC2 AMI id"),
]


@pytest.mark.parametrize(("version", "accepted"), AMI_VERSIONS)
def test_the_inference_ami_version_is_one_the_api_lists(version: str, accepted: bool) -> None:
    check(
        accepted,
        literally(
            f"inference_ami_version must be one of {', '.join(INFERENCE_AMI_VERSIONS)}, got {version!r}"
        ),
        lambda: InstanceVariant(instance_type="ml.g5.xlarge", inference_ami_version=version),
    )


@pytest.mark.parametrize(
    ("size", "accepted"), [*edges(1, 512, unit=" GB"), case(30.5, False, "30.5 GB, not whole")]
)
def test_the_volume_size_is_1_to_512_whole_gb(size: float, accepted: bool) -> None:
    check(
        accepted,
        rf"volume_size_gb must be a whole number of GB, 1-512, got {size}",
        lambda: InstanceVariant(volume_size_gb=size),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "instance_type", ["ml.g5.xlarge", "ml.m5d.large", "ml.p4d.24xlarge", "ml.trn1.2xlarge"]
)
def test_the_volume_size_is_refused_on_instances_with_local_nvme_storage(instance_type: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"volume_size_gb cannot be used with instance type {literally(repr(instance_type))}.* NVMe",
    ):
        InstanceVariant(instance_type=instance_type, volume_size_gb=100)


def test_an_unresolved_volume_size_is_left_to_cloudformation() -> None:
    size = CfnParameter(new_stack(), "VolumeSize", type="Number").value_as_number

    assert InstanceVariant(instance_type="ml.g5.xlarge", volume_size_gb=size).volume_size_gb == size
