"""Synth-time checks for FargateInferenceService: what Fargate, ECS or ELB would reject (or break) at deploy.

Each check names the parameter, the value and what is allowed, and skips values that are unresolved tokens.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Final

from aws_cdk import Duration, Token
from aws_cdk import aws_logs as logs

# Fargate's task-level CPU units -> allowed memory (MiB): (lowest, highest, step). AWS "Task CPU and memory"
# table
# for Linux platform 1.4.0 (8 and 16 vCPU need 1.4.0, which LATEST is).
FARGATE_MEMORY_BY_CPU: Final[dict[int, tuple[int, int, int]]] = {
    256: (512, 2048, 512),  # 512, 1024, 2048 (1536 is not offered)
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
_ALLOWED_256 = (512, 1024, 2048)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
_MAX_GRACE_SECONDS = 2_147_483_647  # ECS healthCheckGracePeriodSeconds is a 32-bit integer
_ROOT_USERS = ("0", "root")


def _literal(value: object) -> bool:
    return not Token.is_unresolved(value)


def fargate_cpu_memory(cpu: int, memory_limit_mib: int) -> None:
    if not (_literal(cpu) and _literal(memory_limit_mib)):
        return
    if cpu not in FARGATE_MEMORY_BY_CPU:
        allowed = ", ".join(str(c) for c in FARGATE_MEMORY_BY_CPU)
        raise ValueError(f"cpu must be one of {allowed} (Fargate CPU units), got {cpu}")
    low, high, step = FARGATE_MEMORY_BY_CPU[cpu]
    if cpu == 256:
        ok = memory_limit_mib in _ALLOWED_256
        allowed_text = "512, 1024 or 2048"
    else:
        ok = low <= memory_limit_mib <= high and (memory_limit_mib - low) % step == 0
        allowed_text = f"{low}-{high} in steps of {step}"
    if not ok:
        raise ValueError(
            f"memory_limit_mib must be {allowed_text} for cpu {cpu} on Fargate, got {memory_limit_mib}"
        )


def port(name: str, value: int) -> None:
    if _literal(value) and not 1 <= value <= 65535:
        raise ValueError(f"{name} must be 1-65535, got {value}")


def at_least(name: str, value: int, minimum: int) -> None:
    if _literal(value) and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def between(name: str, value: int, low: int, high: int) -> None:
    if _literal(value) and not low <= value <= high:
        raise ValueError(f"{name} must be {low}-{high}, got {value}")


def capacity(min_capacity: int, max_capacity: int) -> None:
    at_least("min_capacity", min_capacity, 0)
    at_least("max_capacity", max_capacity, 1)
    if _literal(min_capacity) and _literal(max_capacity) and min_capacity > max_capacity:
        raise ValueError(
            "min_capacity must be <= max_capacity, "
            f"got min_capacity={min_capacity} and max_capacity={max_capacity}"
        )


def healthy_percent(min_healthy_percent: int, max_healthy_percent: int) -> None:
    between("min_healthy_percent", min_healthy_percent, 0, 100)
    if (
        _literal(min_healthy_percent)
        and _literal(max_healthy_percent)
        and max_healthy_percent <= min_healthy_percent
    ):
        raise ValueError(
            "max_healthy_percent must be greater than min_healthy_percent, or a deployment has no room to "
            f"replace a task; got max_healthy_percent={max_healthy_percent} "
            f"and min_healthy_percent={min_healthy_percent}"
        )


def grace_period(value: Duration) -> None:
    if Token.is_unresolved(value.to_string()):
        return
    seconds = value.to_seconds()
    if not 0 <= seconds <= _MAX_GRACE_SECONDS:
        raise ValueError(f"health_check_grace_period must be 0-{_MAX_GRACE_SECONDS} seconds, got {seconds}")


def retention(value: object) -> None:
    if not isinstance(value, logs.RetentionDays):
        allowed = "a aws_logs.RetentionDays member (e.g. RetentionDays.ONE_MONTH)"
        raise ValueError(f"log_retention must be {allowed}, got {value!r}")


def tls(*, domain_name: str | None, has_hosted_zone: bool) -> None:
    """A certificate alone is fine (HTTPS on the load balancer's DNS name); a domain name needs its zone."""
    if domain_name is not None and not has_hosted_zone:
        raise ValueError(
            f"domain_name {domain_name!r} needs hosted_zone (the Route 53 zone for its alias record, and "
            "for its certificate's DNS validation when no certificate is given)"
        )
    if has_hosted_zone and domain_name is None:
        raise ValueError("hosted_zone was given without domain_name: give both, or neither")


def exec_and_read_only(enable_execute_command: bool, read_only_root_filesystem: bool) -> None:
    if enable_execute_command and read_only_root_filesystem:
        raise ValueError(
            "enable_execute_command=True needs read_only_root_filesystem=False: the ECS Exec agent writes "
            "to the container's root filesystem and fails on a read-only one; pass both to accept that"
        )


def non_root(user: str) -> None:
    if _literal(user) and user.split(":", 1)[0] in _ROOT_USERS:
        raise ValueError(f"user must be an unprivileged user (a uid or name other than root/0), got {user!r}")


def name(parameter: str, value: str) -> None:
    if _literal(value) and not _NAME.fullmatch(value):
        raise ValueError(f"{parameter} must be 1-255 letters, digits, hyphens or underscores, got {value!r}")


def cidrs(values: Sequence[str] | None) -> None:
    if values is None:
        return
    if not values:
        raise ValueError("allowed_cidrs must hold at least one CIDR (or be None for the default), got []")
    for cidr in values:
        if _literal(cidr) and not _is_cidr(cidr):
            raise ValueError(
                f"allowed_cidrs entries must be IPv4 or IPv6 CIDRs like 203.0.113.0/24, got {cidr!r}"
            )


def _is_cidr(text: str) -> bool:
    """An address, a slash and a prefix length the address family allows (host bits may be set)."""
    if "/" not in text:
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def ephemeral_storage(value: int | None) -> None:
    if value is not None:
        between("ephemeral_storage_gib", value, 21, 200)
