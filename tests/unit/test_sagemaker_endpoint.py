"""SageMakerEndpoint: the defaults, the model, the least-privilege role, grants, metrics and imports.

The builders at the top are shared by the other ``test_sagemaker_endpoint_*`` modules.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, CfnElement, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Capture, Match, Template

from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact
from ml_inference_cdk.constructs.repository import InferenceRepository
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from tests.support.cdk import ROOT

PROJECT_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
"""cdk.json's context (feature flags included), so tests synthesize what `cdk synth` does."""

MODEL_BUCKET = "model-artifacts-bucket"
MODEL_KEY = "models/iris/model.tar.gz"


def new_stack(name: str = "TestStack") -> Stack:
    return Stack(App(context=PROJECT_CONTEXT), name)


def build_endpoint(stack: Stack | None = None, **props: Any) -> SageMakerEndpoint:
    """An endpoint on an image in an InferenceRepository and a model object in an existing bucket."""
    stack = stack or new_stack()
    repository = InferenceRepository(stack, "Repository")
    bucket = s3.Bucket.from_bucket_name(stack, "ModelBucket", MODEL_BUCKET)
    props.setdefault("image", ContainerImage.from_repository(repository, tag="v1"))
    props.setdefault("model_artifact", ModelArtifact.from_bucket(bucket, MODEL_KEY))
    return SageMakerEndpoint(stack, "Endpoint", **props)


def template_of(endpoint: SageMakerEndpoint) -> Template:
    return Template.from_stack(Stack.of(endpoint))


def logical_id(construct: Any) -> str:
    """The logical id CDK gives a resource (or an L2's resource): computed, never written down in a test."""
    stack = Stack.of(construct)
    element = construct if isinstance(construct, CfnElement) else construct.node.default_child
    resolved = stack.resolve(stack.get_logical_id(element))
    assert isinstance(resolved, str)
    return resolved


def role_id(role: iam.IRole) -> str:
    return logical_id(role.node.default_child)


def statements_of(template: Template, role: iam.IRole) -> list[dict[str, Any]]:
    """Every statement of every inline policy attached to ``role``."""
    ref = {"Ref": role_id(role)}
    found: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if ref in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def permissions_of(template: Template, role: iam.IRole) -> list[tuple[str, Any, Any]]:
    """(action, resource, condition) for every Allow the role's policies hold; lists are flattened."""
    allowed = []
    for statement in statements_of(template, role):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        allowed.extend((a, r, statement.get("Condition")) for a in actions for r in resources)
    return allowed


def resources_for(template: Template, role: iam.IRole, action: str) -> list[Any]:
    return [resource for a, resource, _ in permissions_of(template, role) if a == action]


def flat(value: Any) -> str:
    """A resolved CloudFormation value as text, for asserting on the literal parts of a Fn::Join."""
    return json.dumps(value, sort_keys=True)


@pytest.fixture(scope="module")
def endpoint() -> SageMakerEndpoint:
    return build_endpoint(
        environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SM_MODEL_DIR": "/opt/ml/model"}
    )


@pytest.fixture(scope="module")
def template(endpoint: SageMakerEndpoint) -> Template:
    return template_of(endpoint)


# --- the three SageMaker resources ------------------------------------------------------------------------


def test_endpoint_creates_one_model_one_endpoint_config_and_one_endpoint(template: Template) -> None:
    template.resource_count_is("AWS::SageMaker::Model", 1)
    template.resource_count_is("AWS::SageMaker::EndpointConfig", 1)
    template.resource_count_is("AWS::SageMaker::Endpoint", 1)


def test_endpoint_defaults_to_one_ml_m5_large_instance_in_variant_all_traffic(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": 1,
                    "ModelName": {"Fn::GetAtt": [Match.any_value(), "ModelName"]},
                }
            ],
            "KmsKeyId": Match.absent(),
            "AsyncInferenceConfig": Match.absent(),
            "DataCaptureConfig": Match.absent(),
        },
    )


def test_instance_type_and_count_configure_the_default_variant() -> None:
    endpoint = build_endpoint(instance_type="ml.c5.xlarge", initial_instance_count=3)

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like({"InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 3})
            ]
        },
    )


def test_model_runs_the_bound_image_with_the_model_artifact(template: Template) -> None:
    image = Capture()
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Image": image,
                "ModelDataUrl": f"s3://{MODEL_BUCKET}/{MODEL_KEY}",
                "Mode": "SingleModel",
                "Environment": Match.any_value(),
            },
            "VpcConfig": Match.absent(),
            "EnableNetworkIsolation": Match.absent(),
        },
    )
    assert flat(image.as_object()).endswith('":v1"]]}')


def test_container_environment_is_the_contract_defaults_plus_the_callers_variables(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": Match.object_like(
                {"Environment": {"SM_MODEL_DIR": "/opt/ml/model", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}}
            )
        },
    )


def test_endpoint_runs_its_endpoint_config(template: Template) -> None:
    config_ids = list(template.find_resources("AWS::SageMaker::EndpointConfig"))
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {"EndpointConfigName": {"Fn::GetAtt": [config_ids[0], "EndpointConfigName"]}},
    )


def test_endpoint_gets_a_stable_lowercase_name_from_its_path(template: Template) -> None:
    name = Capture()
    template.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": name})

    assert re.fullmatch(r"teststack-endpoint-[0-9a-f]{8}", name.as_string())
    endpoint = build_endpoint().endpoint.node.default_child
    assert isinstance(endpoint, sagemaker.CfnEndpoint)
    assert name.as_string() == endpoint.endpoint_name


def test_endpoint_name_can_be_chosen() -> None:
    endpoint = build_endpoint(endpoint_name="iris-classifier")

    template_of(endpoint).has_resource_properties(
        "AWS::SageMaker::Endpoint", {"EndpointName": "iris-classifier"}
    )


def test_model_is_created_after_the_roles_policy(endpoint: SageMakerEndpoint, template: Template) -> None:
    policy = endpoint.role.node.find_child("DefaultPolicy").node.default_child

    template.has_resource("AWS::SageMaker::Model", {"DependsOn": Match.array_with([logical_id(policy)])})


def test_attributes_name_the_endpoint_the_model_and_the_variants(endpoint: SageMakerEndpoint) -> None:
    stack = Stack.of(endpoint)
    endpoint_id = logical_id(endpoint.node.find_child("Endpoint"))
    model_id = logical_id(endpoint.node.find_child("Model"))

    assert stack.resolve(endpoint.endpoint_name) == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
    assert stack.resolve(endpoint.endpoint_arn) == {"Ref": endpoint_id}
    assert stack.resolve(endpoint.model_name) == {"Fn::GetAtt": [model_id, "ModelName"]}
    assert endpoint.variant_names == ("AllTraffic",)
    assert stack.resolve(endpoint.model_data_url) == f"s3://{MODEL_BUCKET}/{MODEL_KEY}"


# --- the execution role -----------------------------------------------------------------------------------


def test_execution_role_is_assumed_by_sagemaker_only(template: Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                    }
                ],
                "Version": "2012-10-17",
            },
            "ManagedPolicyArns": Match.absent(),
        },
    )


def test_model_runs_with_the_execution_role(endpoint: SageMakerEndpoint, template: Template) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::Model", {"ExecutionRoleArn": {"Fn::GetAtt": [role_id(endpoint.role), "Arn"]}}
    )


def test_execution_role_pulls_only_from_the_images_repository(
    endpoint: SageMakerEndpoint, template: Template
) -> None:
    repository = Stack.of(endpoint).node.find_child("Repository").node.find_child("Repository")
    repository_arn = {"Fn::GetAtt": [logical_id(repository.node.default_child), "Arn"]}

    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"):
        assert resources_for(template, endpoint.role, action) == [repository_arn]
    assert resources_for(template, endpoint.role, "ecr:GetAuthorizationToken") == ["*"]


def test_execution_role_reads_only_the_model_object(endpoint: SageMakerEndpoint, template: Template) -> None:
    (model_object,) = resources_for(template, endpoint.role, "s3:GetObject")

    assert flat(model_object).endswith(f':s3:::{MODEL_BUCKET}/{MODEL_KEY}"]]}}')
    assert not [
        a
        for a, _, _ in permissions_of(template, endpoint.role)
        if a.startswith("s3:") and a != "s3:GetObject"
    ]


def test_execution_role_writes_logs_only_to_the_endpoints_log_group(
    endpoint: SageMakerEndpoint, template: Template
) -> None:
    name = endpoint.endpoint.node.default_child.endpoint_name
    group = f":log-group:/aws/sagemaker/Endpoints/{name}"

    for action in (
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
    ):
        group_arn, streams_arn = (flat(r) for r in resources_for(template, endpoint.role, action))
        assert group_arn.endswith(f'{group}"]]}}')
        assert streams_arn.endswith(f'{group}:log-stream:*"]]}}')


def test_execution_role_puts_metrics_only_in_the_sagemaker_endpoints_namespace(
    endpoint: SageMakerEndpoint, template: Template
) -> None:
    assert [
        (r, c) for a, r, c in permissions_of(template, endpoint.role) if a == "cloudwatch:PutMetricData"
    ] == [("*", {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}})]


def test_execution_role_gets_no_kms_ec2_sns_or_s3_write_permission_by_default(
    endpoint: SageMakerEndpoint, template: Template
) -> None:
    actions = {a for a, _, _ in permissions_of(template, endpoint.role)}

    assert not {a for a in actions if a.split(":")[0] in ("kms", "ec2", "sns")}
    assert "s3:PutObject" not in actions


def test_a_given_role_gets_the_grants_and_no_role_is_created() -> None:
    stack = new_stack()
    role = iam.Role.from_role_arn(stack, "Own", "arn:aws:iam::123456789012:role/inference")
    endpoint = build_endpoint(stack, role=role)
    template = template_of(endpoint)

    template.resource_count_is("AWS::IAM::Role", 0)
    template.has_resource_properties(
        "AWS::SageMaker::Model", {"ExecutionRoleArn": "arn:aws:iam::123456789012:role/inference"}
    )
    (policy,) = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": ["inference"]}}).values()
    actions = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        actions.update(
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    assert {"ecr:BatchGetImage", "s3:GetObject", "logs:PutLogEvents", "cloudwatch:PutMetricData"} <= actions
    (policy_construct,) = role.node.children
    template.has_resource(
        "AWS::SageMaker::Model", {"DependsOn": [logical_id(policy_construct.node.default_child)]}
    )
    assert endpoint.role is role


# --- grants, metrics and imports --------------------------------------------------------------------------


def test_grant_invoke_allows_invoke_endpoint_on_this_endpoint_only() -> None:
    endpoint = build_endpoint()
    caller = iam.Role(Stack.of(endpoint), "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    endpoint.grant_invoke(caller)
    template = template_of(endpoint)

    assert permissions_of(template, caller) == [
        ("sagemaker:InvokeEndpoint", {"Ref": logical_id(endpoint.node.find_child("Endpoint"))}, None)
    ]


def test_grant_invoke_async_allows_invoke_endpoint_async_on_this_endpoint_only() -> None:
    endpoint = build_endpoint()
    caller = iam.Role(Stack.of(endpoint), "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    endpoint.grant_invoke_async(caller)
    template = template_of(endpoint)

    assert permissions_of(template, caller) == [
        ("sagemaker:InvokeEndpointAsync", {"Ref": logical_id(endpoint.node.find_child("Endpoint"))}, None)
    ]


@pytest.mark.parametrize(
    ("helper", "metric_name", "namespace", "statistic"),
    [
        ("metric_invocations", "Invocations", "AWS/SageMaker", "Sum"),
        ("metric_invocations_4xx", "Invocation4XXErrors", "AWS/SageMaker", "Sum"),
        ("metric_invocations_5xx", "Invocation5XXErrors", "AWS/SageMaker", "Sum"),
        ("metric_model_latency", "ModelLatency", "AWS/SageMaker", "Average"),
        ("metric_overhead_latency", "OverheadLatency", "AWS/SageMaker", "Average"),
        ("metric_cpu_utilization", "CPUUtilization", "/aws/sagemaker/Endpoints", "Average"),
    ],
)
def test_metric_helpers_measure_the_endpoints_first_variant(
    endpoint: SageMakerEndpoint, helper: str, metric_name: str, namespace: str, statistic: str
) -> None:
    metric = getattr(endpoint, helper)()
    stack = Stack.of(endpoint)

    assert (metric.metric_name, metric.namespace, metric.statistic) == (metric_name, namespace, statistic)
    assert metric.period.to_minutes() == 5
    assert stack.resolve(metric.dimensions) == {
        "EndpointName": endpoint.endpoint.node.default_child.endpoint_name,
        "VariantName": "AllTraffic",
    }


def test_metric_takes_a_variant_namespace_and_options(endpoint: SageMakerEndpoint) -> None:
    metric = endpoint.metric(
        "MemoryUtilization",
        variant_name="Blue",
        namespace="/aws/sagemaker/Endpoints",
        statistic="Maximum",
        period=Duration.minutes(1),
    )

    assert (metric.metric_name, metric.namespace, metric.statistic) == (
        "MemoryUtilization",
        "/aws/sagemaker/Endpoints",
        "Maximum",
    )
    assert metric.period.to_seconds() == 60
    assert metric.dimensions["VariantName"] == "Blue"


def test_from_endpoint_name_grants_invoke_on_the_lowercase_endpoint_arn() -> None:
    stack = new_stack()
    imported = SageMakerEndpoint.from_endpoint_name(stack, "Imported", "Iris-Classifier")
    caller = iam.Role(stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    imported.grant_invoke(caller)
    imported.grant_invoke_async(caller)

    ((invoke, arn, _), (invoke_async, arn_async, _)) = permissions_of(Template.from_stack(stack), caller)
    assert (invoke, invoke_async) == ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync")
    assert arn == arn_async
    assert flat(arn).endswith(':endpoint/iris-classifier"]]}')
    assert imported.endpoint_name == "Iris-Classifier"


def test_from_endpoint_name_metrics_default_to_variant_all_traffic() -> None:
    imported = SageMakerEndpoint.from_endpoint_name(new_stack(), "Imported", "iris-classifier")

    assert imported.metric_invocations_5xx().dimensions == {
        "EndpointName": "iris-classifier",
        "VariantName": "AllTraffic",
    }
    assert imported.metric_model_latency(variant_name="Green").dimensions["VariantName"] == "Green"
