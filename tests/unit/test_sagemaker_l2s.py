"""The SageMaker L2s used alone: Model, EndpointConfig and Endpoint, each one CloudFormation resource."""

from __future__ import annotations

import pytest
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from ml_inference_cdk import (
    ContainerImage,
    Endpoint,
    EndpointConfig,
    InferenceRepository,
    InstanceVariant,
    Model,
    ModelArtifact,
    ServerlessVariant,
)
from tests.unit.test_sagemaker_endpoint import MODEL_BUCKET, flat, logical_id, new_stack, resources_for


def build_model(
    stack: Stack, construct_id: str = "Model", key: str = "models/a/model.tar.gz", **props: object
) -> Model:
    repository = stack.node.try_find_child("Repository") or InferenceRepository(stack, "Repository")
    bucket = stack.node.try_find_child("Bucket") or s3.Bucket.from_bucket_name(stack, "Bucket", MODEL_BUCKET)
    return Model(
        stack,
        construct_id,
        image=ContainerImage.from_repository(repository, tag="v1"),  # type: ignore[arg-type]
        model_artifact=ModelArtifact.from_bucket(bucket, key),  # type: ignore[arg-type]
        **props,  # type: ignore[arg-type]
    )


def test_a_model_alone_is_one_sagemaker_model_with_its_own_least_privilege_role() -> None:
    stack = new_stack()
    model = build_model(stack)
    template = Template.from_stack(stack)

    template.resource_count_is("AWS::SageMaker::Model", 1)
    template.resource_count_is("AWS::SageMaker::EndpointConfig", 0)
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"ExecutionRoleArn": {"Fn::GetAtt": [logical_id(model.role.node.default_child), "Arn"]}},
    )
    (readable,) = (flat(r) for r in resources_for(template, model.role, "s3:GetObject"))
    assert readable.endswith(f':s3:::{MODEL_BUCKET}/models/a/model.tar.gz"]]}}')
    assert stack.resolve(model.model_name) == {"Fn::GetAtt": [logical_id(model), "ModelName"]}


def test_a_model_name_sagemaker_would_refuse_is_a_synth_time_error() -> None:
    with pytest.raises(ValueError, match=r"model_name must be 1-63 letters, digits or hyphens.*'my_model'"):
        build_model(new_stack(), model_name="my_model")


def test_an_imported_model_is_served_without_granting_anything() -> None:
    stack = new_stack()
    model = Model.from_model_name(stack, "Imported", "existing-model")
    config = EndpointConfig(stack, "Config", model=model)
    endpoint = Endpoint(stack, "Endpoint", endpoint_config=config)
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig", {"ProductionVariants": [{"ModelName": "existing-model"}]}
    )
    template.resource_count_is("AWS::IAM::Policy", 0)
    assert model.role is None
    assert stack.resolve(endpoint.endpoint_arn) == {"Ref": logical_id(endpoint)}


def test_variants_of_one_configuration_may_serve_different_models() -> None:
    stack = new_stack()
    champion = build_model(stack, "Champion", "models/champion/model.tar.gz")
    challenger = build_model(stack, "Challenger", "models/challenger/model.tar.gz")
    config = EndpointConfig(
        stack,
        "Config",
        model=champion,
        variants=[
            InstanceVariant(name="Champion", initial_weight=0.9),
            InstanceVariant(name="Challenger", initial_weight=0.1, model=challenger),
        ],
    )
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                {"VariantName": "Champion", "ModelName": {"Fn::GetAtt": [logical_id(champion), "ModelName"]}},
                {
                    "VariantName": "Challenger",
                    "ModelName": {"Fn::GetAtt": [logical_id(challenger), "ModelName"]},
                },
            ]
        },
    )
    assert config.models == (champion, challenger)
    assert config.model_of("Challenger") is challenger


def test_a_variant_without_a_model_is_a_synth_time_error_naming_the_variant() -> None:
    with pytest.raises(ValueError, match="variant 'AllTraffic' has no model: pass model= to EndpointConfig"):
        EndpointConfig(new_stack(), "Config")


def test_a_serverless_variant_of_a_model_in_a_vpc_is_refused_by_the_configuration() -> None:
    stack = new_stack()
    model = build_model(stack, vpc=ec2.Vpc(stack, "Vpc"))
    with pytest.raises(ValueError, match="vpc cannot be used with ServerlessVariant 'AllTraffic'"):
        EndpointConfig(stack, "Config", model=model, variants=[ServerlessVariant()])


def test_an_endpoint_grants_each_served_model_its_own_log_group_only() -> None:
    stack = new_stack()
    champion = build_model(stack, "Champion", "models/champion/model.tar.gz")
    challenger = build_model(stack, "Challenger", "models/challenger/model.tar.gz")
    config = EndpointConfig(
        stack,
        "Config",
        model=champion,
        variants=[InstanceVariant(name="Champion"), InstanceVariant(name="Challenger", model=challenger)],
    )
    Endpoint(stack, "Endpoint", endpoint_config=config, endpoint_name="champion-vs-challenger")
    template = Template.from_stack(stack)

    for model in (champion, challenger):
        groups = [flat(r) for r in resources_for(template, model.role, "logs:CreateLogStream")]
        assert len(groups) == 2
        assert groups[0].endswith(':log-group:/aws/sagemaker/Endpoints/champion-vs-challenger"]]}')
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": "champion-vs-challenger",
            "EndpointConfigName": {"Fn::GetAtt": [logical_id(config), "EndpointConfigName"]},
        },
    )


def test_an_endpoint_alone_autoscales_its_variant_by_its_own_name() -> None:
    stack = new_stack()
    config = EndpointConfig(stack, "Config", model=build_model(stack))
    endpoint = Endpoint(stack, "Endpoint", endpoint_config=config)
    endpoint.auto_scale_instance_count(min_capacity=1, max_capacity=3)
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 1,
            "MaxCapacity": 3,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "ResourceId": {
                "Fn::Join": [
                    "",
                    [
                        "endpoint/",
                        {"Fn::GetAtt": [logical_id(endpoint), "EndpointName"]},
                        "/variant/AllTraffic",
                    ],
                ]
            },
        },
    )


def test_the_pattern_exposes_its_l2s() -> None:
    from tests.unit.test_sagemaker_endpoint import build_endpoint

    endpoint = build_endpoint()

    assert endpoint.model.model_name == endpoint.model_name
    assert endpoint.endpoint_config.endpoint_config_name == endpoint.endpoint_config_name
    assert endpoint.endpoint.endpoint_arn == endpoint.endpoint_arn
    assert endpoint.endpoint_config.variants == endpoint.variants
    Template.from_stack(Stack.of(endpoint)).has_resource_properties(
        "AWS::SageMaker::Model", {"PrimaryContainer": {"Mode": "SingleModel", "Image": Match.any_value()}}
    )
