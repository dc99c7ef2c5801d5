"""The SageMaker deployment: the inference repository, the image, the model artifact and the endpoint."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.constructs.repository import InferenceRepository
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from ml_inference_cdk.constructs.sagemaker.retraining import RetrainingWorkflow, split_s3_prefix
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

        self.retraining: RetrainingWorkflow | None = None
        if settings.training_data_s3_uri:
            self.retraining = self._retraining(settings, image)

        outputs = {
            "EndpointName": (self.endpoint.endpoint_name, "The name to pass to InvokeEndpoint"),
            "EndpointArn": (self.endpoint.endpoint_arn, "For IAM policies that may invoke the endpoint"),
            "ModelName": (self.endpoint.model_name, "The SageMaker model the endpoint serves"),
            "ImageUri": (self.endpoint.image_uri, "The inference image the model runs"),
            "ModelDataUrl": (self.endpoint.model_data_url, "The model.tar.gz the model serves"),
            "RepositoryUri": (self.repository.repository_uri, "The stack's inference image repository"),
        }
        if self.retraining is not None:
            outputs["RetrainingStateMachineArn"] = (
                self.retraining.state_machine.state_machine_arn,
                "Start an execution to retrain with the image and update the endpoint",
            )
        for output_id, (value, description) in outputs.items():
            CfnOutput(self, output_id, value=value, description=description)
        Aspects.of(self).add(DropImpliedDependsOn())

    def _retraining(self, settings: Settings, image: ContainerImage) -> RetrainingWorkflow:
        """Train with the same image on ``trainingDataS3Uri``, then update the endpoint to the new model."""
        assert settings.training_data_s3_uri is not None
        data_bucket, data_prefix = split_s3_prefix(settings.training_data_s3_uri)
        output_bucket, output_prefix = (
            split_s3_prefix(settings.training_output_s3_uri)
            if settings.training_output_s3_uri
            else (data_bucket, "retraining/")
        )
        data = s3.Bucket.from_bucket_name(self, "TrainingData", data_bucket)
        output = (
            data
            if output_bucket == data_bucket
            else s3.Bucket.from_bucket_name(self, "Output", output_bucket)
        )
        return RetrainingWorkflow(
            self,
            "Retraining",
            endpoint=self.endpoint,
            image=image,
            training_data=data,
            training_prefix=data_prefix,
            output_bucket=output,
            output_prefix=output_prefix,
            hyperparameters=settings.training_hyperparameters,
            instance_type=settings.instance_type,
        )
