"""Every limit SageMakerEndpoint and its value objects check, pinned on both edges (see boundaries.py).

The combination rules (serverless without a VPC, rolling deployments on one variant...) are in
test_sagemaker_endpoint_validation.py; here each numeric limit or allowed set is tried at the edge and one
step past it, so an off-by-one in the code fails a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import botocore.loaders
import pytest
from aws_cdk import CfnParameter, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from ml_inference_cdk.constructs.sagemaker.deployment import (
    CapacitySize,
    DeploymentGuardrails,
    TrafficRouting,
)
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.variants import (
    LOCAL_STORAGE_FAMILIES,
    InstanceVariant,
    ServerlessVariant,
    instance_family,
)
from tests.unit.boundaries import case, check, edges, lengths, literally, not_negative, positive
from tests.unit.test_sagemaker_endpoint import build_endpoint, new_stack


def bucket(stack: Stack | None = None) -> s3.IBucket:
    return s3.Bucket.from_bucket_name(stack or new_stack(), "Bucket", "some-bucket")


def alarms(stack: Stack, count: int) -> list[cloudwatch.IAlarm]:
    metric = cloudwatch.Metric(namespace="Custom", metric_name="Errors")
    return [
        cloudwatch.Alarm(stack, f"Alarm{i}", metric=metric, threshold=1, evaluation_periods=1)
        for i in range(count)
    ]


def seconds(value: float) -> Duration:
    return Duration.millis(value * 1000)


# --- serverless variants ----------------------------------------------------------------------------------

SERVERLESS_MEMORY = [
    *edges(1024, 6144, step=1024, unit=" MB"),
    *(case(size, True, f"{size} MB, a step between the edges") for size in (2048, 3072, 4096, 5120)),
    case(1023, False, "1023 MB, one below the minimum"),
    case(1025, False, "1025 MB, one above the minimum"),
    case(1536, False, "1536 MB, between two steps"),
    case(6143, False, "6143 MB, one below the maximum"),
    case(6145, False, "6145 MB, one above the maximum"),
]


@pytest.mark.parametrize(("memory", "accepted"), SERVERLESS_MEMORY)
def test_serverless_memory_is_1024_to_6144_mb_in_steps_of_1024(memory: int, accepted: bool) -> None:
    check(
        accepted,
        rf"memory_size_mb must be 1024-6144 in steps of 1024, got {memory}",
        lambda: ServerlessVariant(memory_size_mb=memory),
    )


@pytest.mark.parametrize(("concurrency", "accepted"), edges(1, 200))
def test_serverless_max_concurrency_is_1_to_200(concurrency: int, accepted: bool) -> None:
    check(
        accepted,
        rf"max_concurrency must be 1-200, got {concurrency}",
        lambda: ServerlessVariant(max_concurrency=concurrency),
    )


@pytest.mark.parametrize(("provisioned", "accepted"), edges(1, 10))
def test_serverless_provisioned_concurrency_is_1_to_max_concurrency(provisioned: int, accepted: bool) -> None:
    check(
        accepted,
        literally(f"provisioned_concurrency must be 1 to max_concurrency (10), got {provisioned}"),
        lambda: ServerlessVariant(max_concurrency=10, provisioned_concurrency=provisioned),
    )


@pytest.mark.parametrize(("provisioned", "accepted"), edges(maximum=200))
def test_provisioned_concurrency_under_an_unresolved_max_concurrency_is_at_most_200(
    provisioned: int, accepted: bool
) -> None:
    concurrency = CfnParameter(new_stack(), "Concurrency", type="Number").value_as_number

    check(
        accepted,
        literally(f"provisioned_concurrency must be 1 to max_concurrency (200), got {provisioned}"),
        lambda: ServerlessVariant(max_concurrency=concurrency, provisioned_concurrency=provisioned),
    )


# --- instance variants ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "accepted"), edges(1))
def test_initial_instance_count_is_at_least_1(count: int, accepted: bool) -> None:
    check(
        accepted,
        rf"initial_instance_count must be >= 1, got {count}",
        lambda: build_endpoint(initial_instance_count=count),
    )


@pytest.mark.parametrize(("weight", "accepted"), not_negative())
def test_initial_weight_is_at_least_0(weight: float, accepted: bool) -> None:
    check(accepted, "initial_weight must be >= 0", lambda: InstanceVariant(initial_weight=weight))


@pytest.mark.parametrize(
    ("weight", "accepted"),
    [case(0.0, False, "no weight on any variant"), case(0.001, True, "a little weight on one variant")],
)
def test_at_least_one_variant_carries_weight(weight: float, accepted: bool) -> None:
    variants = [
        InstanceVariant(name="Blue", initial_weight=0),
        InstanceVariant(name="Green", initial_weight=weight),
    ]

    check(accepted, "at least one initial_weight must be > 0", lambda: build_endpoint(variants=variants))


@pytest.mark.parametrize(("count", "accepted"), edges(1, 10, unit=" variants"))
def test_an_endpoint_has_1_to_10_variants(count: int, accepted: bool) -> None:
    variants = [InstanceVariant(name=f"V{i}") for i in range(count)]

    check(
        accepted, rf"variants must hold 1-10 variants, got {count}", lambda: build_endpoint(variants=variants)
    )


NAMES = [
    *lengths(1, 63, lambda n: "a" * n),
    case("a-b", True, "an inner hyphen"),
    case("a--b", True, "two inner hyphens"),
    case("-a", False, "a leading hyphen"),
    case("a-", False, "a trailing hyphen"),
]


@pytest.mark.parametrize(("name", "accepted"), NAMES)
def test_a_variant_name_is_1_to_63_letters_digits_or_inner_hyphens(name: str, accepted: bool) -> None:
    check(accepted, "variant name must be 1-63 letters", lambda: InstanceVariant(name=name))


@pytest.mark.parametrize(("name", "accepted"), NAMES)
def test_an_endpoint_name_is_1_to_63_letters_digits_or_inner_hyphens(name: str, accepted: bool) -> None:
    check(accepted, "endpoint_name must be 1-63 letters", lambda: build_endpoint(endpoint_name=name))


@pytest.mark.parametrize(("name", "accepted"), NAMES)
def test_an_imported_endpoint_name_is_1_to_63_letters_digits_or_inner_hyphens(
    name: str, accepted: bool
) -> None:
    check(
        accepted,
        "endpoint_name must be 1-63 letters",
        lambda: SageMakerEndpoint.from_endpoint_name(new_stack(), "Imported", name),
    )


@pytest.mark.parametrize(
    ("instance_type", "accepted"),
    [
        case("ml.m5.large", True, "ml.m5.large"),
        case("ml.p4d.24xlarge", True, "a size with digits"),
        case("ml.trn1n.32xlarge", True, "a family with letters after its generation"),
        case("ml.m5", False, "no size"),
        case("m5.large", False, "no ml prefix"),
        case("ml.m5.large ", False, "a trailing space"),
    ],
)
def test_an_instance_type_is_ml_family_size(instance_type: str, accepted: bool) -> None:
    check(
        accepted,
        "instance_type must be a SageMaker ML instance type",
        lambda: InstanceVariant(instance_type=instance_type),
    )


# --- timeouts ---------------------------------------------------------------------------------------------

TIMEOUT_60_TO_3600 = [*edges(60, 3600, unit=" s"), case(60.5, False, "60.5 s, not whole seconds")]


@pytest.mark.parametrize(
    "parameter", ["container_startup_health_check_timeout", "model_data_download_timeout"]
)
@pytest.mark.parametrize(("value", "accepted"), TIMEOUT_60_TO_3600)
def test_an_endpoints_instance_timeouts_are_60_to_3600_whole_seconds(
    parameter: str, value: float, accepted: bool
) -> None:
    check(
        accepted,
        f"{parameter} must be 60-3600 whole seconds",
        lambda: build_endpoint(**{parameter: seconds(value)}),
    )


@pytest.mark.parametrize(
    "parameter", ["container_startup_health_check_timeout", "model_data_download_timeout"]
)
@pytest.mark.parametrize(("value", "accepted"), TIMEOUT_60_TO_3600)
def test_a_variants_own_timeouts_are_60_to_3600_whole_seconds(
    parameter: str, value: float, accepted: bool
) -> None:
    check(
        accepted,
        f"{parameter} must be 60-3600 whole seconds",
        lambda: InstanceVariant(**{parameter: seconds(value)}),
    )


# --- networking and encryption ----------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "accepted"), edges(1, 5, unit=" security groups"))
def test_an_endpoint_in_a_vpc_takes_1_to_5_security_groups(count: int, accepted: bool) -> None:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0)
    groups = [ec2.SecurityGroup(stack, f"Group{i}", vpc=vpc) for i in range(count)]

    check(
        accepted,
        rf"security_groups takes 1-5 security groups \(or None for a new one\), got {count}",
        lambda: build_endpoint(stack, vpc=vpc, security_groups=groups),
    )


def hosting_instance_types() -> list[str]:
    """Every instance type SageMaker hosting takes, from the SageMaker API model botocore ships."""
    model = botocore.loaders.Loader().load_service_model("sagemaker", "service-2")
    types: list[str] = model["shapes"]["ProductionVariantInstanceType"]["enum"]
    return types


def smallest_of(family: str) -> str:
    return next(t for t in hosting_instance_types() if instance_family(t) == family)


EBS_ONLY_FAMILIES = [
    "m5",
    "c5",
    "r5",
    "m6i",
    "c6i",
    "c6in",
    "c6gn",
    "m7i",
    "c7g",
    "r8g",
    "p3",
    "inf1",
    "inf2",
]


@pytest.mark.parametrize("family", sorted(LOCAL_STORAGE_FAMILIES))
def test_a_volume_key_is_refused_on_every_family_with_local_nvme_storage(family: str) -> None:
    stack = new_stack()
    instance_type = smallest_of(family)

    with pytest.raises(
        ValueError, match=rf"volume_encryption_key cannot be used .* got {literally(instance_type)}"
    ):
        build_endpoint(stack, instance_type=instance_type, volume_encryption_key=kms.Key(stack, "Key"))


@pytest.mark.parametrize("family", EBS_ONLY_FAMILIES)
def test_a_volume_key_is_accepted_on_ebs_only_families(family: str) -> None:
    stack = new_stack()

    build_endpoint(stack, instance_type=smallest_of(family), volume_encryption_key=kms.Key(stack, "Key"))


def test_the_local_storage_list_names_only_families_sagemaker_hosting_offers() -> None:
    offered = {instance_family(t) for t in hosting_instance_types()}

    assert sorted(LOCAL_STORAGE_FAMILIES - offered) == []


def test_a_family_with_local_storage_but_no_d_in_its_name_is_on_the_list() -> None:
    # The regex this list replaced needed a "d" (m5d, g4dn, p4d) or a hand-kept exception list.
    assert {"g5", "g6", "g6e", "p5", "trn1", "trn2"} <= LOCAL_STORAGE_FAMILIES
    assert not {"c6gn", "c6in", "inf2"} & LOCAL_STORAGE_FAMILIES


# --- asynchronous inference and data capture --------------------------------------------------------------


@pytest.mark.parametrize(("concurrency", "accepted"), edges(1, 1000))
def test_async_max_concurrent_invocations_per_instance_is_1_to_1000(concurrency: int, accepted: bool) -> None:
    check(
        accepted,
        rf"max_concurrent_invocations_per_instance must be 1-1000, got {concurrency}",
        lambda: AsyncInference(bucket=bucket(), max_concurrent_invocations_per_instance=concurrency),
    )


@pytest.mark.parametrize(("percentage", "accepted"), edges(0, 100, unit="%"))
def test_data_capture_samples_0_to_100_percent(percentage: int, accepted: bool) -> None:
    check(
        accepted,
        rf"sampling_percentage must be 0-100, got {percentage}",
        lambda: DataCapture(bucket=bucket(), sampling_percentage=percentage),
    )


@pytest.mark.parametrize("parameter", ["csv_content_types", "json_content_types"])
@pytest.mark.parametrize(("count", "accepted"), edges(maximum=10, unit=" content types"))
def test_data_capture_takes_at_most_10_content_types_of_each_kind(
    parameter: str, count: int, accepted: bool
) -> None:
    types = [f"text/type{i}" for i in range(count)]

    check(
        accepted,
        rf"{parameter} takes at most 10 content types, got {count}",
        lambda: DataCapture(bucket=bucket(), **{parameter: types}),
    )


@pytest.mark.parametrize(("value", "accepted"), lengths(0, 400, lambda n: "p" * n))
def test_a_data_capture_prefix_is_at_most_400_characters(value: str, accepted: bool) -> None:
    check(
        accepted,
        rf"data_capture\.prefix must be at most 400 characters, got {len(value)}",
        lambda: DataCapture(bucket=bucket(), prefix=value),
    )


@pytest.mark.parametrize("parameter", ["output_prefix", "failure_prefix", "input_prefix"])
@pytest.mark.parametrize(("value", "accepted"), lengths(0, 400, lambda n: "p" * n))
def test_async_inference_prefixes_are_at_most_400_characters(
    parameter: str, value: str, accepted: bool
) -> None:
    check(
        accepted,
        rf"async_inference\.{parameter} must be at most 400 characters",
        lambda: AsyncInference(bucket=bucket(), **{parameter: value}),
    )


# --- deployment guardrails --------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "accepted"), edges(1))
def test_a_capacity_of_instances_is_at_least_1(count: int, accepted: bool) -> None:
    check(accepted, rf"instance_count must be >= 1, got {count}", lambda: CapacitySize.instance_count(count))


@pytest.mark.parametrize(("percentage", "accepted"), edges(1, 100, unit="%"))
def test_a_capacity_percentage_is_1_to_100(percentage: int, accepted: bool) -> None:
    check(accepted, rf"percent must be 1-100, got {percentage}", lambda: CapacitySize.percent(percentage))


@pytest.mark.parametrize(("percentage", "accepted"), edges(1, 50, unit="%"))
def test_a_canary_is_1_to_50_percent_of_the_fleet(percentage: int, accepted: bool) -> None:
    check(
        accepted,
        # 0% is refused by CapacitySize.percent() already, 51% by the canary.
        rf"(canary size must be 1-50% of the fleet as CapacitySize.percent\(\)|percent must be 1-100), "
        rf"got {percentage}",
        lambda: TrafficRouting.canary(size=CapacitySize.percent(percentage), wait=Duration.minutes(1)),
    )


@pytest.mark.parametrize(("percentage", "accepted"), edges(10, 50, unit="%"))
def test_a_linear_step_is_10_to_50_percent_of_the_fleet(percentage: int, accepted: bool) -> None:
    check(
        accepted,
        rf"linear step must be 10-50% of the fleet as CapacitySize.percent\(\), got {percentage}%",
        lambda: TrafficRouting.linear(step=CapacitySize.percent(percentage), wait=Duration.minutes(1)),
    )


@pytest.mark.parametrize(("percentage", "accepted"), edges(5, 50, unit="%"))
def test_a_rolling_batch_is_5_to_50_percent_of_the_fleet(percentage: int, accepted: bool) -> None:
    check(
        accepted,
        rf"maximum_batch_size must be 5-50% of the fleet as CapacitySize.percent\(\), got {percentage}%",
        lambda: DeploymentGuardrails.rolling(
            maximum_batch_size=CapacitySize.percent(percentage), wait_interval=Duration.minutes(1)
        ),
    )


@pytest.mark.parametrize(("percentage", "accepted"), edges(1, 100, unit="%"))
def test_a_rollback_batch_is_1_to_100_percent_of_the_fleet(percentage: int, accepted: bool) -> None:
    # 100% (the API's default) rolls everything back at once, blue/green style.
    check(
        accepted,
        rf"percent must be 1-100, got {percentage}",
        lambda: DeploymentGuardrails.rolling(
            maximum_batch_size=CapacitySize.percent(50),
            wait_interval=Duration.minutes(1),
            rollback_maximum_batch_size=CapacitySize.percent(percentage),
        ),
    )


@pytest.mark.parametrize(
    "routing",
    [
        pytest.param(lambda size: TrafficRouting.canary(size=size, wait=Duration.minutes(1)), id="canary"),
        pytest.param(lambda size: TrafficRouting.linear(step=size, wait=Duration.minutes(1)), id="linear"),
    ],
)
def test_an_instance_count_step_is_not_held_to_the_percentages(routing: Any) -> None:
    # The share of the fleet an instance count makes depends on the fleet; SageMaker checks it.
    assert routing(CapacitySize.instance_count(60)).size == CapacitySize.instance_count(60)


def test_a_rolling_batch_of_instances_is_not_held_to_the_percentages() -> None:
    guardrails = DeploymentGuardrails.rolling(
        maximum_batch_size=CapacitySize.instance_count(60), wait_interval=Duration.minutes(1)
    )

    assert guardrails.maximum_batch_size == CapacitySize.instance_count(60)


WAIT_0_TO_3600 = [
    case(0, True, "0 s, the minimum (a Duration is never negative)"),
    *edges(maximum=3600, unit=" s"),
]


@pytest.mark.parametrize(("value", "accepted"), WAIT_0_TO_3600)
def test_all_at_once_waits_0_to_3600_seconds(value: float, accepted: bool) -> None:
    check(
        accepted,
        "wait must be 0-3600 whole seconds",
        lambda: TrafficRouting.all_at_once(wait=seconds(value)),
    )


@pytest.mark.parametrize(("value", "accepted"), WAIT_0_TO_3600)
def test_a_canary_waits_0_to_3600_seconds(value: float, accepted: bool) -> None:
    check(
        accepted,
        "wait must be 0-3600 whole seconds",
        lambda: TrafficRouting.canary(size=CapacitySize.percent(10), wait=seconds(value)),
    )


@pytest.mark.parametrize(("value", "accepted"), WAIT_0_TO_3600)
def test_a_linear_shift_waits_0_to_3600_seconds_between_steps(value: float, accepted: bool) -> None:
    check(
        accepted,
        "wait must be 0-3600 whole seconds",
        lambda: TrafficRouting.linear(step=CapacitySize.percent(10), wait=seconds(value)),
    )


@pytest.mark.parametrize(("value", "accepted"), WAIT_0_TO_3600)
def test_blue_green_bakes_0_to_3600_seconds(value: float, accepted: bool) -> None:
    check(
        accepted,
        "termination_wait must be 0-3600 whole seconds",
        lambda: DeploymentGuardrails.blue_green(termination_wait=seconds(value)),
    )


@pytest.mark.parametrize(("value", "accepted"), WAIT_0_TO_3600)
def test_rolling_waits_0_to_3600_seconds_after_each_batch(value: float, accepted: bool) -> None:
    check(
        accepted,
        "wait_interval must be 0-3600 whole seconds",
        lambda: DeploymentGuardrails.rolling(
            maximum_batch_size=CapacitySize.percent(50), wait_interval=seconds(value)
        ),
    )


@pytest.mark.parametrize("strategy", ["blue_green", "rolling"])
@pytest.mark.parametrize(("value", "accepted"), edges(600, 28800, unit=" s"))
def test_a_deployment_times_out_after_600_to_28800_seconds(
    strategy: str, value: float, accepted: bool
) -> None:
    options = {"maximum_batch_size": CapacitySize.percent(50), "wait_interval": Duration.minutes(1)}

    check(
        accepted,
        "maximum_execution_timeout must be 600-28800 whole seconds",
        lambda: getattr(DeploymentGuardrails, strategy)(
            maximum_execution_timeout=seconds(value), **(options if strategy == "rolling" else {})
        ),
    )


@pytest.mark.parametrize(("threshold", "accepted"), edges(1, unit=" error per minute"))
def test_the_rollback_error_threshold_is_at_least_1(threshold: int, accepted: bool) -> None:
    check(
        accepted,
        rf"error_threshold must be >= 1 error per minute, got {threshold}",
        lambda: DeploymentGuardrails.blue_green(error_threshold=threshold),
    )


@pytest.mark.parametrize(
    ("millis", "accepted"),
    [case(0, False, "0 ms, the bound itself"), case(1, True, "1 ms, just above it")],
)
def test_the_rollback_latency_threshold_is_longer_than_0(millis: int, accepted: bool) -> None:
    check(
        accepted,
        "latency_threshold must be longer than 0",
        lambda: DeploymentGuardrails.blue_green(latency_threshold=Duration.millis(millis)),
    )


@pytest.mark.parametrize(("count", "accepted"), edges(maximum=10, unit=" alarms"))
def test_guardrails_take_at_most_10_alarms(count: int, accepted: bool) -> None:
    check(
        accepted,
        rf"alarms takes at most 10 alarms, got {count}",
        lambda: DeploymentGuardrails.blue_green(alarms=alarms(new_stack(), count), default_alarms=False),
    )


@pytest.mark.parametrize(
    ("own", "accepted"), edges(maximum=8, unit=" alarms of the caller's next to 2 defaults")
)
def test_an_endpoint_takes_at_most_10_rollback_alarms_with_its_default_ones(own: int, accepted: bool) -> None:
    stack = new_stack()
    deployment = DeploymentGuardrails.blue_green(alarms=alarms(stack, own))

    check(
        accepted,
        rf"at most 10 rollback alarms, got {own + 2}",
        lambda: build_endpoint(stack, deployment=deployment),
    )


@pytest.mark.parametrize(
    ("properties", "accepted"),
    [
        case(
            ["DesiredInstanceCount", "DesiredWeight", "DataCaptureConfig"], True, "every retainable property"
        ),
        case(["DesiredInstanceCount", "InstanceType"], False, "a property that is not retainable"),
    ],
)
def test_excluded_retained_properties_are_exactly_the_three_retainable_ones(
    properties: Sequence[str], accepted: bool
) -> None:
    check(
        accepted,
        "exclude_retained_variant_properties must hold",
        lambda: build_endpoint(
            retain_all_variant_properties=True, exclude_retained_variant_properties=properties
        ),
    )


# --- autoscaling ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("minimum", "accepted"), edges(1, unit=" instance"))
def test_autoscaling_keeps_at_least_1_instance(minimum: int, accepted: bool) -> None:
    check(
        accepted,
        rf"min_capacity must be >= 1 .*got {minimum}",
        lambda: build_endpoint().auto_scale_instance_count(min_capacity=minimum, max_capacity=2),
    )


@pytest.mark.parametrize(("maximum", "accepted"), edges(3, unit=" instances, against a minimum of 3"))
def test_autoscaling_max_capacity_is_at_least_min_capacity(maximum: int, accepted: bool) -> None:
    check(
        accepted,
        rf"min_capacity must be <= max_capacity, got min_capacity=3 > max_capacity={maximum}",
        lambda: build_endpoint().auto_scale_instance_count(min_capacity=3, max_capacity=maximum),
    )


@pytest.mark.parametrize(
    ("instance_type", "accepted"),
    [
        case("ml.t2.medium", False, "ml.t2.medium, burstable"),
        case("ml.t3.2xlarge", False, "ml.t3.2xlarge, burstable"),
        case("ml.trn1.2xlarge", True, "ml.trn1.2xlarge, a t family that is not burstable"),
        case("ml.m5.large", True, "ml.m5.large"),
    ],
)
def test_autoscaling_refuses_exactly_the_burstable_instances(instance_type: str, accepted: bool) -> None:
    check(
        accepted,
        "burstable: SageMaker does not autoscale",
        lambda: build_endpoint(instance_type=instance_type).auto_scale_instance_count(
            min_capacity=1, max_capacity=2
        ),
    )


@pytest.mark.parametrize(
    ("policy", "parameter"),
    [("scale_on_invocations", "invocations_per_instance"), ("scale_on_cpu_utilization", "target_percent")],
)
@pytest.mark.parametrize(("target", "accepted"), positive())
def test_scaling_targets_are_above_0(policy: str, parameter: str, target: float, accepted: bool) -> None:
    scaling = build_endpoint().auto_scale_instance_count(min_capacity=1, max_capacity=2)

    check(accepted, rf"{parameter} must be > 0", lambda: getattr(scaling, policy)(**{parameter: target}))
