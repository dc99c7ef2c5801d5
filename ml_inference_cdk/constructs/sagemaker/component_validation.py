"""What SageMaker allows in an endpoint configuration for inference components, checked at synth time.

An endpoint either serves models named by its variants ("model-based") or hosts inference components, each
naming its own model ("component-based"); SageMaker refuses to place a component on a model-based endpoint
("Inference Components are not supported in this Endpoint"). A component-based configuration's variants
name no model and provide instances for the components' copies, so they are instance variants; its
ExecutionRoleArn is required because no model's role stands in for the endpoint's.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam

from ml_inference_cdk.constructs.sagemaker.model import ModelBase
from ml_inference_cdk.constructs.sagemaker.variants import (
    InstanceVariant,
    ProductionVariant,
    ServerlessVariant,
)


def validate_component_config(model: ModelBase | None, variants: Sequence[ProductionVariant]) -> None:
    """A configuration for inference components: no model anywhere, instance variants only."""
    if model is not None:
        raise ValueError(
            "model cannot be used with inference_components=True: each InferenceComponent names its own "
            "model, and the configuration's variants name none"
        )
    for variant in variants:
        if isinstance(variant, ServerlessVariant):
            raise ValueError(
                f"variant {variant.name!r} is a ServerlessVariant: inference components are placed on the "
                "instances of an InstanceVariant, so a configuration for inference components takes "
                "InstanceVariant only"
            )
        if variant.model is not None:
            raise ValueError(
                f"variant {variant.name!r} names a model, but a configuration for inference components "
                "cannot: SageMaker refuses inference components on an endpoint whose variants serve a model; "
                "name the model in an InferenceComponent instead"
            )


def validate_model_config(
    variants: Sequence[ProductionVariant], execution_role: iam.IRole | None, network_isolation: bool = False
) -> None:
    """A configuration whose variants serve models: no endpoint role or isolation, no scaling to zero."""
    if execution_role is not None:
        raise ValueError(
            "execution_role needs inference_components=True: it is the role of an endpoint that hosts "
            "inference components; in a configuration that serves models, each Model has its own role"
        )
    if network_isolation:
        raise ValueError(
            "network_isolation needs inference_components=True: SageMaker isolates a whole endpoint only "
            "when it hosts inference components; isolate a served model with Model(network_isolation=True)"
        )
    for variant in variants:
        scaling = variant.managed_instance_scaling if isinstance(variant, InstanceVariant) else None
        if scaling is not None and scaling.scales_to_zero:
            raise ValueError(
                f"managed_instance_scaling.min_instance_count of variant {variant.name!r} is 0, but "
                "SageMaker scales an endpoint to zero instances only when it hosts inference components: "
                "pass inference_components=True (and deploy the models as InferenceComponent), or a "
                "minimum >= 1"
            )
