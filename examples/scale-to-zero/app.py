#!/usr/bin/env python3
"""Scale to zero: an endpoint for inference components that gives back every instance when idle.

One model runs as an inference component on an endpoint whose instance variant lets SageMaker manage the
instance count between 0 and 2. The component's copy count scales with Application Auto Scaling between 0
and 2: target tracking on invocations per copy scales it in (to no copy, and then no instance), and the
step policy on the NoCapacityInvocationFailures alarm that SageMaker documents brings the first copy (and
instance) back when a request finds none.

Inputs (all optional):
    MODEL_ARTIFACT      the model.tar.gz to serve (default: this repository's build/model/model.tar.gz)
    INFERENCE_IMAGE     the image's build directory (default: this repository's inference_image/)
    -c imageUri=URI     an already-built image instead of building one (a local deploy into moto uses it)
"""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from ml_inference_cdk import (
    ContainerImage,
    Endpoint,
    EndpointConfig,
    InferenceComponent,
    InstanceVariant,
    ManagedInstanceScaling,
    Model,
    ModelArtifact,
    apply_aws_solutions_checks,
)

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]

app = cdk.App()
apply_aws_solutions_checks(app)
stack = cdk.Stack(app, "ScaleToZeroStack")

image_uri = app.node.try_get_context("imageUri")
model = Model(
    stack,
    "Model",
    image=ContainerImage.from_image_uri(image_uri)
    if image_uri
    else ContainerImage.from_asset(os.environ.get("INFERENCE_IMAGE", REPOSITORY / "inference_image")),
    model_artifact=ModelArtifact.from_asset(
        os.environ.get("MODEL_ARTIFACT", REPOSITORY / "build" / "model" / "model.tar.gz")
    ),
    network_isolation=True,  # the container needs no network: SageMaker fetches the image and the model
)

# No model in the configuration: the endpoint hosts inference components, on 0 to 2 ml.c5.large instances,
# with no network access to or from its containers.
config = EndpointConfig(
    stack,
    "Config",
    inference_components=True,
    network_isolation=True,
    variants=[
        InstanceVariant(
            instance_type="ml.c5.large",
            managed_instance_scaling=ManagedInstanceScaling(min_instance_count=0, max_instance_count=2),
        )
    ],
)
endpoint = Endpoint(stack, "Endpoint", endpoint_config=config)

# One copy reserves one of the instance's two vCPUs and 1 GB of its 4 GB.
component = InferenceComponent(stack, "Iris", endpoint=endpoint, model=model, min_memory_mb=1024, cpu_cores=1)

# 0..2 copies: the NoCapacityInvocationFailures alarm and its step policy come with min_capacity=0.
scaling = component.auto_scale_copy_count(min_capacity=0, max_capacity=2)
scaling.scale_on_invocations(
    invocations_per_copy=1,
    scale_in_cooldown=cdk.Duration.minutes(5),
    scale_out_cooldown=cdk.Duration.minutes(5),
)

consumer = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
component.grant_invoke(consumer)
cdk.CfnOutput(stack, "EndpointName", value=endpoint.endpoint_name)
cdk.CfnOutput(stack, "InferenceComponentName", value=component.inference_component_name)

app.synth()
