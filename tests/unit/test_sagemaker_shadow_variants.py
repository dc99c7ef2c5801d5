"""Shadow variants: a copy of the production variant's requests goes to a second model, its answers dropped.

SageMaker's rules (CreateEndpointConfig, and the shadow tests' exclusions): one production variant and one
shadow variant, names unique across both lists, no serverless, asynchronous or Inf1 endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from ml_inference_cdk import (
    AsyncInference,
    ContainerImage,
    Endpoint,
    EndpointConfig,
    InstanceVariant,
    Model,
    ModelArtifact,
    ServerlessVariant,
)
from tests.unit.test_sagemaker_endpoint import build_endpoint, flat, logical_id, new_stack, resources_for
from tests.unit.test_sagemaker_l2s import build_model


def shadow_config(stack: Stack, **props: Any) -> EndpointConfig:
    production = build_model(stack, "Production", "models/production/model.tar.gz")
    candidate = build_model(stack, "Candidate", "models/candidate/model.tar.gz")
    props.setdefault("variants", [InstanceVariant(name="Production", instance_type="ml.c5.large")])
    props.setdefault(
        "shadow_variants",
        [InstanceVariant(name="Shadow", instance_type="ml.c6i.large", model=candidate, initial_weight=0.5)],
    )
    return EndpointConfig(stack, "Config", model=production, **props)


def test_the_shadow_variant_serves_its_own_model_beside_the_production_variant() -> None:
    stack = new_stack()
    config = shadow_config(stack)
    template = Template.from_stack(stack)

    production, candidate = config.models
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": "Production",
                        "InstanceType": "ml.c5.large",
                        "ModelName": {"Fn::GetAtt": [logical_id(production), "ModelName"]},
                    }
                )
            ],
            "ShadowProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": "Shadow",
                        "InstanceType": "ml.c6i.large",
                        "InitialVariantWeight": 0.5,
                        "ModelName": {"Fn::GetAtt": [logical_id(candidate), "ModelName"]},
                    }
                )
            ],
        },
    )
    assert [v.name for v in config.shadow_variants] == ["Shadow"]
    assert config.model_of("Shadow") is candidate


def test_a_configuration_without_shadow_variants_states_none() -> None:
    stack = new_stack()
    EndpointConfig(stack, "Config", model=build_model(stack))

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::EndpointConfig", {"ShadowProductionVariants": Match.absent()}
    )


def test_a_shadow_variant_without_a_model_of_its_own_serves_the_configurations_model() -> None:
    # Shadow-testing a new instance type with the same model.
    stack = new_stack()
    model = build_model(stack)
    EndpointConfig(
        stack,
        "Config",
        model=model,
        shadow_variants=[InstanceVariant(name="NewInstanceType", instance_type="ml.c7i.large")],
    )

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ShadowProductionVariants": [
                Match.object_like({"ModelName": {"Fn::GetAtt": [logical_id(model), "ModelName"]}})
            ]
        },
    )


def test_the_endpoint_grants_the_shadow_models_role_its_log_group() -> None:
    stack = new_stack()
    config = shadow_config(stack)
    Endpoint(stack, "Endpoint", endpoint_config=config, endpoint_name="shadow-test")
    template = Template.from_stack(stack)

    candidate = config.model_of("Shadow")
    assert candidate.role is not None
    groups = [flat(r) for r in resources_for(template, candidate.role, "logs:CreateLogStream")]
    assert groups[0].endswith(':log-group:/aws/sagemaker/Endpoints/shadow-test"]]}')


def test_the_pattern_takes_a_shadow_variant_with_its_own_model() -> None:
    stack = new_stack()
    candidate = Model(
        stack,
        "Candidate",
        image=ContainerImage.from_image_uri(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-inference:2.0.0"
        ),
        model_artifact=ModelArtifact.from_s3_uri("s3://my-models/iris/v2/model.tar.gz"),
    )
    endpoint = build_endpoint(stack, shadow_variants=[InstanceVariant(name="Shadow", model=candidate)])
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [Match.object_like({"VariantName": "AllTraffic"})],
            "ShadowProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": "Shadow",
                        "ModelName": {"Fn::GetAtt": [logical_id(candidate), "ModelName"]},
                    }
                )
            ],
        },
    )
    assert [v.name for v in endpoint.shadow_variants] == ["Shadow"]
    assert endpoint.variant_names == ("AllTraffic",)
    latency = stack.resolve(endpoint.metric_model_latency(variant_name="Shadow").dimensions)
    assert latency["VariantName"] == "Shadow"


# --- what SageMaker refuses ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 2])
def test_there_is_exactly_one_shadow_variant(count: int) -> None:
    shadows = [InstanceVariant(name=f"Shadow{i}") for i in range(count)]

    with pytest.raises(ValueError, match=rf"shadow_variants must hold exactly one variant .*got {count}"):
        shadow_config(new_stack(), shadow_variants=shadows)


def test_a_shadow_variant_needs_exactly_one_production_variant() -> None:
    variants = [InstanceVariant(name="Blue"), InstanceVariant(name="Green")]

    with pytest.raises(
        ValueError, match=r"shadow_variants need exactly one production variant .*got 2 variants: Blue, Green"
    ):
        shadow_config(new_stack(), variants=variants)


def test_a_shadow_variant_may_not_share_the_production_variants_name() -> None:
    with pytest.raises(
        ValueError, match=r"shadow variant name 'AllTraffic' is also the production variant's"
    ):
        shadow_config(new_stack(), variants=[InstanceVariant()], shadow_variants=[InstanceVariant()])


@pytest.mark.parametrize(
    ("variants", "shadows", "role"),
    [
        pytest.param(
            [ServerlessVariant()], [InstanceVariant(name="Shadow")], "production", id="serverless production"
        ),
        pytest.param(
            [InstanceVariant()], [ServerlessVariant(name="Shadow")], "shadow", id="serverless shadow"
        ),
    ],
)
def test_shadow_testing_is_refused_on_serverless_variants(variants: Any, shadows: Any, role: str) -> None:
    with pytest.raises(
        ValueError, match=rf"shadow_variants cannot be used with the ServerlessVariant .*\({role}\)"
    ):
        shadow_config(new_stack(), variants=variants, shadow_variants=shadows)


@pytest.mark.parametrize(
    ("instance_type", "accepted"),
    [("ml.inf1.xlarge", False), ("ml.inf2.xlarge", True), ("ml.c5.large", True)],
)
def test_shadow_testing_is_refused_on_inf1_instances_only(instance_type: str, accepted: bool) -> None:
    def build() -> None:
        shadow_config(
            new_stack(), shadow_variants=[InstanceVariant(name="Shadow", instance_type=instance_type)]
        )

    if accepted:
        build()
        return
    with pytest.raises(ValueError, match=r"SageMaker shadow tests exclude inf1 instances"):
        build()


def test_shadow_testing_is_refused_with_asynchronous_inference() -> None:
    stack = new_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Async", "async-bucket")

    with pytest.raises(ValueError, match="shadow_variants cannot be used with async_inference"):
        shadow_config(stack, async_inference=AsyncInference(bucket=bucket))


def test_the_pattern_refuses_a_second_production_variant_before_creating_anything() -> None:
    stack = new_stack()
    with pytest.raises(ValueError, match="shadow_variants need exactly one production variant"):
        build_endpoint(
            stack,
            variants=[InstanceVariant(name="Blue"), InstanceVariant(name="Green")],
            shadow_variants=[InstanceVariant(name="Shadow")],
        )
    assert stack.node.try_find_child("Endpoint") is None


def test_a_volume_key_is_refused_when_the_shadow_variant_has_local_nvme_storage() -> None:
    stack = new_stack()
    with pytest.raises(ValueError, match=r"volume_encryption_key cannot be used .*got ml\.g5\.xlarge"):
        shadow_config(
            stack,
            shadow_variants=[InstanceVariant(name="Shadow", instance_type="ml.g5.xlarge")],
            volume_encryption_key=kms.Key(stack, "Key"),
        )
