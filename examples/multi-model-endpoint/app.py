#!/usr/bin/env python3
"""An example CDK app: one SageMaker multi-model endpoint serving every model.tar.gz under an S3 prefix.

Upload a model under the prefix and invoke it by name (TargetModel); the endpoint does not change. The app
makes the bucket (or takes yours, context ``modelBucketName``), the endpoint, an invoker role and an alarm on
the model cache hit ratio, with the AwsSolutions checks the library runs on itself.

Context:
    imageUri: an image already pushed (``123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference:1.0``).
        Default: build ml-inference-cdk's own inference image (``inference_image/`` of its repository).
    modelBucketName: serve a prefix of this existing bucket. Default: a new, encrypted bucket.
    modelPrefix: the prefix (folder) of the models, ending with "/". Default: ``models/``.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ml_inference_cdk import (
    ContainerImage,
    ModelArtifact,
    SageMakerEndpoint,
    apply_aws_solutions_checks,
)

HERE = Path(__file__).resolve().parent
INFERENCE_IMAGE = HERE.parents[1] / "inference_image"


class MultiModelEndpointStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        image_uri = self.node.try_get_context("imageUri")
        bucket_name = self.node.try_get_context("modelBucketName")
        prefix = self.node.try_get_context("modelPrefix") or "models/"

        image = (
            ContainerImage.from_image_uri(image_uri)
            if image_uri
            else ContainerImage.from_asset(INFERENCE_IMAGE)
        )
        bucket = (
            s3.Bucket.from_bucket_name(self, "ModelBucket", bucket_name) if bucket_name else self._bucket()
        )

        endpoint = SageMakerEndpoint(
            self,
            "Endpoint",
            image=image,
            model_artifact=ModelArtifact.from_multi_model_prefix(bucket, prefix),
            instance_type="ml.m5.large",
        )
        invoker = iam.Role(self, "Invoker", assumed_by=iam.AccountRootPrincipal())
        endpoint.grant_invoke(invoker)
        endpoint.metric_model_cache_hit().create_alarm(
            self,
            "ModelCacheHitRatio",
            alarm_description="Fewer than half the requests find their model loaded: the instances' memory "
            "is too small for the models in use (models are unloaded and loaded again).",
            threshold=0.5,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        cdk.CfnOutput(self, "EndpointName", value=endpoint.endpoint_name)
        cdk.CfnOutput(self, "ModelBucketName", value=bucket.bucket_name)
        cdk.CfnOutput(self, "ModelPrefix", value=prefix)
        cdk.CfnOutput(self, "ModelDataUrl", value=endpoint.model_data_url)
        cdk.CfnOutput(self, "InvokerRoleArn", value=invoker.role_arn)

    def _bucket(self) -> s3.IBucket:
        """Encrypted, private, TLS only, with its access logged to a bucket of its own (cdk-nag does not ask a
        log bucket to log its own access)."""
        logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
        )
        return s3.Bucket(
            self,
            "Models",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=logs,
            server_access_logs_prefix="models-bucket/",
        )


app = cdk.App()
apply_aws_solutions_checks(app)
MultiModelEndpointStack(app, "MultiModelEndpointStack")
app.synth()
