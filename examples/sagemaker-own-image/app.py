#!/usr/bin/env python3
"""An example CDK app that depends on ml-inference-cdk as a library (pip install): its own image and model.

It shows the smallest useful composition: your Dockerfile, your model.tar.gz, one SageMaker endpoint, and
the same AwsSolutions checks the library runs on itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from ml_inference_cdk import ContainerImage, ModelArtifact, SageMakerEndpoint, apply_aws_solutions_checks

HERE = Path(__file__).resolve().parent

app = cdk.App()
apply_aws_solutions_checks(app)
stack = cdk.Stack(app, "ExampleEndpointStack")

endpoint = SageMakerEndpoint(
    stack,
    "Endpoint",
    image=ContainerImage.from_asset(HERE / "image"),
    model_artifact=ModelArtifact.from_asset(os.environ.get("MODEL_ARTIFACT", HERE / "model.tar.gz")),
    instance_type="ml.c5.large",
)
consumer = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
endpoint.grant_invoke(consumer)
cdk.CfnOutput(stack, "EndpointName", value=endpoint.endpoint_name)

app.synth()
