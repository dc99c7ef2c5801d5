"""A Model that serves a version from the model registry (PrimaryContainer.ModelPackageName)."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Match, Template

from ml_inference_cdk import (
    ContainerImage,
    Endpoint,
    EndpointConfig,
    InstanceVariant,
    Model,
    ModelArtifact,
    ModelPackage,
    ModelPackageGroup,
)
from tests.unit.test_sagemaker_endpoint import build_endpoint, logical_id, permissions_of

PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn/7"


def new_stack() -> Stack:
    return Stack(App(), "Registry", env=Environment(account="123456789012", region="eu-west-1"))


def test_a_model_serves_a_registered_version_by_its_arn() -> None:
    stack = new_stack()
    Model(stack, "Model", model_package=ModelPackage.from_arn(PACKAGE_ARN))

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "ModelPackageName": PACKAGE_ARN,
                "Image": Match.absent(),
                "ModelDataUrl": Match.absent(),
                "Environment": Match.absent(),
            }
        },
    )


def test_the_role_may_describe_exactly_that_version_and_nothing_else() -> None:
    stack = new_stack()
    model = Model(stack, "Model", model_package=ModelPackage.from_arn(PACKAGE_ARN))

    assert permissions_of(Template.from_stack(stack), model.role) == [
        ("sagemaker:DescribeModelPackage", PACKAGE_ARN, None)
    ]


def test_a_version_of_a_group_in_the_same_stack_is_served_and_granted() -> None:
    stack = new_stack()
    group = ModelPackageGroup(stack, "Group", model_package_group_name="churn")
    model = Model(stack, "Model", model_package=group.model_package(7))
    template = Template.from_stack(stack)

    expected = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":sagemaker:eu-west-1:123456789012:model-package/churn/7"],
        ]
    }
    template.has_resource_properties(
        "AWS::SageMaker::Model", {"PrimaryContainer": {"ModelPackageName": expected}}
    )
    assert permissions_of(template, model.role) == [("sagemaker:DescribeModelPackage", expected, None)]


def test_a_registered_version_takes_only_the_callers_environment() -> None:
    # The version brings its own image and environment; the contract's defaults are this repository's image's.
    stack = new_stack()
    Model(
        stack, "Model", model_package=ModelPackage.from_arn(PACKAGE_ARN), environment={"LOG_LEVEL": "debug"}
    )

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::Model", {"PrimaryContainer": {"Environment": {"LOG_LEVEL": "debug"}}}
    )


def test_a_registered_version_has_no_image_or_model_data_of_its_own_here() -> None:
    model = Model(new_stack(), "Model", model_package=ModelPackage.from_arn(PACKAGE_ARN))

    assert (model.image_uri, model.model_data_url) == (None, None)
    assert model.model_package == ModelPackage.from_arn(PACKAGE_ARN)


def test_a_registered_version_is_served_by_an_endpoint_of_the_l2s() -> None:
    stack = new_stack()
    model = Model(stack, "Model", model_package=ModelPackage.from_arn(PACKAGE_ARN))
    config = EndpointConfig(stack, "Config", model=model)
    Endpoint(stack, "Endpoint", endpoint_config=config, endpoint_name="churn")

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like({"ModelName": {"Fn::GetAtt": [logical_id(model), "ModelName"]}})
            ]
        },
    )
    actions = {action for action, _, _ in permissions_of(Template.from_stack(stack), model.role)}
    assert {"sagemaker:DescribeModelPackage", "logs:CreateLogStream"} <= actions


def test_the_pattern_shadow_tests_a_registered_version() -> None:
    stack = Stack(App(), "ShadowOfRegistry")
    candidate = Model(stack, "Candidate", model_package=ModelPackage.from_arn(PACKAGE_ARN))
    build_endpoint(stack, shadow_variants=[InstanceVariant(name="Candidate", model=candidate)])

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ShadowProductionVariants": [
                Match.object_like({"ModelName": {"Fn::GetAtt": [logical_id(candidate), "ModelName"]}})
            ]
        },
    )


def test_a_model_package_excludes_an_image_and_a_model_artifact() -> None:
    with pytest.raises(ValueError, match="model_package cannot be used with image or model_artifact"):
        Model(
            new_stack(),
            "Model",
            model_package=ModelPackage.from_arn(PACKAGE_ARN),
            image=ContainerImage.from_image_uri(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference:1"
            ),
            model_artifact=ModelArtifact.from_s3_uri("s3://models/churn/model.tar.gz"),
        )


def test_a_model_package_arn_as_a_plain_string_names_the_factory() -> None:
    with pytest.raises(
        TypeError, match=r"model_package must be a ModelPackage, got str; pass ModelPackage.from_arn"
    ):
        Model(new_stack(), "Model", model_package=PACKAGE_ARN)  # type: ignore[arg-type]


def test_a_model_without_image_or_package_is_told_what_to_pass() -> None:
    with pytest.raises(TypeError, match="image must be a ContainerImage, got None"):
        Model(new_stack(), "Model")
