"""The constructs: one image, one model artifact, three targets."""

from ml_inference_cdk.compiling import CompiledModel, Tolerance, compile_model
from ml_inference_cdk.constructs.contract import container_environment
from ml_inference_cdk.constructs.ecs.exposure import ListenerAuthentication, WebApplicationFirewall
from ml_inference_cdk.constructs.ecs.service import FargateInferenceService
from ml_inference_cdk.constructs.eks.deployment import EksInferenceDeployment
from ml_inference_cdk.constructs.eks.exposure import IngressOidc
from ml_inference_cdk.constructs.eks.manifests import InferenceManifests, Probes
from ml_inference_cdk.constructs.image import ContainerImage, ContainerImageConfig
from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.constructs.model_artifact import ModelArtifact, ModelArtifactConfig, pack_model
from ml_inference_cdk.constructs.nag import acknowledge, apply_aws_solutions_checks
from ml_inference_cdk.constructs.repository import InferenceRepository
from ml_inference_cdk.constructs.sagemaker.component_scaling import ScalableCopyCount
from ml_inference_cdk.constructs.sagemaker.deployment import (
    CapacitySize,
    DeploymentGuardrails,
    TrafficRouting,
)
from ml_inference_cdk.constructs.sagemaker.endpoint import Endpoint
from ml_inference_cdk.constructs.sagemaker.endpoint_base import (
    ImportedSageMakerEndpoint,
    SageMakerEndpointBase,
)
from ml_inference_cdk.constructs.sagemaker.endpoint_config import EndpointConfig
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from ml_inference_cdk.constructs.sagemaker.inference_component import InferenceComponent
from ml_inference_cdk.constructs.sagemaker.instance_scaling import ManagedInstanceScaling
from ml_inference_cdk.constructs.sagemaker.model import ImportedModel, Model, ModelBase
from ml_inference_cdk.constructs.sagemaker.model_registry import (
    ImportedModelPackageGroup,
    ModelPackage,
    ModelPackageGroup,
    ModelPackageGroupBase,
)
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.retraining import RetrainingWorkflow
from ml_inference_cdk.constructs.sagemaker.scaling import ScalableInstanceCount
from ml_inference_cdk.constructs.sagemaker.variants import InstanceVariant, ServerlessVariant

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
