"""ml-inference-cdk: deploy one scikit-learn inference container to SageMaker, ECS Fargate and EKS.

The package is deliberately not called ``constructs``: a top-level package of that name shadows the
``constructs`` library that aws-cdk-lib imports, and ``import aws_cdk`` then fails (aws/aws-cdk#19301).
"""

from ml_inference_cdk.constructs import (
    AsyncInference,
    CapacitySize,
    ContainerImage,
    ContainerImageConfig,
    DataCapture,
    DeploymentGuardrails,
    EksInferenceDeployment,
    FargateInferenceService,
    ImportedSageMakerEndpoint,
    InferenceManifests,
    InferenceRepository,
    InstanceVariant,
    ModelArtifact,
    ModelArtifactConfig,
    Probes,
    SageMakerEndpoint,
    SageMakerEndpointBase,
    ScalableInstanceCount,
    ServerlessVariant,
    TrafficRouting,
    container_environment,
    pack_model,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncInference",
    "CapacitySize",
    "ContainerImage",
    "ContainerImageConfig",
    "DataCapture",
    "DeploymentGuardrails",
    "EksInferenceDeployment",
    "FargateInferenceService",
    "ImportedSageMakerEndpoint",
    "InferenceManifests",
    "InferenceRepository",
    "InstanceVariant",
    "ModelArtifact",
    "ModelArtifactConfig",
    "Probes",
    "SageMakerEndpoint",
    "SageMakerEndpointBase",
    "ScalableInstanceCount",
    "ServerlessVariant",
    "TrafficRouting",
    "__version__",
    "container_environment",
    "pack_model",
]
