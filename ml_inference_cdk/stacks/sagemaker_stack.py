"""The SageMaker deployment: the inference repository, the image, the model artifact and the endpoint."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects, CfnOutput, RemovalPolicy, Stack
from constructs import Construct

from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.constructs.repository import InferenceRepository
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from ml_inference_cdk.stacks.settings import Settings


class SageMakerStack(Stack):
    """A SageMaker real-time endpoint serving the image built from ``imageDirectory`` (or ``imageUri``).

    With ``copyImageToRepository`` (the default) the built image is copied into the stack's own ECR
    repository, so the endpoint runs ``<repository>:<asset hash>`` rather than an image in the CDK asset
    repository.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        """Wire the constructs from ``settings``; ``kwargs`` go to ``Stack`` (env, description, tags...)."""
        super().__init__(scope, construct_id, **kwargs)

        self.repository = InferenceRepository(
            self,
            "Repository",
            removal_policy=RemovalPolicy.DESTROY if settings.destroy_on_delete else RemovalPolicy.RETAIN,
        )
        if settings.copy_image_to_repository and not settings.image_uri:
            image = settings.image(copy_to=self.repository)
        else:
            image = settings.image()

        self.endpoint = SageMakerEndpoint(
            self,
            "Endpoint",
            image=image,
            model_artifact=settings.model(),
            instance_type=settings.instance_type,
            initial_instance_count=settings.instance_count,
            # The server reads its model from /opt/ml/model and calls nothing: no network access at all.
            network_isolation=True,
        )

        outputs = {
            "EndpointName": (self.endpoint.endpoint_name, "The name to pass to InvokeEndpoint"),
            "EndpointArn": (self.endpoint.endpoint_arn, "For IAM policies that may invoke the endpoint"),
            "ModelName": (self.endpoint.model_name, "The SageMaker model the endpoint serves"),
            "ImageUri": (self.endpoint.image_uri, "The inference image the model runs"),
            "ModelDataUrl": (self.endpoint.model_data_url, "The model.tar.gz the model serves"),
            "RepositoryUri": (self.repository.repository_uri, "The stack's inference image repository"),
        }
        for output_id, (value, description) in outputs.items():
            CfnOutput(self, output_id, value=value, description=description)
        Aspects.of(self).add(DropImpliedDependsOn())
