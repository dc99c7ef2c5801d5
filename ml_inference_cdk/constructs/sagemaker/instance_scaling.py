"""Managed instance scaling: SageMaker itself adds and removes a variant's instances, down to zero.

With inference components, an endpoint's instances are a pool that the components' copies are placed on.
``ManagedInstanceScaling`` lets SageMaker grow that pool when copies need room and shrink it when they leave;
a minimum of 0 lets an idle endpoint give back every instance (SageMaker's "scale an endpoint to zero
instances", which works only for endpoints that host inference components).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Token
from aws_cdk import aws_sagemaker as sagemaker


@dataclass(frozen=True, kw_only=True)
class ManagedInstanceScaling:
    """The range SageMaker keeps a variant's instance count in (ProductionVariantManagedInstanceScaling).

    Example::

        InstanceVariant(
            instance_type="ml.c5.large",
            managed_instance_scaling=ManagedInstanceScaling(min_instance_count=0, max_instance_count=2),
        )
    """

    max_instance_count: int
    """Most instances SageMaker provisions for the variant (>= 1). Required."""
    min_instance_count: int = 1
    """Fewest instances SageMaker keeps (>= 0; 0 only with inference components). Default: 1."""

    def __post_init__(self) -> None:
        low, high = self.min_instance_count, self.max_instance_count
        if not Token.is_unresolved(low) and low < 0:
            raise ValueError(f"managed_instance_scaling.min_instance_count must be >= 0, got {low}")
        if not Token.is_unresolved(high) and high < 1:
            raise ValueError(f"managed_instance_scaling.max_instance_count must be >= 1, got {high}")
        if not (Token.is_unresolved(low) or Token.is_unresolved(high)) and low > high:
            raise ValueError(
                "managed_instance_scaling.min_instance_count must be <= max_instance_count, got "
                f"min_instance_count={low} > max_instance_count={high}"
            )

    @property
    def scales_to_zero(self) -> bool:
        """Whether the variant may give back every instance."""
        return not Token.is_unresolved(self.min_instance_count) and self.min_instance_count == 0

    def to_cfn(self) -> sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty:
        return sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
            status="ENABLED",
            min_instance_count=self.min_instance_count,
            max_instance_count=self.max_instance_count,
        )


def validate_initial_count(
    variant_name: str, initial_instance_count: int, scaling: ManagedInstanceScaling
) -> None:
    """The variant starts with no more instances than managed scaling may keep."""
    initial, high = initial_instance_count, scaling.max_instance_count
    if Token.is_unresolved(initial) or Token.is_unresolved(high):
        return
    if initial > high:
        raise ValueError(
            f"initial_instance_count of variant {variant_name!r} must be <= "
            f"managed_instance_scaling.max_instance_count ({high}), got {initial}"
        )
