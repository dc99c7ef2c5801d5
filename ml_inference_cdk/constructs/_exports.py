"""The public names of the constructs package that need aws_cdk, imported: what
``ml_inference_cdk.constructs`` loads on the first use of one of them (importing it starts aws_cdk's jsii
runtime, a Node process, about 2 s). The compiling names (``compile_model``, ``CompiledModel``,
``Tolerance``) are not here: they need NumPy, which a CDK app that only deploys may not have."""

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
