#!/usr/bin/env python3
"""The CDK app: one inference image and one model, deployed three ways. It only builds the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk

from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from ml_inference_cdk.stacks import EcsStack, EksStack, SageMakerStack, Settings

HERE = Path(__file__).resolve().parent


def create_app(**app_props: Any) -> cdk.App:
    """Build the App with every stack, cdk-nag's AwsSolutions pack applied to all of them."""
    app = cdk.App(**app_props)
    apply_aws_solutions_checks(app)
    settings = Settings.from_context(app.node, base_dir=HERE)
    SageMakerStack(
        app,
        "SageMakerStack",
        settings=settings,
        description="SageMaker real-time endpoint (ml-inference-cdk)",
    )
    EcsStack(
        app, "EcsStack", settings=settings, description="ECS Fargate service behind an ALB (ml-inference-cdk)"
    )
    EksStack(
        app,
        "EksStack",
        settings=settings,
        description="EKS deployment of the inference server (ml-inference-cdk)",
    )
    return app


if __name__ == "__main__":
    create_app().synth()
