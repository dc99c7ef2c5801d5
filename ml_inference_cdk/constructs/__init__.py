"""The constructs: one image, one model artifact, three targets.

The public names are listed in ``__all__`` and imported from ``_exports`` on first use, so that the modules
that do not need aws_cdk (``packing``, ``contract``, ``feature_schema``: what ``ml-inference-pack`` imports)
load without starting its jsii runtime, a Node process (about 2 s, and a Node on PATH).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml_inference_cdk.compiling import CompiledModel, Tolerance, compile_model
    from ml_inference_cdk.constructs._exports import *  # noqa: F403

__all__ = [
    "AsyncInference",
    "CapacitySize",
    "CompiledModel",
    "ContainerImage",
    "ContainerImageConfig",
    "DataCapture",
    "DeploymentGuardrails",
    "DropImpliedDependsOn",
    "EksInferenceDeployment",
    "Endpoint",
    "EndpointConfig",
    "FargateInferenceService",
    "ImportedModel",
    "ImportedModelPackageGroup",
    "ImportedSageMakerEndpoint",
    "InferenceComponent",
    "InferenceManifests",
    "InferenceRepository",
    "IngressOidc",
    "InstanceVariant",
    "ListenerAuthentication",
    "ManagedInstanceScaling",
    "Model",
    "ModelArtifact",
    "ModelArtifactConfig",
    "ModelBase",
    "ModelPackage",
    "ModelPackageGroup",
    "ModelPackageGroupBase",
    "Probes",
    "RetrainingWorkflow",
    "SageMakerEndpoint",
    "SageMakerEndpointBase",
    "ScalableCopyCount",
    "ScalableInstanceCount",
    "ServerlessVariant",
    "Tolerance",
    "TrafficRouting",
    "WebApplicationFirewall",
    "acknowledge",
    "apply_aws_solutions_checks",
    "compile_model",
    "container_environment",
    "pack_model",
]

_WITHOUT_AWS_CDK = {
    "CompiledModel": "ml_inference_cdk.compiling",
    "Tolerance": "ml_inference_cdk.compiling",
    "compile_model": "ml_inference_cdk.compiling",
    "pack_model": "ml_inference_cdk.constructs.packing",
    "container_environment": "ml_inference_cdk.constructs.contract",
}
"""The names whose modules need no aws_cdk: ``from ml_inference_cdk import pack_model`` loads only these
(and the compiling names need NumPy only when used)."""

if not TYPE_CHECKING:  # type checkers see the names above, and flag a misspelt one

    def __getattr__(name: str) -> Any:
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = _WITHOUT_AWS_CDK.get(name, "ml_inference_cdk.constructs._exports")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
