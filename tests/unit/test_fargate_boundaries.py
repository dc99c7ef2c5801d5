"""Every limit FargateInferenceService checks, pinned on both edges through the construct (see boundaries.py).

The expected values are written out here from AWS's documentation, not read from fargate_validation, so a
wrong entry in the library's table fails a test instead of agreeing with itself.
"""

from __future__ import annotations

import pytest
from aws_cdk import Duration

from tests.unit.boundaries import case, check, edges, lengths
from tests.unit.test_fargate_service_validation import create

# Fargate's "Task CPU and memory" table (Linux, platform 1.4.0): CPU units -> memory in MiB.
FARGATE_MEMORY = {
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}


def memory_cases() -> list[object]:
    cases = [
        case((256, 512), True, "cpu 256 with 512 MiB"),
        case((256, 1024), True, "cpu 256 with 1024 MiB"),
        case((256, 2048), True, "cpu 256 with 2048 MiB, the maximum"),
        case((256, 1536), False, "cpu 256 with 1536 MiB, not offered"),
        case((256, 511), False, "cpu 256 with 511 MiB, just below the minimum"),
        case((256, 2560), False, "cpu 256 with 2560 MiB, a step above the maximum"),
    ]
    for cpu, (low, high, step) in FARGATE_MEMORY.items():
        cases += [
            case((cpu, low - step), False, f"cpu {cpu} with {low - step} MiB, a step below the minimum"),
            case((cpu, low), True, f"cpu {cpu} with {low} MiB, the minimum"),
            case((cpu, low + 1), False, f"cpu {cpu} with {low + 1} MiB, off the {step} MiB steps"),
            case((cpu, high), True, f"cpu {cpu} with {high} MiB, the maximum"),
            case((cpu, high + step), False, f"cpu {cpu} with {high + step} MiB, a step above the maximum"),
        ]
    return cases


@pytest.mark.parametrize(("size", "accepted"), memory_cases())
def test_task_memory_is_within_the_fargate_table_for_its_cpu(size: tuple[int, int], accepted: bool) -> None:
    cpu, memory = size

    check(
        accepted,
        rf"memory_limit_mib must be .* for cpu {cpu} on Fargate, got {memory}",
        lambda: create(cpu=cpu, memory_limit_mib=memory),
    )


@pytest.mark.parametrize(
    ("cpu", "accepted"),
    [
        case(255, False, "255 units, just below the smallest size"),
        case(257, False, "257 units, just above the smallest size"),
        case(3072, False, "3072 units, between two sizes"),
        case(16384, True, "16384 units, the largest size"),
        case(16385, False, "16385 units, just above the largest size"),
    ],
)
def test_task_cpu_is_one_of_fargates_sizes(cpu: int, accepted: bool) -> None:
    memory = 32768 if cpu == 16384 else 2048
    check(accepted, rf"cpu must be one of .*got {cpu}", lambda: create(cpu=cpu, memory_limit_mib=memory))


@pytest.mark.parametrize(("port", "accepted"), edges(1, 65535))
def test_the_container_port_is_1_to_65535(port: int, accepted: bool) -> None:
    check(accepted, rf"container_port must be 1-65535, got {port}", lambda: create(container_port=port))


@pytest.mark.parametrize(("count", "accepted"), edges(0, unit=" tasks"))
def test_the_desired_count_is_at_least_0(count: int, accepted: bool) -> None:
    check(
        accepted,
        rf"desired_count must be >= 0, got {count}",
        lambda: create(desired_count=count, min_capacity=0, max_capacity=1),
    )


@pytest.mark.parametrize(("minimum", "accepted"), edges(0, unit=" tasks"))
def test_the_minimum_capacity_is_at_least_0(minimum: int, accepted: bool) -> None:
    check(
        accepted,
        rf"min_capacity must be >= 0, got {minimum}",
        lambda: create(min_capacity=minimum, max_capacity=1),
    )


@pytest.mark.parametrize(("maximum", "accepted"), edges(1, unit=" task"))
def test_the_maximum_capacity_is_at_least_1(maximum: int, accepted: bool) -> None:
    check(
        accepted,
        rf"max_capacity must be >= 1, got {maximum}",
        lambda: create(min_capacity=0, max_capacity=maximum),
    )


@pytest.mark.parametrize(("maximum", "accepted"), edges(3, unit=" tasks, against a minimum of 3"))
def test_the_maximum_capacity_is_at_least_the_minimum(maximum: int, accepted: bool) -> None:
    check(
        accepted,
        rf"min_capacity must be <= max_capacity, got min_capacity=3 and max_capacity={maximum}",
        lambda: create(min_capacity=3, max_capacity=maximum),
    )


@pytest.mark.parametrize(("percent", "accepted"), edges(0, 100, unit="%"))
def test_the_minimum_healthy_percent_is_0_to_100(percent: int, accepted: bool) -> None:
    check(
        accepted,
        rf"min_healthy_percent must be 0-100, got {percent}",
        lambda: create(min_healthy_percent=percent, max_healthy_percent=200),
    )


@pytest.mark.parametrize(("percent", "accepted"), edges(101, unit="%, against a minimum of 100%"))
def test_the_maximum_percent_is_above_the_minimum_healthy_percent(percent: int, accepted: bool) -> None:
    check(
        accepted,
        "max_healthy_percent must be greater than min_healthy_percent",
        lambda: create(min_healthy_percent=100, max_healthy_percent=percent),
    )


@pytest.mark.parametrize(
    ("seconds", "accepted"),
    [
        case(0, True, "0 s, the minimum (a Duration is never negative)"),
        *edges(maximum=2**31 - 1, unit=" s"),
    ],
)
def test_the_grace_period_fits_ecs_32_bit_seconds(seconds: int, accepted: bool) -> None:
    check(
        accepted,
        rf"health_check_grace_period must be 0-2147483647 seconds, got {seconds}",
        lambda: create(health_check_grace_period=Duration.seconds(seconds)),
    )


@pytest.mark.parametrize("parameter", ["family", "container_name"])
@pytest.mark.parametrize(("name", "accepted"), lengths(1, 255, lambda n: "a" * n))
def test_names_are_1_to_255_characters(parameter: str, name: str, accepted: bool) -> None:
    check(accepted, rf"{parameter} must be 1-255 letters", lambda: create(**{parameter: name}))


@pytest.mark.parametrize(
    ("cidr", "accepted"),
    [
        case("203.0.113.7/32", True, "an IPv4 /32, the longest prefix"),
        case("203.0.113.0/33", False, "an IPv4 /33, one past the longest prefix"),
        case("255.255.255.0/24", True, "an octet of 255"),
        case("256.0.0.0/8", False, "an octet of 256"),
        case("2001:db8::/128", True, "an IPv6 /128, the longest prefix"),
        case("2001:db8::/129", False, "an IPv6 /129, one past the longest prefix"),
        case("0.0.0.0/0", True, "the whole IPv4 internet"),
        case("203.0.113.7", False, "an address without a prefix length"),
    ],
)
def test_allowed_cidrs_are_networks_of_a_valid_prefix_length(cidr: str, accepted: bool) -> None:
    check(accepted, "allowed_cidrs entries must be IPv4 or IPv6 CIDRs", lambda: create(allowed_cidrs=[cidr]))


@pytest.mark.parametrize(("size", "accepted"), edges(21, 200, unit=" GiB"))
def test_ephemeral_storage_is_21_to_200_gib(size: int, accepted: bool) -> None:
    check(
        accepted,
        rf"ephemeral_storage_gib must be 21-200, got {size}",
        lambda: create(ephemeral_storage_gib=size),
    )


@pytest.mark.parametrize(("percent", "accepted"), edges(1, 100, unit="%"))
def test_the_cpu_setpoint_is_1_to_100_percent(percent: int, accepted: bool) -> None:
    check(
        accepted,
        rf"target_cpu_utilization_percent must be 1-100, got {percent}",
        lambda: create(target_cpu_utilization_percent=percent),
    )


@pytest.mark.parametrize(("requests", "accepted"), edges(1, unit=" request per task per minute"))
def test_the_request_setpoint_is_at_least_1(requests: int, accepted: bool) -> None:
    check(
        accepted,
        rf"target_requests_per_target must be >= 1, got {requests}",
        lambda: create(target_requests_per_target=requests),
    )


@pytest.mark.parametrize(
    ("user", "accepted"),
    [
        case("0", False, "uid 0"),
        case("1", True, "uid 1, the first unprivileged uid"),
        case("0:10001", False, "uid 0 with another group"),
        case("10001:0", True, "an unprivileged uid in group 0"),
        case("root", False, "root by name"),
        case("rooty", True, "a name that starts with root"),
    ],
)
def test_the_server_runs_as_any_user_but_root(user: str, accepted: bool) -> None:
    check(accepted, "user must be an unprivileged user", lambda: create(user=user))
