"""The constructs: one image, one model artifact, three targets."""

from ml_inference_cdk.constructs.contract import container_environment
from ml_inference_cdk.constructs.eks_deployment import EksInferenceDeployment
from ml_inference_cdk.constructs.fargate_exposure import ListenerAuthentication, WebApplicationFirewall
from ml_inference_cdk.constructs.fargate_service import FargateInferenceService
from ml_inference_cdk.constructs.image import ContainerImage, ContainerImageConfig
from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.constructs.kubernetes import InferenceManifests, Probes
from ml_inference_cdk.constructs.kubernetes_exposure import IngressOidc
from ml_inference_cdk.constructs.model_artifact import ModelArtifact, ModelArtifactConfig, pack_model
from ml_inference_cdk.constructs.nag import acknowledge, apply_aws_solutions_checks
from ml_inference_cdk.constructs.repository import InferenceRepository
from ml_inference_cdk.constructs.sagemaker_deployment import (
    CapacitySize,
    DeploymentGuardrails,
    TrafficRouting,
)
from ml_inference_cdk.constructs.sagemaker_endpoint import (
    ImportedSageMakerEndpoint,
    SageMakerEndpoint,
    SageMakerEndpointBase,
)
from ml_inference_cdk.constructs.sagemaker_options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker_scaling import ScalableInstanceCount
from ml_inference_cdk.constructs.sagemaker_variants import InstanceVariant, ServerlessVariant

__all__ = [
    "AsyncInference",
    "CapacitySize",
    "ContainerImage",
    "ContainerImageConfig",
    "DataCapture",
    "DeploymentGuardrails",
    "DropImpliedDependsOn",
    "EksInferenceDeployment",
    "FargateInferenceService",
    "ImportedSageMakerEndpoint",
    "InferenceManifests",
    "InferenceRepository",
    "IngressOidc",
    "InstanceVariant",
    "ListenerAuthentication",
    "ModelArtifact",
    "ModelArtifactConfig",
    "Probes",
    "SageMakerEndpoint",
    "SageMakerEndpointBase",
    "ScalableInstanceCount",
    "ServerlessVariant",
    "TrafficRouting",
    "WebApplicationFirewall",
    "acknowledge",
    "apply_aws_solutions_checks",
    "container_environment",
    "pack_model",
]
