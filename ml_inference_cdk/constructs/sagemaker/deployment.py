"""Deployment guardrails: how SageMaker moves traffic to a new endpoint configuration, and when it rolls back.

Without guardrails an update swaps the fleet all at once. With them, SageMaker shifts traffic in steps
(blue/green: all at once, canary or linear; rolling: batches of instances), watches CloudWatch alarms while
it does, and rolls back when one fires. ``SageMakerEndpoint`` creates alarms on 5XX errors and model latency
for every variant by default, and lists them in the endpoint's AutoRollbackConfiguration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch

from ml_inference_cdk.constructs.sagemaker.variants import whole_seconds

MAX_ROLLBACK_ALARMS: Final = 10


@dataclass(frozen=True)
class CapacitySize:
    """A step of a deployment: a number of instances, or a percentage of the fleet."""

    type: Literal["INSTANCE_COUNT", "CAPACITY_PERCENT"]
    value: int

    @staticmethod
    def instance_count(count: int) -> CapacitySize:
        """``count`` instances (>= 1)."""
        if not Token.is_unresolved(count) and count < 1:
            raise ValueError(f"instance_count must be >= 1, got {count}")
        return CapacitySize("INSTANCE_COUNT", count)

    @staticmethod
    def percent(percentage: int) -> CapacitySize:
        """``percentage`` of the fleet (1-100; a canary, linear step or rolling batch allows less)."""
        if not Token.is_unresolved(percentage) and not 1 <= percentage <= 100:
            raise ValueError(f"percent must be 1-100, got {percentage}")
        return CapacitySize("CAPACITY_PERCENT", percentage)

    def check_percent(self, name: str, minimum: int, maximum: int) -> CapacitySize:
        """This size, when it is a percentage within ``minimum``-``maximum``; an instance count passes."""
        percentage = self.value
        if self.type != "CAPACITY_PERCENT" or Token.is_unresolved(percentage):
            return self
        if not minimum <= percentage <= maximum:
            raise ValueError(
                f"{name} must be {minimum}-{maximum}% of the fleet as CapacitySize.percent(), "
                f"got {percentage}%"
            )
        return self


@dataclass(frozen=True)
class TrafficRouting:
    """How a blue/green deployment shifts traffic to the new fleet."""

    type: Literal["ALL_AT_ONCE", "CANARY", "LINEAR"]
    size: CapacitySize | None = None
    wait_seconds: float | None = None

    @staticmethod
    def all_at_once(*, wait: Duration | None = None) -> TrafficRouting:
        """Shift everything at once, then bake for ``termination_wait`` before the old fleet goes.

        Args:
            wait: WaitIntervalInSeconds (0-3600 s). The SageMaker API requires it for every routing type,
                though the CloudFormation schema does not. Default: 0 s: with a single step there is
                nothing to wait between, the baking time of an all-at-once deployment is the blue/green
                ``termination_wait`` (the one value AWS's all-at-once guide sets), and 0 adds nothing to
                the time the deployment counts against ``maximum_execution_timeout``.
        """
        seconds = whole_seconds("wait", wait, 0, 3600)
        return TrafficRouting("ALL_AT_ONCE", None, seconds if seconds is not None else 0)

    @staticmethod
    def canary(*, size: CapacitySize, wait: Duration) -> TrafficRouting:
        """Shift ``size`` (1-50% of the fleet), watch the alarms for ``wait`` (0-3600 s), shift the rest."""
        return TrafficRouting(
            "CANARY", size.check_percent("canary size", 1, 50), whole_seconds("wait", wait, 0, 3600)
        )

    @staticmethod
    def linear(*, step: CapacitySize, wait: Duration) -> TrafficRouting:
        """Shift ``step`` (10-50% of the fleet) at a time, waiting ``wait`` (0-3600 s) between steps."""
        return TrafficRouting(
            "LINEAR", step.check_percent("linear step", 10, 50), whole_seconds("wait", wait, 0, 3600)
        )


@dataclass(frozen=True, kw_only=True)
class DeploymentGuardrails:
    """A blue/green or rolling deployment with automatic rollback; build one with the static factories."""

    strategy: Literal["BLUE_GREEN", "ROLLING"]
    traffic_routing: TrafficRouting | None = None
    maximum_batch_size: CapacitySize | None = None
    rollback_maximum_batch_size: CapacitySize | None = None
    wait_interval_seconds: float | None = None
    termination_wait_seconds: float | None = None
    maximum_execution_timeout_seconds: float | None = None
    alarms: Sequence[cloudwatch.IAlarm] = field(default_factory=tuple)
    default_alarms: bool = True
    error_threshold: int = 1
    latency_threshold: Duration | None = None

    @staticmethod
    def blue_green(
        *,
        traffic_routing: TrafficRouting | None = None,
        termination_wait: Duration | None = None,
        maximum_execution_timeout: Duration | None = None,
        alarms: Sequence[cloudwatch.IAlarm] = (),
        default_alarms: bool = True,
        error_threshold: int = 1,
        latency_threshold: Duration | None = None,
    ) -> DeploymentGuardrails:
        """Provision a new (green) fleet, shift traffic to it, keep the old (blue) one until it is safe.

        Args:
            traffic_routing: all at once, canary or linear. Default: all at once.
            termination_wait: baking time before the old fleet goes (0-3600 s). Default: SageMaker's (0 s).
            maximum_execution_timeout: roll back after this long (600-28800 s). Default: SageMaker's.
            alarms: more alarms that roll the deployment back. Default: none.
            default_alarms: create the 5XX-error and model-latency alarms per variant. Default: True.
            error_threshold: 5XX errors per minute that roll back. Default: 1.
            latency_threshold: mean model latency (per minute, twice in a row) that rolls back. Default: 1 s.

        Raises:
            ValueError: a duration or threshold out of SageMaker's range.
        """
        return DeploymentGuardrails(
            strategy="BLUE_GREEN",
            traffic_routing=traffic_routing or TrafficRouting.all_at_once(),
            termination_wait_seconds=whole_seconds("termination_wait", termination_wait, 0, 3600),
            maximum_execution_timeout_seconds=whole_seconds(
                "maximum_execution_timeout", maximum_execution_timeout, 600, 28800
            ),
            alarms=tuple(alarms),
            default_alarms=default_alarms,
            error_threshold=error_threshold,
            latency_threshold=latency_threshold,
        )

    @staticmethod
    def rolling(
        *,
        maximum_batch_size: CapacitySize,
        wait_interval: Duration,
        rollback_maximum_batch_size: CapacitySize | None = None,
        maximum_execution_timeout: Duration | None = None,
        alarms: Sequence[cloudwatch.IAlarm] = (),
        default_alarms: bool = True,
        error_threshold: int = 1,
        latency_threshold: Duration | None = None,
    ) -> DeploymentGuardrails:
        """Replace the fleet in batches, without doubling it (single instance-variant endpoints only).

        Args:
            maximum_batch_size: instances (or 5-50% of the fleet) replaced per batch.
            wait_interval: watch the alarms this long after each batch (0-3600 s).
            rollback_maximum_batch_size: batch size when rolling back. Default: all at once.
            maximum_execution_timeout: roll back after this long (600-28800 s). Default: SageMaker's.
            alarms: more alarms that roll the deployment back. Default: none.
            default_alarms: create the 5XX-error and model-latency alarms per variant. Default: True.
            error_threshold: 5XX errors per minute that roll back. Default: 1.
            latency_threshold: mean model latency (per minute, twice in a row) that rolls back. Default: 1 s.

        Raises:
            ValueError: a duration or threshold out of SageMaker's range.
        """
        return DeploymentGuardrails(
            strategy="ROLLING",
            maximum_batch_size=maximum_batch_size.check_percent("maximum_batch_size", 5, 50),
            rollback_maximum_batch_size=rollback_maximum_batch_size,
            wait_interval_seconds=whole_seconds("wait_interval", wait_interval, 0, 3600),
            maximum_execution_timeout_seconds=whole_seconds(
                "maximum_execution_timeout", maximum_execution_timeout, 600, 28800
            ),
            alarms=tuple(alarms),
            default_alarms=default_alarms,
            error_threshold=error_threshold,
            latency_threshold=latency_threshold,
        )

    def __post_init__(self) -> None:
        if not Token.is_unresolved(self.error_threshold) and self.error_threshold < 1:
            raise ValueError(f"error_threshold must be >= 1 error per minute, got {self.error_threshold}")
        if self.latency_threshold is not None:
            millis = self.latency_threshold.to_milliseconds(integral=False)
            if not Token.is_unresolved(millis) and millis <= 0:
                raise ValueError(
                    f"latency_threshold must be longer than 0, got {self.latency_threshold.to_human_string()}"
                )
        if len(self.alarms) > MAX_ROLLBACK_ALARMS:
            raise ValueError(f"alarms takes at most {MAX_ROLLBACK_ALARMS} alarms, got {len(self.alarms)}")

    @property
    def latency_threshold_microseconds(self) -> float:
        """ModelLatency is reported in microseconds."""
        threshold = self.latency_threshold or Duration.seconds(1)
        return threshold.to_milliseconds(integral=False) * 1000
