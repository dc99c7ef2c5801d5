"""Multi-model endpoints (``Mode: MultiModel``): the container switch, and what SageMaker refuses with them.

A model made from ``ModelArtifact.from_multi_model_prefix`` serves every model.tar.gz under an S3 prefix;
callers name one per request (``TargetModel``). The rules below are the documented ones, checked at synth
time:

- Serverless Inference lists multi-model endpoints among its feature exclusions
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html#serverless-endpoints-how-it-works-exclusions).
- Multi-model endpoints run on every CPU instance type, and on GPU only on the instance types the SageMaker
  guide lists (with the Triton container); Inferentia and Trainium types are in neither list
  (https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-support.html).
- Asynchronous inference cannot name a model: InvokeEndpointAsync has no TargetModel parameter
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointAsync.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from aws_cdk import Token

from ml_inference_cdk.constructs.contract import ENV_MULTI_MODEL, MULTI_MODEL_ENABLED
from ml_inference_cdk.constructs.model_artifact import ModelArtifactConfig
from ml_inference_cdk.constructs.sagemaker.variants import (
    InstanceVariant,
    ProductionVariant,
    ServerlessVariant,
)

GPU_INSTANCE_TYPES: Final = (
    "ml.p2.xlarge",
    "ml.p3.2xlarge",
    "ml.g4dn.xlarge",
    "ml.g4dn.2xlarge",
    "ml.g4dn.4xlarge",
    "ml.g4dn.8xlarge",
    "ml.g4dn.16xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g5.4xlarge",
    "ml.g5.8xlarge",
    "ml.g5.16xlarge",
)
"""The GPU instance types the SageMaker guide lists for multi-model endpoints (multi-model-support.html)."""

_ACCELERATED: Final = re.compile(r"ml\.(?:p|g|gr|inf|trn|dl)\d")
"""GPU (p*, g*, gr*), Inferentia (inf*), Trainium (trn*) and Gaudi (dl*) families: not CPU instance types."""


def container_environment_of(config: ModelArtifactConfig) -> dict[str, str]:
    """``SAGEMAKER_MULTI_MODEL=true`` for a multi-model artifact: the switch the container reads."""
    return {ENV_MULTI_MODEL: MULTI_MODEL_ENABLED} if config.mode == "MultiModel" else {}


def validate_environment(environment: Mapping[str, str] | None) -> None:
    """The model artifact decides multi-model mode; an ``environment`` that says otherwise breaks the model.

    Raises:
        ValueError: ``environment`` sets SAGEMAKER_MULTI_MODEL.
    """
    if environment and ENV_MULTI_MODEL in environment:
        raise ValueError(
            f"environment must not set {ENV_MULTI_MODEL} (got {environment[ENV_MULTI_MODEL]!r}): the model "
            "artifact decides it; pass ModelArtifact.from_multi_model_prefix(bucket, prefix) for a "
            "multi-model endpoint, which sets it to true"
        )


def validate_multi_model_variants(
    variants: Sequence[ProductionVariant], *, async_inference: bool = False
) -> None:
    """The variants that serve a multi-model model, against what SageMaker runs multi-model endpoints on.

    Args:
        variants: the variants serving a multi-model model (none: nothing to check).
        async_inference: whether the endpoint configuration queues requests (InvokeEndpointAsync).

    Raises:
        ValueError: a serverless variant, an instance type without multi-model support, or asynchronous
            inference; the message names the variant and what is allowed.
    """
    for variant in variants:
        if isinstance(variant, ServerlessVariant):
            raise ValueError(
                f"variant {variant.name!r} is a ServerlessVariant serving a multi-model model: SageMaker "
                "serverless endpoints do not support multi-model endpoints; use an InstanceVariant"
            )
        if isinstance(variant, InstanceVariant):
            _validate_instance_type(variant)
    if variants and async_inference:
        raise ValueError(
            "async_inference cannot be used with a multi-model model: InvokeEndpointAsync takes no "
            "TargetModel, so a queued request cannot name its model; invoke with InvokeEndpoint (real-time) "
            f"and TargetModel, or serve one model (variants: {', '.join(v.name for v in variants)})"
        )


def _validate_instance_type(variant: InstanceVariant) -> None:
    instance_type = variant.instance_type
    if Token.is_unresolved(instance_type) or not _ACCELERATED.match(instance_type):
        return
    if instance_type not in GPU_INSTANCE_TYPES:
        raise ValueError(
            f"instance_type {instance_type!r} of variant {variant.name!r} cannot run a multi-model endpoint: "
            "SageMaker runs them on CPU instance types, and on GPU only on "
            f"{', '.join(GPU_INSTANCE_TYPES)} (with the Triton inference container)"
        )
