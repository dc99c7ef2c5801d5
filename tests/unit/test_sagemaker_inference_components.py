"""Inference components: an endpoint configuration without a model, and the InferenceComponent L2.

The endpoint configuration names no model and carries an execution role; its instance variants may let
SageMaker manage the instance count, down to zero. Each InferenceComponent places one model on the endpoint
with the compute one copy reserves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from ml_inference_cdk import (
    Endpoint,
    EndpointConfig,
    InferenceComponent,
    InstanceVariant,
    ManagedInstanceScaling,
    Model,
    SageMakerEndpoint,
    ServerlessVariant,
    apply_aws_solutions_checks,
)
from tests.unit.test_sagemaker_endpoint import (
    PROJECT_CONTEXT,
    build_endpoint,
    flat,
    logical_id,
    new_stack,
    permissions_of,
    resources_for,
)
from tests.unit.test_sagemaker_l2s import build_model

SCALE_TO_ZERO = ManagedInstanceScaling(min_instance_count=0, max_instance_count=2)


def component_config(stack: Stack, **props: Any) -> EndpointConfig:
    props.setdefault(
        "variants",
        [InstanceVariant(instance_type="ml.c5.large", managed_instance_scaling=SCALE_TO_ZERO)],
    )
    return EndpointConfig(stack, "Config", inference_components=True, **props)


def build_component(stack: Stack | None = None, **props: Any) -> InferenceComponent:
    """A model on an endpoint for inference components, 1 GB and one core per copy."""
    stack = stack or new_stack()
    model = build_model(stack)
    endpoint = Endpoint(stack, "Endpoint", endpoint_config=component_config(stack))
    props.setdefault("min_memory_mb", 1024)
    return InferenceComponent(stack, "Iris", endpoint=endpoint, model=model, **props)


def template_of(construct: Any) -> Template:
    return Template.from_stack(Stack.of(construct))


def config_of(template: Template) -> dict[str, Any]:
    (config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    properties: dict[str, Any] = config["Properties"]
    return properties


# --- the endpoint configuration ---------------------------------------------------------------------------


def test_a_configuration_for_inference_components_names_no_model_in_its_variants() -> None:
    stack = new_stack()
    component_config(stack)

    (variant,) = config_of(Template.from_stack(stack))["ProductionVariants"]
    assert "ModelName" not in variant
    assert variant["InstanceType"] == "ml.c5.large"


def test_a_configuration_for_inference_components_runs_with_a_new_role_assumed_by_sagemaker_only() -> None:
    stack = new_stack()
    config = component_config(stack)
    template = Template.from_stack(stack)

    assert config.execution_role is not None
    assert config_of(template)["ExecutionRoleArn"] == {
        "Fn::GetAtt": [logical_id(config.execution_role.node.default_child), "Arn"]
    }
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
            "Description": Match.string_like_regexp("inference components"),
        },
    )
    assert config.inference_components
    assert config.models == ()


def test_the_execution_role_can_be_brought() -> None:
    stack = new_stack()
    role = iam.Role(stack, "Mine", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    config = component_config(stack, execution_role=role)

    assert config.execution_role is role
    assert config_of(Template.from_stack(stack))["ExecutionRoleArn"] == {
        "Fn::GetAtt": [logical_id(role), "Arn"]
    }
    Template.from_stack(stack).resource_count_is("AWS::IAM::Role", 1)  # none created next to it


def test_a_model_based_configuration_has_no_execution_role() -> None:
    stack = new_stack()
    config = EndpointConfig(stack, "Config", model=build_model(stack))

    assert config.execution_role is None
    assert not config.inference_components
    assert "ExecutionRoleArn" not in config_of(Template.from_stack(stack))


def test_managed_instance_scaling_is_enabled_with_its_minimum_and_maximum() -> None:
    stack = new_stack()
    component_config(stack)

    (variant,) = config_of(Template.from_stack(stack))["ProductionVariants"]
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 0,
        "MaxInstanceCount": 2,
    }
    assert variant["InitialInstanceCount"] == 1


def test_managed_instance_scaling_also_serves_a_model_based_variant_with_a_minimum_of_one() -> None:
    stack = new_stack()
    scaling = ManagedInstanceScaling(min_instance_count=1, max_instance_count=3)
    EndpointConfig(
        stack,
        "Config",
        model=build_model(stack),
        variants=[InstanceVariant(managed_instance_scaling=scaling)],
    )

    (variant,) = config_of(Template.from_stack(stack))["ProductionVariants"]
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 1,
        "MaxInstanceCount": 3,
    }


def test_a_variant_without_managed_instance_scaling_has_no_such_property() -> None:
    stack = new_stack()
    component_config(stack, variants=[InstanceVariant()])

    (variant,) = config_of(Template.from_stack(stack))["ProductionVariants"]
    assert "ManagedInstanceScaling" not in variant


def test_the_endpoint_grants_the_execution_role_its_log_group_and_metrics_and_waits_for_them() -> None:
    stack = new_stack()
    config = component_config(stack)
    endpoint = Endpoint(stack, "Endpoint", endpoint_config=config)
    template = Template.from_stack(stack)
    assert config.execution_role is not None

    (group, streams) = (flat(r) for r in resources_for(template, config.execution_role, "logs:PutLogEvents"))
    name = endpoint.node.default_child.endpoint_name  # type: ignore[union-attr]
    assert group.endswith(f':log-group:/aws/sagemaker/Endpoints/{name}"]]}}')
    assert streams.endswith(f':log-group:/aws/sagemaker/Endpoints/{name}:log-stream:*"]]}}')
    assert [
        (r, c)
        for a, r, c in permissions_of(template, config.execution_role)
        if a == "cloudwatch:PutMetricData"
    ] == [("*", {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}})]
    depends_on = template.find_resources("AWS::SageMaker::Endpoint")[logical_id(endpoint)]["DependsOn"]
    assert any(dependency.startswith("ConfigExecutionRoleDefaultPolicy") for dependency in depends_on)


def test_the_volume_key_is_granted_to_the_execution_role() -> None:
    stack = new_stack()
    key = kms.Key(stack, "VolumeKey")
    config = component_config(stack, volume_encryption_key=key)
    assert config.execution_role is not None

    assert "kms:CreateGrant" in [
        a for a, _, _ in permissions_of(Template.from_stack(stack), config.execution_role)
    ]


def test_network_isolation_isolates_every_container_on_an_endpoint_for_inference_components() -> None:
    stack = new_stack()
    component_config(stack, network_isolation=True)

    assert config_of(Template.from_stack(stack))["EnableNetworkIsolation"] is True


def test_an_endpoint_for_inference_components_is_not_isolated_by_default() -> None:
    stack = new_stack()
    component_config(stack)

    assert "EnableNetworkIsolation" not in config_of(Template.from_stack(stack))


def test_network_isolation_of_a_configuration_that_serves_models_is_refused() -> None:
    stack = new_stack()
    with pytest.raises(
        ValueError, match=r"network_isolation needs inference_components=True.*Model\(network"
    ):
        EndpointConfig(stack, "Config", model=build_model(stack), network_isolation=True)


def test_a_model_for_the_whole_configuration_is_refused_with_inference_components() -> None:
    stack = new_stack()
    with pytest.raises(ValueError, match=r"model cannot be used with inference_components=True"):
        component_config(stack, model=build_model(stack))


def test_a_variant_with_its_own_model_is_refused_with_inference_components() -> None:
    stack = new_stack()
    variant = InstanceVariant(name="Blue", model=build_model(stack))
    with pytest.raises(ValueError, match=r"variant 'Blue' names a model.*InferenceComponent"):
        component_config(stack, variants=[variant])


def test_a_serverless_variant_is_refused_with_inference_components() -> None:
    with pytest.raises(
        ValueError, match=r"variant 'AllTraffic' is a ServerlessVariant.*InstanceVariant only"
    ):
        component_config(new_stack(), variants=[ServerlessVariant()])


def test_an_execution_role_without_inference_components_is_refused() -> None:
    stack = new_stack()
    role = iam.Role(stack, "Mine", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    with pytest.raises(ValueError, match=r"execution_role needs inference_components=True"):
        EndpointConfig(stack, "Config", model=build_model(stack), execution_role=role)


def test_scaling_to_zero_instances_without_inference_components_is_refused() -> None:
    stack = new_stack()
    with pytest.raises(
        ValueError, match=r"min_instance_count of variant 'AllTraffic' is 0.*only when it hosts inference"
    ):
        EndpointConfig(
            stack,
            "Config",
            model=build_model(stack),
            variants=[InstanceVariant(managed_instance_scaling=SCALE_TO_ZERO)],
        )


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        (-1, 2, r"min_instance_count must be >= 0, got -1"),
        (0, 0, r"max_instance_count must be >= 1, got 0"),
        (3, 2, r"min_instance_count must be <= max_instance_count, got min_instance_count=3 > "),
    ],
)
def test_managed_instance_scaling_bounds_are_checked(low: int, high: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ManagedInstanceScaling(min_instance_count=low, max_instance_count=high)


def test_a_variant_cannot_start_with_more_instances_than_managed_scaling_allows() -> None:
    with pytest.raises(
        ValueError,
        match=r"initial_instance_count of variant 'AllTraffic' must be <= .*max_instance_count \(2\), got 3",
    ):
        InstanceVariant(initial_instance_count=3, managed_instance_scaling=SCALE_TO_ZERO)


# --- the inference component --------------------------------------------------------------------------------


def test_an_inference_component_places_its_model_on_the_endpoints_first_variant() -> None:
    component = build_component()
    template = template_of(component)
    endpoint = component.endpoint

    template.resource_count_is("AWS::SageMaker::InferenceComponent", 1)
    template.has_resource_properties(
        "AWS::SageMaker::InferenceComponent",
        {
            "EndpointName": {"Fn::GetAtt": [logical_id(endpoint), "EndpointName"]},
            "VariantName": "AllTraffic",
            "InferenceComponentName": component.inference_component_name,
            "Specification": {
                "ModelName": {"Fn::GetAtt": [logical_id(component.model), "ModelName"]},
                "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 1024},
                "StartupParameters": Match.absent(),
            },
            "RuntimeConfig": {"CopyCount": 1},
        },
    )


def test_an_inference_component_gets_a_stable_lowercase_name_from_its_path() -> None:
    first, again = build_component(), build_component()

    assert re.fullmatch(r"teststack-iris-[0-9a-f]{8}", first.inference_component_name)
    assert again.inference_component_name == first.inference_component_name


def test_every_compute_requirement_and_startup_parameter_maps_to_its_property() -> None:
    component = build_component(
        min_memory_mb=2048,
        max_memory_mb=4096,
        cpu_cores=1.5,
        accelerator_devices=1,
        copy_count=0,
        variant_name="AllTraffic",
        container_startup_health_check_timeout=Duration.minutes(5),
        model_data_download_timeout=Duration.minutes(10),
        inference_component_name="iris-v1",
    )

    template_of(component).has_resource_properties(
        "AWS::SageMaker::InferenceComponent",
        {
            "InferenceComponentName": "iris-v1",
            "Specification": {
                "ComputeResourceRequirements": {
                    "MinMemoryRequiredInMb": 2048,
                    "MaxMemoryRequiredInMb": 4096,
                    "NumberOfCpuCoresRequired": 1.5,
                    "NumberOfAcceleratorDevicesRequired": 1,
                },
                "StartupParameters": {
                    "ContainerStartupHealthCheckTimeoutInSeconds": 300,
                    "ModelDataDownloadTimeoutInSeconds": 600,
                },
            },
            "RuntimeConfig": {"CopyCount": 0},
        },
    )
    assert component.inference_component_name == "iris-v1"


def test_an_inference_component_on_a_named_endpoint_refers_to_it_by_name() -> None:
    stack = new_stack()
    component = InferenceComponent(
        stack,
        "Iris",
        endpoint="shared-endpoint",
        model=Model.from_model_name(stack, "M", "iris"),
        min_memory_mb=512,
    )

    template_of(component).has_resource_properties(
        "AWS::SageMaker::InferenceComponent",
        {
            "EndpointName": "shared-endpoint",
            "VariantName": "AllTraffic",
            "Specification": {"ModelName": "iris"},
        },
    )


def test_an_inference_component_on_an_imported_endpoint_uses_its_variant() -> None:
    stack = new_stack()
    imported = SageMakerEndpoint.from_endpoint_name(stack, "Shared", "shared-endpoint", variant_name="Pool")
    component = InferenceComponent(
        stack, "Iris", endpoint=imported, model=Model.from_model_name(stack, "M", "iris"), min_memory_mb=512
    )

    assert component.variant_name == "Pool"
    template_of(component).has_resource_properties(
        "AWS::SageMaker::InferenceComponent", {"EndpointName": "shared-endpoint", "VariantName": "Pool"}
    )


def test_the_models_role_may_write_the_endpoints_and_the_components_log_groups() -> None:
    component = build_component()
    template = template_of(component)
    model = component.model
    assert isinstance(model, Model)

    endpoint_name = component.endpoint.node.default_child.endpoint_name  # type: ignore[union-attr]
    groups = [flat(r) for r in resources_for(template, model.role, "logs:PutLogEvents")]
    assert any(g.endswith(f':log-group:/aws/sagemaker/Endpoints/{endpoint_name}"]]}}') for g in groups)
    assert any(
        g.endswith(f':log-group:/aws/sagemaker/InferenceComponents/{component.inference_component_name}"]]}}')
        for g in groups
    )


def test_the_execution_role_may_write_the_components_log_group() -> None:
    component = build_component()
    endpoint = component.endpoint
    assert isinstance(endpoint, Endpoint)
    role = endpoint.endpoint_config.execution_role
    assert role is not None

    groups = [flat(r) for r in resources_for(template_of(component), role, "logs:CreateLogStream")]
    assert any(
        g.endswith(
            f':log-group:/aws/sagemaker/InferenceComponents/{component.inference_component_name}:log-stream:*"]]}}'
        )
        for g in groups
    )


def test_grant_invoke_allows_invoke_endpoint_on_the_endpoint_and_the_component_only() -> None:
    component = build_component()
    stack = Stack.of(component)
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    component.grant_invoke(caller)

    assert sorted(map(flat, permissions_of(template_of(component), caller))) == sorted(
        map(
            flat,
            [
                ("sagemaker:InvokeEndpoint", {"Ref": logical_id(component.endpoint)}, None),
                (
                    "sagemaker:InvokeEndpoint",
                    {"Fn::GetAtt": [logical_id(component), "InferenceComponentArn"]},
                    None,
                ),
            ],
        )
    )
    assert stack.resolve(component.inference_component_arn) == {
        "Fn::GetAtt": [logical_id(component), "InferenceComponentArn"]
    }


def test_metrics_are_per_component_in_the_sagemaker_namespace() -> None:
    component = build_component(inference_component_name="iris-v1")

    invocations = component.metric_invocations()
    assert (invocations.namespace, invocations.metric_name, invocations.statistic) == (
        "AWS/SageMaker",
        "Invocations",
        "Sum",
    )
    assert invocations.dimensions == {"InferenceComponentName": "iris-v1"}
    assert invocations.period.to_seconds() == 300
    assert component.metric_model_latency().statistic == "Average"
    assert component.metric_invocations_4xx().metric_name == "Invocation4XXErrors"
    assert component.metric_invocations_5xx().metric_name == "Invocation5XXErrors"
    failures = component.metric_no_capacity_invocation_failures(period=Duration.minutes(1))
    assert (failures.metric_name, failures.dimensions, failures.period.to_seconds()) == (
        "NoCapacityInvocationFailures",
        {"InferenceComponentName": "iris-v1"},
        60,
    )


def test_a_metric_can_come_from_the_components_utilization_namespace() -> None:
    component = build_component(inference_component_name="iris-v1")

    utilization = component.metric(
        "CPUUtilizationNormalized", namespace="/aws/sagemaker/InferenceComponents", statistic="Average"
    )
    assert (utilization.namespace, utilization.dimensions, utilization.statistic) == (
        "/aws/sagemaker/InferenceComponents",
        {"InferenceComponentName": "iris-v1"},
        "Average",
    )


def test_an_inference_component_on_a_model_based_endpoint_is_refused() -> None:
    stack = new_stack()
    model = build_model(stack)
    endpoint = Endpoint(stack, "Endpoint", endpoint_config=EndpointConfig(stack, "Config", model=model))
    with pytest.raises(ValueError, match=r"serves models named by its variants.*inference_components=True"):
        InferenceComponent(stack, "Iris", endpoint=endpoint, model=model, min_memory_mb=1024)


def test_an_inference_component_on_the_sagemaker_endpoint_pattern_is_refused() -> None:
    stack = new_stack()
    pattern = build_endpoint(stack)
    with pytest.raises(ValueError, match=r"endpoint TestStack/Endpoint serves models named by its variants"):
        InferenceComponent(stack, "Iris", endpoint=pattern, model=pattern.model, min_memory_mb=1024)


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match=r"variant_name must be one of AllTraffic, got 'Blue'"):
        build_component(variant_name="Blue")


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"min_memory_mb": 64}, r"min_memory_mb must be >= 128 \(MB reserved per copy\), got 64"),
        ({"cpu_cores": 0.1}, r"cpu_cores must be >= 0.25, got 0.1"),
        ({"accelerator_devices": 0}, r"accelerator_devices must be >= 1, got 0"),
        ({"max_memory_mb": 512}, r"max_memory_mb must be >= min_memory_mb \(1024\), got 512"),
        ({"copy_count": -1}, r"copy_count must be >= 0 \(0 starts with no copies\), got -1"),
        (
            {"container_startup_health_check_timeout": Duration.seconds(30)},
            r"container_startup_health_check_timeout must be 60-3600",
        ),
        ({"model_data_download_timeout": Duration.hours(2)}, r"model_data_download_timeout must be 60-3600"),
        (
            {"inference_component_name": "iris_v1"},
            r"inference_component_name must be 1-63 letters.*'iris_v1'",
        ),
        ({"inference_component_name": "iris-"}, r"inference_component_name must be 1-63 letters.*'iris-'"),
        ({"inference_component_name": "a" * 64}, r"inference_component_name must be 1-63 letters"),
    ],
)
def test_values_sagemaker_would_refuse_are_synth_time_errors(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_component(**props)


def test_the_composition_passes_cdk_nag_with_every_acknowledgement_explained(tmp_path: Path) -> None:
    app = App(context=PROJECT_CONTEXT, outdir=str(tmp_path))
    apply_aws_solutions_checks(app)
    stack = Stack(app, "ScaleToZero")
    component = build_component(stack)
    component.auto_scale_copy_count(min_capacity=0, max_capacity=2).scale_on_invocations(
        invocations_per_copy=1
    )
    component.grant_invoke(iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal()))
    app.synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert plugin.get("violations", []) == []
    assert all(len(v["reason"].strip()) >= 30 for v in plugin["suppressedViolations"])
