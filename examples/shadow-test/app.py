#!/usr/bin/env python3
"""Shadow-test a retrained model against the one in production, on one SageMaker endpoint.

Every request goes to the production variant, which answers it; SageMaker copies the request to the shadow
variant, running the candidate model, and drops its answer. The two variants' CloudWatch metrics (latency,
errors, CPU) then compare the candidate with production on live traffic, with no caller ever seeing a
candidate's answer. Promote the candidate by making it the production model; remove the shadow variant to
end the test.

Both models run the same inference image, pushed once to ECR by the image pipeline (``-c imageUri=...``, or
the repository ``-c imageRepository=...`` at ``-c imageTag=...``); each serves its own model.tar.gz.
"""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam

from ml_inference_cdk import (
    ContainerImage,
    InstanceVariant,
    Model,
    ModelArtifact,
    SageMakerEndpoint,
    apply_aws_solutions_checks,
)

HERE = Path(__file__).resolve().parent

app = cdk.App()
apply_aws_solutions_checks(app)
stack = cdk.Stack(app, "ShadowTestStack", description="A production model and a candidate in its shadow")

image_uri = app.node.try_get_context("imageUri")
image = (
    ContainerImage.from_image_uri(image_uri)
    if image_uri
    else ContainerImage.from_repository(
        ecr.Repository.from_repository_name(
            stack, "Images", app.node.try_get_context("imageRepository") or "ml-inference"
        ),
        tag=app.node.try_get_context("imageTag") or "1.0.0",
    )
)
instance_type = app.node.try_get_context("instanceType") or "ml.c5.large"

candidate = Model(
    stack,
    "Candidate",
    image=image,
    model_artifact=ModelArtifact.from_asset(
        os.environ.get("CANDIDATE_MODEL", HERE / "models" / "candidate" / "model.tar.gz")
    ),
)
endpoint = SageMakerEndpoint(
    stack,
    "Endpoint",
    image=image,
    model_artifact=ModelArtifact.from_asset(
        os.environ.get("PRODUCTION_MODEL", HERE / "models" / "production" / "model.tar.gz")
    ),
    variants=[InstanceVariant(name="Production", instance_type=instance_type)],
    # Both variants weigh 1 (the default), as in AWS's own shadow-variant example.
    shadow_variants=[InstanceVariant(name="Candidate", instance_type=instance_type, model=candidate)],
)
consumer = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
endpoint.grant_invoke(consumer)

cdk.CfnOutput(stack, "EndpointName", value=endpoint.endpoint_name)
cdk.CfnOutput(stack, "ProductionModelName", value=endpoint.model_name)
cdk.CfnOutput(stack, "CandidateModelName", value=candidate.model_name)

app.synth()
