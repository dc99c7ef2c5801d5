"""Checks the SageMaker constructs run before they create anything.

Each rejects, at synth time, a value or combination SageMaker would reject only at deploy time (after a long
wait for instances), with a ``ValueError`` naming the parameter, the value and what is allowed. Unresolved
tokens are left to CloudFormation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

from aws_cdk import Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from ml_inference_cdk.constructs.sagemaker.deployment import MAX_ROLLBACK_ALARMS, DeploymentGuardrails
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.variants import (
    DEFAULT_INSTANCE_TYPE,
    InstanceVariant,
    ProductionVariant,
    ServerlessVariant,
    instance_family,
    validate_instance_type,
    validate_name,
)

MAX_VARIANTS: Final = 10
MAX_SECURITY_GROUPS: Final = 5
RETAINABLE_VARIANT_PROPERTIES: Final = ("DesiredInstanceCount", "DesiredWeight", "DataCaptureConfig")


def resolve_variants(
    variants: Sequence[ProductionVariant] | None,
    instance_type: str | None,
    initial_instance_count: int | None,
) -> tuple[ProductionVariant, ...]:
    """The endpoint's variants: the given ones, or the default single instance variant."""
    if variants is None:
        if instance_type is not None:
            validate_instance_type(instance_type)
        return (
            InstanceVariant(
                instance_type=instance_type if instance_type is not None else DEFAULT_INSTANCE_TYPE,
                initial_instance_count=initial_instance_count if initial_instance_count is not None else 1,
            ),
        )
    if instance_type is not None or initial_instance_count is not None:
        raise ValueError(
            "instance_type and initial_instance_count describe the default variant; with variants, set "
            f"them on each InstanceVariant (got instance_type={instance_type!r}, "
            f"initial_instance_count={initial_instance_count!r})"
        )
    resolved = tuple(variants)
    if not 1 <= len(resolved) <= MAX_VARIANTS:
        raise ValueError(f"variants must hold 1-{MAX_VARIANTS} variants, got {len(resolved)}")
    duplicates = sorted(name for name, count in Counter(v.name for v in resolved).items() if count > 1)
    if duplicates:
        raise ValueError(
            f"variants must have unique names, got {', '.join(map(repr, duplicates))} more than once"
        )
    weights = [v.initial_weight for v in resolved]
    if not any(Token.is_unresolved(w) for w in weights) and sum(weights) == 0:
        raise ValueError(
            f"variants: at least one initial_weight must be > 0 to receive traffic, got {weights}"
        )
    if len(resolved) > 1 and any(isinstance(v, ServerlessVariant) for v in resolved):
        raise ValueError(
            f"variants: a ServerlessVariant must be the endpoint's only variant, got {len(resolved)} variants"
        )
    return resolved


SHADOW_EXCLUDED_FAMILIES: Final = ("inf1",)
"""Instance families SageMaker shadow tests exclude (Inf1; Elastic Inference is gone from hosting)."""


def resolve_shadow_variants(
    variants: tuple[ProductionVariant, ...],
    shadow_variants: Sequence[ProductionVariant] | None,
    *,
    async_inference: AsyncInference | None,
) -> tuple[ProductionVariant, ...]:
    """The shadow variants SageMaker accepts next to ``variants`` (ShadowProductionVariants).

    SageMaker takes one production variant and one shadow variant, and no shadow test on serverless or
    asynchronous endpoints or on Inf1 instances (the shadow tests' exclusions).
    """
    if shadow_variants is None:
        return ()
    shadows = tuple(shadow_variants)
    if len(shadows) != 1:
        raise ValueError(
            f"shadow_variants must hold exactly one variant (SageMaker allows one shadow variant per "
            f"endpoint), got {len(shadows)}"
        )
    if len(variants) != 1:
        raise ValueError(
            "shadow_variants need exactly one production variant (SageMaker copies its requests to the "
            f"shadow), got {len(variants)} variants: {', '.join(v.name for v in variants)}"
        )
    (production,), (shadow,) = variants, shadows
    if shadow.name == production.name:
        raise ValueError(
            f"shadow variant name {shadow.name!r} is also the production variant's: variant names must be "
            "unique across variants and shadow_variants"
        )
    for role, variant in (("production", production), ("shadow", shadow)):
        if isinstance(variant, ServerlessVariant):
            raise ValueError(
                f"shadow_variants cannot be used with the ServerlessVariant {variant.name!r} ({role}): "
                "SageMaker runs shadow variants on instance variants only"
            )
        family = instance_family(variant.instance_type)
        if family in SHADOW_EXCLUDED_FAMILIES:
            raise ValueError(
                f"shadow_variants cannot be used with instance type {variant.instance_type!r} of the {role} "
                f"variant {variant.name!r}: SageMaker shadow tests exclude "
                f"{', '.join(SHADOW_EXCLUDED_FAMILIES)} instances"
            )
    if async_inference is not None:
        raise ValueError(
            "shadow_variants cannot be used with async_inference: SageMaker shadow tests exclude "
            "asynchronous endpoints"
        )
    return shadows


def validate_combinations(
    variants: tuple[ProductionVariant, ...],
    *,
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
    network_isolation: bool,
    volume_encryption_key: kms.IKey | None,
    async_inference: AsyncInference | None,
    data_capture: DataCapture | None,
    deployment: DeploymentGuardrails | None,
    retain_all_variant_properties: bool,
    exclude_retained_variant_properties: Sequence[str] | None,
    timeouts_given: bool,
) -> None:
    """The combinations of endpoint options SageMaker rejects (every check below, in this order)."""
    validate_network(vpc, vpc_subnets, security_groups)
    validate_serverless(
        variants,
        vpc=vpc is not None,
        network_isolation=network_isolation,
        data_capture=data_capture is not None,
        deployment=deployment is not None,
        async_inference=async_inference is not None,
        timeouts_given=timeouts_given,
    )
    validate_volume_key(variants, volume_encryption_key)
    validate_deployment(variants, deployment)
    validate_retained_properties(retain_all_variant_properties, exclude_retained_variant_properties)


def validate_network(
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
) -> None:
    """A model's network: subnets and security groups only with a VPC, and 1-5 security groups."""
    if vpc is None and (vpc_subnets is not None or security_groups):
        raise ValueError("vpc_subnets and security_groups need vpc, got no vpc")
    if security_groups is not None and not 1 <= len(security_groups) <= MAX_SECURITY_GROUPS:
        raise ValueError(
            f"security_groups takes 1-{MAX_SECURITY_GROUPS} security groups (or None for a new one), "
            f"got {len(security_groups)}"
        )


def validate_serverless(
    variants: Sequence[ProductionVariant],
    *,
    vpc: bool = False,
    network_isolation: bool = False,
    data_capture: bool = False,
    deployment: bool = False,
    async_inference: bool = False,
    timeouts_given: bool = False,
) -> None:
    """What a serverless variant cannot be combined with (each flag says whether that option is given)."""
    serverless = [v for v in variants if isinstance(v, ServerlessVariant)]
    if not serverless:
        return
    rejected = {
        "vpc": vpc,
        "network_isolation": network_isolation,
        "data_capture": data_capture,
        "deployment": deployment,
        "async_inference": async_inference,
        "container_startup_health_check_timeout/model_data_download_timeout": timeouts_given,
    }
    for parameter, given in rejected.items():
        if given:
            raise ValueError(
                f"{parameter} cannot be used with ServerlessVariant {serverless[0].name!r}: SageMaker "
                "serverless endpoints support none of vpc, network_isolation, data_capture, deployment "
                "guardrails, async_inference or instance startup timeouts"
            )


def validate_volume_key(
    variants: Sequence[ProductionVariant], volume_encryption_key: kms.IKey | None
) -> None:
    if volume_encryption_key is not None:
        local = [v.instance_type for v in variants if isinstance(v, InstanceVariant) and v.local_storage]
        if local:
            raise ValueError(
                "volume_encryption_key cannot be used with instance types that have local NVMe storage "
                "(the instance's hardware encrypts that storage and SageMaker does not use the key there), "
                f"got {', '.join(local)}"
            )


def validate_deployment(
    variants: Sequence[ProductionVariant], deployment: DeploymentGuardrails | None
) -> None:
    if deployment is None:
        return
    if deployment.strategy == "ROLLING" and len(variants) > 1:
        raise ValueError(
            "deployment: SageMaker allows rolling deployments on single-variant endpoints only, "
            f"got {len(variants)} variants; use DeploymentGuardrails.blue_green()"
        )
    alarms = (2 * len(variants) if deployment.default_alarms else 0) + len(deployment.alarms)
    if alarms > MAX_ROLLBACK_ALARMS:
        raise ValueError(
            f"deployment: an endpoint takes at most {MAX_ROLLBACK_ALARMS} rollback alarms, got {alarms} "
            "(2 default alarms per variant plus alarms); pass fewer alarms or default_alarms=False"
        )


def validate_retained_properties(
    retain_all_variant_properties: bool, exclude_retained_variant_properties: Sequence[str] | None
) -> None:
    excluded = list(exclude_retained_variant_properties or [])
    if excluded and not retain_all_variant_properties:
        raise ValueError("exclude_retained_variant_properties needs retain_all_variant_properties=True")
    for name in excluded:
        if name not in RETAINABLE_VARIANT_PROPERTIES:
            raise ValueError(
                f"exclude_retained_variant_properties must hold {', '.join(RETAINABLE_VARIANT_PROPERTIES)}, "
                f"got {name!r}"
            )


def validate_endpoint_name(name: str) -> None:
    validate_name("endpoint_name", name)


def validate_autoscaling(
    variants: tuple[ProductionVariant, ...], variant_name: str, min_capacity: int, max_capacity: int
) -> None:
    """Autoscaling of one variant's instance count, as Application Auto Scaling and SageMaker allow it."""
    variant = next((v for v in variants if v.name == variant_name), None)
    if variant is None:
        names = ", ".join(v.name for v in variants)
        raise ValueError(f"variant_name must be one of {names}, got {variant_name!r}")
    if isinstance(variant, ServerlessVariant):
        raise ValueError(
            f"variant_name {variant_name!r} is a ServerlessVariant: it scales by itself up to "
            "max_concurrency; autoscaling the instance count applies to InstanceVariant only"
        )
    if variant.burstable:
        raise ValueError(
            f"instance_type {variant.instance_type!r} of variant {variant_name!r} is burstable: SageMaker "
            "does not autoscale ml.t* instances; use another family"
        )
    if Token.is_unresolved(min_capacity) or Token.is_unresolved(max_capacity):
        return
    if min_capacity < 1:
        raise ValueError(
            f"min_capacity must be >= 1 (an instance endpoint keeps one instance), got {min_capacity}"
        )
    if min_capacity > max_capacity:
        raise ValueError(
            f"min_capacity must be <= max_capacity, got min_capacity={min_capacity} > "
            f"max_capacity={max_capacity}"
        )
