"""The three stacks the app composes; each wires the constructs for one target."""

from ml_inference_cdk.stacks.ecs_stack import EcsStack
from ml_inference_cdk.stacks.eks_stack import EksStack
from ml_inference_cdk.stacks.sagemaker_stack import SageMakerStack
from ml_inference_cdk.stacks.settings import Settings

__all__ = ["EcsStack", "EksStack", "SageMakerStack", "Settings"]
