"""Multi-model endpoints: Mode MultiModel over an S3 prefix, read grants on exactly that prefix, the container
switch, SageMaker's documented refusals at synth time, and the model loading metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from ml_inference_cdk import (
    AsyncInference,
    ContainerImage,
    EndpointConfig,
    InferenceRepository,
    InstanceVariant,
    Model,
    ModelArtifact,
    SageMakerEndpoint,
    ServerlessVariant,
)
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

PREFIX = "tenants/"


def multi_model_artifact(stack: Stack, **props: Any) -> ModelArtifact:
    bucket = stack.node.try_find_child("Bucket") or s3.Bucket.from_bucket_name(stack, "Bucket", MODEL_BUCKET)
    return ModelArtifact.from_multi_model_prefix(bucket, PREFIX, **props)  # type: ignore[arg-type]


def multi_model_endpoint(stack: Stack | None = None, **props: Any) -> SageMakerEndpoint:
    stack = stack or new_stack()
    return build_endpoint(stack, model_artifact=multi_model_artifact(stack), **props)


def build_model(stack: Stack, artifact: ModelArtifact, **props: Any) -> Model:
    repository = stack.node.try_find_child("Repository") or InferenceRepository(stack, "Repository")
    return Model(
        stack,
        "Model",
        image=ContainerImage.from_repository(repository, tag="v1"),  # type: ignore[arg-type]
        model_artifact=artifact,
        **props,
    )


@pytest.fixture(scope="module")
def endpoint() -> SageMakerEndpoint:
    return multi_model_endpoint()


@pytest.fixture(scope="module")
def template(endpoint: SageMakerEndpoint) -> Template:
    return template_of(endpoint)


# --- the model: Mode MultiModel over the prefix -----------------------------------------------------------


def test_a_multi_model_endpoint_serves_its_s3_prefix_in_multi_model_mode(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Mode": "MultiModel",
                "ModelDataUrl": f"s3://{MODEL_BUCKET}/{PREFIX}",
                "ModelDataSource": Match.absent(),
                "MultiModelConfig": Match.absent(),
            }
        },
    )


def test_the_container_is_switched_to_multi_model_mode_by_sagemaker_multi_model_true(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": {"Environment": Match.object_like({"SAGEMAKER_MULTI_MODEL": "true"})}},
    )


def test_a_single_model_container_is_not_switched_to_multi_model_mode() -> None:
    template_of(build_endpoint()).has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Mode": "SingleModel",
                "Environment": Match.object_like({"SAGEMAKER_MULTI_MODEL": Match.absent()}),
            }
        },
    )


def test_a_multi_model_endpoint_reads_exactly_its_prefix(
    endpoint: SageMakerEndpoint, template: Template
) -> None:
    s3_permissions = [p for p in permissions_of(template, endpoint.role) if p[0].startswith("s3:")]

    ((action, resource, condition),) = s3_permissions
    assert (action, condition) == ("s3:GetObject", None)
    assert flat(resource).endswith(f':s3:::{MODEL_BUCKET}/{PREFIX}*"]]}}')


def test_model_caching_false_disables_sagemakers_model_cache() -> None:
    stack = new_stack()
    build_endpoint(stack, model_artifact=multi_model_artifact(stack, model_caching=False))

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": {"Mode": "MultiModel", "MultiModelConfig": {"ModelCacheSetting": "Disabled"}}},
    )


def test_from_multi_model_s3_uri_imports_the_bucket_and_serves_the_prefix() -> None:
    endpoint = build_endpoint(model_artifact=ModelArtifact.from_multi_model_s3_uri("s3://other-bucket/a/b/"))
    template = template_of(endpoint)

    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": {"Mode": "MultiModel", "ModelDataUrl": "s3://other-bucket/a/b/"}},
    )
    (read,) = [r for a, r, _ in permissions_of(template, endpoint.role) if a == "s3:GetObject"]
    assert flat(read).endswith(':s3:::other-bucket/a/b/*"]]}')


def test_a_prefix_of_a_kms_encrypted_bucket_is_decrypted_with_its_key_only() -> None:
    stack = new_stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Bucket", encryption_key=key)
    endpoint = build_endpoint(stack, model_artifact=ModelArtifact.from_multi_model_prefix(bucket, PREFIX))

    decrypts = [
        r for a, r, _ in permissions_of(Template.from_stack(stack), endpoint.role) if a == "kms:Decrypt"
    ]
    assert decrypts == [{"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}]  # type: ignore[arg-type]


def test_the_model_l2_alone_serves_a_multi_model_prefix() -> None:
    stack = new_stack()
    model = build_model(stack, multi_model_artifact(stack))

    assert model.multi_model
    assert model.model_data_url == f"s3://{MODEL_BUCKET}/{PREFIX}"
    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::Model", {"PrimaryContainer": {"Mode": "MultiModel"}}
    )


def test_a_model_from_one_archive_is_not_multi_model() -> None:
    stack = new_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Bucket", MODEL_BUCKET)

    assert not build_model(stack, ModelArtifact.from_bucket(bucket, "a/model.tar.gz")).multi_model


# --- the prefix: what SageMaker and an exact grant need ---------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "tenants", "/tenants/", "tenants/*/", "tenant?/"])
def test_a_prefix_that_is_empty_rooted_open_or_wildcarded_is_refused(prefix: str) -> None:
    bucket = s3.Bucket.from_bucket_name(new_stack(), "Bucket", MODEL_BUCKET)
    with pytest.raises(ValueError, match=rf"prefix must .*got {re.escape(repr(prefix))}"):
        ModelArtifact.from_multi_model_prefix(bucket, prefix)


@pytest.mark.parametrize(
    "uri", ["s3://bucket/tenants", "s3://bucket/", "https://bucket/tenants/", "s3://B/x/"]
)
def test_a_multi_model_uri_without_a_bucket_and_a_folder_prefix_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match=r"uri must be s3://BUCKET/PREFIX/"):
        ModelArtifact.from_multi_model_s3_uri(uri)


def test_environment_may_not_set_the_multi_model_switch() -> None:
    with pytest.raises(ValueError, match=r"environment must not set SAGEMAKER_MULTI_MODEL \(got 'true'\)"):
        build_endpoint(environment={"SAGEMAKER_MULTI_MODEL": "true"})


def test_the_model_l2_refuses_the_multi_model_switch_in_environment_too() -> None:
    stack = new_stack()
    with pytest.raises(ValueError, match=r"environment must not set SAGEMAKER_MULTI_MODEL \(got 'false'\)"):
        build_model(stack, multi_model_artifact(stack), environment={"SAGEMAKER_MULTI_MODEL": "false"})


# --- what SageMaker refuses with a multi-model endpoint ---------------------------------------------------


def test_a_serverless_variant_cannot_serve_a_multi_model_endpoint() -> None:
    with pytest.raises(
        ValueError, match=r"variant 'AllTraffic' is a ServerlessVariant serving a multi-model"
    ):
        multi_model_endpoint(variants=[ServerlessVariant()])


def test_an_endpoint_config_refuses_a_serverless_variant_of_a_multi_model_model() -> None:
    stack = new_stack()
    model = build_model(stack, multi_model_artifact(stack))
    with pytest.raises(ValueError, match=r"serverless endpoints do not support multi-model endpoints"):
        EndpointConfig(stack, "Config", model=model, variants=[ServerlessVariant(name="Serverless")])


def test_a_serverless_variant_of_another_model_may_sit_beside_a_multi_model_model() -> None:
    stack = new_stack()
    multi = build_model(stack, multi_model_artifact(stack))
    bucket = s3.Bucket.from_bucket_name(stack, "Single", MODEL_BUCKET)
    repository = stack.node.find_child("Repository")
    single = Model(
        stack,
        "Single Model",
        image=ContainerImage.from_repository(repository, tag="v1"),  # type: ignore[arg-type]
        model_artifact=ModelArtifact.from_bucket(bucket, "a/model.tar.gz"),
    )
    EndpointConfig(stack, "Config", model=single, variants=[ServerlessVariant()])
    EndpointConfig(stack, "MultiConfig", model=multi)

    Template.from_stack(stack).resource_count_is("AWS::SageMaker::EndpointConfig", 2)


@pytest.mark.parametrize(
    "instance_type", ["ml.inf2.xlarge", "ml.trn1.2xlarge", "ml.g5.12xlarge", "ml.p4d.24xlarge"]
)
def test_an_instance_type_without_multi_model_support_is_refused(instance_type: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"instance_type '{instance_type}' of variant 'AllTraffic' cannot run a multi-model endpoint: "
        r"SageMaker runs them on CPU instance types, and on GPU only on ml\.p2\.xlarge",
    ):
        multi_model_endpoint(instance_type=instance_type)


@pytest.mark.parametrize("instance_type", ["ml.m5.large", "ml.c7g.xlarge", "ml.r6i.2xlarge", "ml.g5.2xlarge"])
def test_cpu_and_the_listed_gpu_instance_types_serve_a_multi_model_endpoint(instance_type: str) -> None:
    template_of(multi_model_endpoint(instance_type=instance_type)).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {"ProductionVariants": [Match.object_like({"InstanceType": instance_type})]},
    )


def test_an_instance_variant_with_an_unsupported_type_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match=r"'ml\.inf1\.xlarge' of variant 'Blue'"):
        multi_model_endpoint(
            variants=[
                InstanceVariant(name="Green"),
                InstanceVariant(name="Blue", instance_type="ml.inf1.xlarge"),
            ]
        )


def test_asynchronous_inference_cannot_serve_a_multi_model_endpoint() -> None:
    stack = new_stack()
    bucket = s3.Bucket(stack, "AsyncBucket")
    with pytest.raises(
        ValueError, match=r"async_inference cannot be used with a multi-model model: .*no TargetModel"
    ):
        multi_model_endpoint(stack, async_inference=AsyncInference(bucket=bucket))


def test_only_the_variant_serving_the_multi_model_model_is_held_to_its_instance_types() -> None:
    stack = new_stack()
    multi = build_model(stack, multi_model_artifact(stack))
    bucket = s3.Bucket.from_bucket_name(stack, "Single", MODEL_BUCKET)
    single = Model(
        stack,
        "SingleModel",
        image=ContainerImage.from_repository(stack.node.find_child("Repository"), tag="v1"),  # type: ignore[arg-type]
        model_artifact=ModelArtifact.from_bucket(bucket, "a/model.tar.gz"),
    )
    EndpointConfig(
        stack,
        "Allowed",
        model=single,
        variants=[
            InstanceVariant(name="Single", instance_type="ml.inf2.xlarge"),
            InstanceVariant(name="Multi", model=multi),
        ],
    )
    with pytest.raises(ValueError, match=r"'ml\.inf2\.xlarge' of variant 'Multi'"):
        EndpointConfig(
            stack,
            "Refused",
            model=single,
            variants=[
                InstanceVariant(name="Single"),
                InstanceVariant(name="Multi", model=multi, instance_type="ml.inf2.xlarge"),
            ],
        )


def test_an_endpoint_config_refuses_asynchronous_inference_for_a_multi_model_model() -> None:
    stack = new_stack()
    model = build_model(stack, multi_model_artifact(stack))
    with pytest.raises(ValueError, match=r"async_inference cannot be used with a multi-model model"):
        EndpointConfig(
            stack, "Config", model=model, async_inference=AsyncInference(bucket=s3.Bucket(stack, "Async"))
        )


# --- the model loading metrics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("helper", "metric_name", "namespace", "statistic"),
    [
        ("metric_model_loading_wait_time", "ModelLoadingWaitTime", "AWS/SageMaker", "Average"),
        ("metric_model_cache_hit", "ModelCacheHit", "AWS/SageMaker", "Average"),
        ("metric_model_downloading_time", "ModelDownloadingTime", "AWS/SageMaker", "Average"),
        ("metric_model_loading_time", "ModelLoadingTime", "AWS/SageMaker", "Average"),
        ("metric_model_unloading_time", "ModelUnloadingTime", "AWS/SageMaker", "Average"),
        ("metric_loaded_model_count", "LoadedModelCount", "/aws/sagemaker/Endpoints", "Average"),
    ],
)
def test_multi_model_metric_helpers_use_sagemakers_namespace_and_statistic(
    endpoint: SageMakerEndpoint, helper: str, metric_name: str, namespace: str, statistic: str
) -> None:
    metric = getattr(endpoint, helper)()

    assert (metric.metric_name, metric.namespace, metric.statistic) == (metric_name, namespace, statistic)
    assert metric.period.to_minutes() == 5
    assert metric.dimensions["VariantName"] == "AllTraffic"
    assert (
        Stack.of(endpoint).resolve(metric.dimensions["EndpointName"])
        == endpoint.endpoint.node.default_child.endpoint_name
    )  # type: ignore[union-attr]


def test_multi_model_metric_helpers_take_a_variant_and_options(endpoint: SageMakerEndpoint) -> None:
    metric = endpoint.metric_model_unloading_time(variant_name="Blue", statistic="SampleCount")

    assert (metric.statistic, metric.dimensions["VariantName"]) == ("SampleCount", "Blue")


def test_an_imported_endpoint_has_the_multi_model_metrics_too() -> None:
    imported = SageMakerEndpoint.from_endpoint_name(new_stack(), "Imported", "tenants-endpoint")

    assert imported.metric_model_cache_hit().dimensions == {
        "EndpointName": "tenants-endpoint",
        "VariantName": "AllTraffic",
    }


# --- cdk-nag ----------------------------------------------------------------------------------------------


def test_the_prefix_wildcard_is_the_only_s3_finding_and_it_is_acknowledged_with_a_reason(
    tmp_path: Path,
) -> None:
    app = App(context=PROJECT_CONTEXT, outdir=str(tmp_path))
    apply_aws_solutions_checks(app)
    multi_model_endpoint(Stack(app, "MultiModelStack"))
    app.synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert plugin["violations"] == []
    reasons = [v["reason"] for v in plugin["suppressedViolations"] if PREFIX in json.dumps(v)]
    assert reasons
    assert all("TargetModel" in reason for reason in reasons)
