"""Model data under an S3 prefix: uncompressed model files (ModelDataSource, CompressionType None) with list
and read grants on exactly that prefix; and the targets that serve one model.tar.gz refusing any prefix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from ml_inference_cdk import ContainerImage, ModelArtifact, SageMakerEndpoint
from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from tests.unit.test_sagemaker_endpoint import (
    MODEL_BUCKET,
    PROJECT_CONTEXT,
    build_endpoint,
    flat,
    new_stack,
    permissions_of,
    template_of,
)
from tests.unit.test_sources import CONSTRUCTS, ENV, IMAGE_URI

PREFIX = "models/iris/"


def uncompressed_endpoint(**props: Any) -> SageMakerEndpoint:
    stack = new_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Bucket", MODEL_BUCKET)
    return build_endpoint(
        stack, model_artifact=ModelArtifact.from_uncompressed_prefix(bucket, PREFIX), **props
    )


@pytest.fixture(scope="module")
def endpoint() -> SageMakerEndpoint:
    return uncompressed_endpoint()


@pytest.fixture(scope="module")
def template(endpoint: SageMakerEndpoint) -> Template:
    return template_of(endpoint)


def test_uncompressed_model_data_is_a_model_data_source_of_the_prefix_with_compression_none(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Mode": "SingleModel",
                "ModelDataUrl": Match.absent(),
                "ModelDataSource": {
                    "S3DataSource": {
                        "S3Uri": f"s3://{MODEL_BUCKET}/{PREFIX}",
                        "S3DataType": "S3Prefix",
                        "CompressionType": "None",
                    }
                },
            }
        },
    )


def test_uncompressed_model_data_serves_one_model_not_a_multi_model_endpoint(
    endpoint: SageMakerEndpoint, template: Template
) -> None:
    assert not endpoint.model.multi_model
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": {"Environment": Match.object_like({"SAGEMAKER_MULTI_MODEL": Match.absent()})}},
    )


def test_uncompressed_model_data_is_read_and_listed_under_exactly_its_prefix(
    endpoint: SageMakerEndpoint, template: Template
) -> None:
    s3_permissions = sorted(
        (p for p in permissions_of(template, endpoint.role) if p[0].startswith("s3:")), key=lambda p: p[0]
    )

    ((read, objects, no_condition), (listing, bucket, condition)) = s3_permissions
    assert (read, no_condition) == ("s3:GetObject", None)
    assert flat(objects).endswith(f':s3:::{MODEL_BUCKET}/{PREFIX}*"]]}}')
    assert listing == "s3:ListBucket"
    assert flat(bucket).endswith(f':s3:::{MODEL_BUCKET}"]]}}')
    assert condition == {"StringLike": {"s3:prefix": f"{PREFIX}*"}}


def test_from_uncompressed_s3_uri_imports_the_bucket_by_name() -> None:
    template = template_of(
        build_endpoint(model_artifact=ModelArtifact.from_uncompressed_s3_uri("s3://weights-bucket/llm/v1/"))
    )

    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "ModelDataSource": {
                    "S3DataSource": Match.object_like({"S3Uri": "s3://weights-bucket/llm/v1/"})
                }
            }
        },
    )


@pytest.mark.parametrize("prefix", ["models/iris", "", "/models/iris/", "models/*/"])
def test_an_uncompressed_prefix_must_be_a_folder_ending_with_a_slash(prefix: str) -> None:
    bucket = s3.Bucket.from_bucket_name(new_stack(), "Bucket", MODEL_BUCKET)
    with pytest.raises(ValueError, match=rf"prefix must .*got {re.escape(repr(prefix))}"):
        ModelArtifact.from_uncompressed_prefix(bucket, prefix)


def test_an_uncompressed_uri_without_the_trailing_slash_is_refused() -> None:
    with pytest.raises(ValueError, match=r"uri must be s3://BUCKET/PREFIX/ .*got 's3://weights/llm'"):
        ModelArtifact.from_uncompressed_s3_uri("s3://weights/llm")


def test_the_uncompressed_prefix_wildcard_is_acknowledged_and_nothing_else_is_found(tmp_path: Path) -> None:
    app = App(context=PROJECT_CONTEXT, outdir=str(tmp_path))
    apply_aws_solutions_checks(app)
    stack = Stack(app, "UncompressedStack")
    bucket = s3.Bucket.from_bucket_name(stack, "Bucket", MODEL_BUCKET)
    build_endpoint(stack, model_artifact=ModelArtifact.from_uncompressed_prefix(bucket, PREFIX))
    app.synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert plugin["violations"] == []
    (reason,) = [v["reason"] for v in plugin["suppressedViolations"] if PREFIX in json.dumps(v)]
    assert "copies to /opt/ml/model" in reason


# --- the targets that serve one model.tar.gz ---------------------------------------------------------------


@pytest.mark.parametrize("construct", ["FargateInferenceService", "EksInferenceDeployment"])
@pytest.mark.parametrize(
    ("artifact", "kind"),
    [
        (ModelArtifact.from_multi_model_s3_uri("s3://models-bucket/tenants/"), "a multi-model prefix"),
        (ModelArtifact.from_uncompressed_s3_uri("s3://models-bucket/iris/"), "an uncompressed prefix"),
    ],
)
def test_ecs_and_eks_refuse_a_prefix_only_sagemaker_serves(
    construct: str, artifact: ModelArtifact, kind: str
) -> None:
    stack = Stack(App(), "Test", env=ENV)
    with pytest.raises(ValueError, match=rf"model_artifact is {kind}, which only SageMaker serves"):
        CONSTRUCTS[construct](stack, ContainerImage.from_image_uri(IMAGE_URI), artifact)

    assert stack.node.try_find_child("Inference") is None
