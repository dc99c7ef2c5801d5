"""RetrainingWorkflow: train with the inference image, then update the endpoint; least-privilege roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from ml_inference_cdk import (
    AsyncInference,
    ContainerImage,
    Endpoint,
    EndpointConfig,
    InferenceRepository,
    InstanceVariant,
    Model,
    ModelArtifact,
    ModelPackage,
    RetrainingWorkflow,
    SageMakerEndpoint,
    ServerlessVariant,
)
from ml_inference_cdk.constructs.sagemaker.retraining import split_s3_prefix
from tests.support.cdk import cfn_lint, synthesize
from tests.unit.test_sagemaker_endpoint import build_endpoint, flat, logical_id, new_stack, permissions_of

DATA_BUCKET = "training-data-bucket"


def build_workflow(endpoint: SageMakerEndpoint | None = None, **props: Any) -> RetrainingWorkflow:
    endpoint = endpoint or build_endpoint(
        network_isolation=True, environment={"INFERENCE_JSON_RESPONSE": "list"}
    )
    stack = Stack.of(endpoint)
    repository = stack.node.find_child("Repository")
    bucket = s3.Bucket.from_bucket_name(stack, "Data", DATA_BUCKET)
    props.setdefault("image", ContainerImage.from_repository(repository, tag="v1"))  # type: ignore[arg-type]
    props.setdefault("training_data", bucket)
    props.setdefault("training_prefix", "iris/train/")
    props.setdefault("output_bucket", bucket)
    props.setdefault("output_prefix", "retraining/")
    return RetrainingWorkflow(stack, "Retraining", endpoint=endpoint, **props)


@pytest.fixture(scope="module")
def workflow() -> RetrainingWorkflow:
    return build_workflow(hyperparameters={"estimator": "LogisticRegression", "target": "species"})


@pytest.fixture(scope="module")
def template(workflow: RetrainingWorkflow) -> Template:
    return Template.from_stack(Stack.of(workflow))


@pytest.fixture(scope="module")
def definition(workflow: RetrainingWorkflow, template: Template) -> dict[str, Any]:
    return definition_of(template)


def definition_of(template: Template) -> dict[str, Any]:
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    # A Fn::Join of literal text and references, each reference inside a JSON string: read it with "REF"s.
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    definition: dict[str, Any] = json.loads("".join(p if isinstance(p, str) else "REF" for p in parts))
    return definition


def test_the_workflow_trains_creates_a_model_and_a_configuration_then_updates_and_waits(
    definition: dict[str, Any],
) -> None:
    order, state = [], definition["StartAt"]
    while state and state not in order:
        order.append(state)
        state = definition["States"][state].get("Next") or definition["States"][state].get("Default")
    assert order == [
        "NameTheRun",
        "Train",
        "CreateModel",
        "CreateEndpointConfig",
        "UpdateEndpoint",
        "WaitForTheUpdate",
        "DescribeEndpoint",
        "UpdatedYet",
    ]
    assert definition["States"]["Train"]["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")


def test_training_runs_the_inference_image_on_the_training_prefix_and_writes_the_output_prefix(
    definition: dict[str, Any],
) -> None:
    train = definition["States"]["Train"]["Parameters"]
    assert train["HyperParameters"] == {"estimator": "LogisticRegression", "target": "species"}
    channel = train["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
    assert train["ResourceConfig"] == {
        "InstanceCount": 1,
        "InstanceType": "ml.m5.large",
        "VolumeSizeInGB": 10,
    }
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_each_run_names_its_job_model_and_configuration_after_a_fresh_uuid(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    assert states["NameTheRun"]["Parameters"] == {"id.$": "States.UUID()"}
    expected = "States.Format('retrain-{}', $.run.id)"
    assert states["Train"]["Parameters"]["TrainingJobName.$"] == expected
    assert states["CreateModel"]["Parameters"]["ModelName.$"] == expected
    assert states["CreateEndpointConfig"]["Parameters"]["EndpointConfigName.$"] == expected
    assert states["UpdateEndpoint"]["Parameters"]["EndpointConfigName.$"] == expected


def test_the_new_model_keeps_the_endpoints_image_environment_and_network_isolation(
    definition: dict[str, Any],
) -> None:
    model = definition["States"]["CreateModel"]["Parameters"]
    assert model["EnableNetworkIsolation"] is True
    container = model["PrimaryContainer"]
    assert container["ModelDataUrl.$"] == "$.training.ModelArtifacts.S3ModelArtifacts"
    assert container["Environment"]["INFERENCE_JSON_RESPONSE"] == "list"
    assert container["Mode"] == "SingleModel"


def test_the_new_configuration_keeps_the_endpoints_variants(definition: dict[str, Any]) -> None:
    (variant,) = definition["States"]["CreateEndpointConfig"]["Parameters"]["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["InstanceType"] == "ml.m5.large"
    assert variant["InitialInstanceCount"] == 1


def test_a_failed_or_rolled_back_update_fails_the_execution(definition: dict[str, Any]) -> None:
    choice = definition["States"]["UpdatedYet"]
    targets = {c["Next"] for c in choice["Choices"]}
    assert targets == {"Updated", "UpdateFailed"}
    assert choice["Default"] == "WaitForTheUpdate"
    assert definition["States"]["UpdateFailed"]["Type"] == "Fail"


def test_the_training_role_reads_only_the_training_prefix_and_writes_only_the_output_prefix(
    workflow: RetrainingWorkflow, template: Template
) -> None:
    allowed = permissions_of(template, workflow.training_role)
    reads = {flat(r) for a, r, _ in allowed if a == "s3:GetObject*"}
    writes = {flat(r) for a, r, _ in allowed if a == "s3:PutObject"}
    assert [r for r in reads if r.endswith('/*"]]}')] == [
        flat({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{DATA_BUCKET}/iris/train/*"]]})
    ]
    assert [r for r in writes if r.endswith('/*"]]}')] == [
        flat({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{DATA_BUCKET}/retraining/*"]]})
    ]
    assert not [a for a, _, _ in allowed if a.startswith("sagemaker:") or a == "s3:*"]


def test_the_endpoint_role_may_read_the_retrained_models_and_nothing_more(
    workflow: RetrainingWorkflow, template: Template
) -> None:
    endpoint = Stack.of(workflow).node.find_child("Endpoint")
    reads = [flat(r) for a, r, _ in permissions_of(template, endpoint.role) if a == "s3:GetObject"]
    assert any(r.endswith(f':s3:::{DATA_BUCKET}/retraining/*"]]}}') for r in reads)
    assert not [r for r in reads if r == '"*"']


def test_the_state_machine_passes_exactly_the_two_roles_to_sagemaker(
    workflow: RetrainingWorkflow, template: Template
) -> None:
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "iam:PassRole" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert all(
        s["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
        for s in statements
    )
    passed = {
        json.dumps(r)
        for s in statements
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    }
    assert len(passed) == 2
    assert all("GetAtt" in r and "Role" in r for r in passed)


def test_sagemaker_actions_are_scoped_to_this_workflows_names_and_this_endpoint(
    workflow: RetrainingWorkflow, template: Template
) -> None:
    (machine_policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if any("StateMachineRole" in r["Ref"] for r in p["Properties"]["Roles"])
    ]
    scoped = {
        s["Action"]: json.dumps(s["Resource"])
        for s in machine_policy["Properties"]["PolicyDocument"]["Statement"]
        if isinstance(s["Action"], str) and s["Action"].startswith("sagemaker:")
    }
    assert ":model/retrain-*" in scoped["sagemaker:CreateModel"]
    assert ":endpoint-config/retrain-*" in scoped["sagemaker:CreateEndpointConfig"]
    assert '"Ref": "Endpoint' in scoped["sagemaker:UpdateEndpoint"]
    assert '"Ref": "Endpoint' in scoped["sagemaker:DescribeEndpoint"]


def test_the_state_machine_logs_every_state_to_an_encrypted_log_group_and_traces(template: Template) -> None:
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"
    (group,) = template.find_resources("AWS::Logs::LogGroup").values()
    assert "KmsKeyId" in group["Properties"]


def test_grant_start_execution_allows_starting_this_state_machine_only() -> None:
    workflow = build_workflow()
    stack = Stack.of(workflow)
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    workflow.grant_start_execution(caller)
    (policy,) = (
        Template.from_stack(stack)
        .find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": logical_id(caller)}]}})
        .values()
    )
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "states:StartExecution"
    assert statement["Resource"] == {"Ref": logical_id(workflow.state_machine)}


# --- what it refuses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"training_prefix": "iris/train"}, "training_prefix must be a key prefix ending with '/'"),
        (
            {"output_prefix": "/out/"},
            r"output_prefix must be a key prefix ending with '/' \(no leading '/'\)",
        ),
        ({"channel_name": "train data"}, "channel_name must be 1-64 letters"),
        ({"instance_type": "m5.large"}, "instance_type must be a SageMaker ML instance type"),
        ({"instance_count": 0}, "instance_count must be 1-100, got 0"),
        ({"max_runtime": Duration.days(29)}, "max_runtime must be 1 second to 28 days"),
        ({"name_prefix": "x" * 27}, "name_prefix must be 1-26 letters"),
    ],
)
def test_values_sagemaker_would_refuse_are_synth_time_errors(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_workflow(**props)


def test_a_serverless_endpoint_is_refused_naming_the_variant() -> None:
    with pytest.raises(ValueError, match="variant 'AllTraffic' is serverless"):
        build_workflow(build_endpoint(variants=[ServerlessVariant()]))


def test_an_endpoint_with_asynchronous_inference_is_refused() -> None:
    stack = new_stack()
    bucket = s3.Bucket(stack, "Async", encryption=s3.BucketEncryption.S3_MANAGED)
    endpoint = build_endpoint(stack, async_inference=AsyncInference(bucket=bucket))
    with pytest.raises(ValueError, match="its configuration has async_inference"):
        build_workflow(endpoint)


def test_the_new_configuration_keeps_each_variants_routing_volume_ssm_and_ami_options() -> None:
    variant = InstanceVariant(
        instance_type="ml.c5.xlarge",
        routing_strategy="LEAST_OUTSTANDING_REQUESTS",
        volume_size_gb=64,
        enable_ssm_access=True,
        inference_ami_version="al2-ami-sagemaker-inference-gpu-3-1",
    )
    workflow = build_workflow(build_endpoint(variants=[variant]))
    template = Template.from_stack(Stack.of(workflow))

    (variant_parameters,) = definition_of(template)["States"]["CreateEndpointConfig"]["Parameters"][
        "ProductionVariants"
    ]
    assert {
        key: variant_parameters[key] for key in ("RoutingConfig", "VolumeSizeInGB", "EnableSSMAccess")
    } == {
        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
        "VolumeSizeInGB": 64,
        "EnableSSMAccess": True,
    }
    assert variant_parameters["InferenceAmiVersion"] == "al2-ami-sagemaker-inference-gpu-3-1"


def test_an_endpoint_with_a_shadow_variant_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="endpoint: its configuration has the shadow variant 'Shadow'"):
        build_workflow(build_endpoint(shadow_variants=[InstanceVariant(name="Shadow")]))


def test_an_endpoint_serving_a_registered_model_package_is_refused() -> None:
    stack = new_stack()
    model = Model(
        stack,
        "Registered",
        model_package=ModelPackage.from_arn("arn:aws:sagemaker:us-east-1:123456789012:model-package/iris/3"),
    )
    endpoint = Endpoint(stack, "Served", endpoint_config=EndpointConfig(stack, "Config", model=model))
    stack.node.try_find_child("Repository") or InferenceRepository(stack, "Repository")

    with pytest.raises(ValueError, match="endpoint: its model serves a model package from the registry"):
        build_workflow(endpoint)  # type: ignore[arg-type]


def test_a_multi_model_endpoint_is_refused() -> None:
    stack = new_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Models", "models-bucket")
    endpoint = build_endpoint(stack, model_artifact=ModelArtifact.from_multi_model_prefix(bucket, "models/"))
    with pytest.raises(ValueError, match="serves many models from an S3 prefix"):
        build_workflow(endpoint)


def test_s3_prefix_uris_split_into_bucket_and_prefix() -> None:
    assert split_s3_prefix("s3://my-bucket/iris/train/") == ("my-bucket", "iris/train/")
    for bad in ("s3://my-bucket/iris/train", "s3://my-bucket/", "https://my-bucket/x/", "s3://B/x/"):
        with pytest.raises(ValueError, match="must be s3://BUCKET/PREFIX/"):
            split_s3_prefix(bad)


# --- in the app: SageMakerStack -c trainingDataS3Uri=... ---------------------------------------------------


@pytest.fixture(scope="module")
def app_with_retraining(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Any:
    return synthesize(
        tmp_path_factory.mktemp("cdk.out"),
        context={
            "trainingDataS3Uri": f"s3://{DATA_BUCKET}/iris/train/",
            "trainingHyperparameters": '{"estimator": "LogisticRegression", "target": "species"}',
        },
    )


def test_the_stack_adds_the_workflow_with_training_data_and_reports_its_arn(app_with_retraining: Any) -> None:
    template = app_with_retraining.template("SageMakerStack")
    assert "RetrainingStateMachineArn" in template["Outputs"]
    assert (
        len([r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"])
        == 1
    )


def test_the_stack_with_retraining_is_cdk_nag_clean_and_cfn_lint_clean(app_with_retraining: Any) -> None:
    report = app_with_retraining.nag_report()
    assert report["conclusion"] == "success"
    assert report.get("violations", []) == []
    findings = cfn_lint(
        [p for p in app_with_retraining.template_paths() if p.name.startswith("SageMakerStack")]
    )
    assert [f for f in findings if f["Level"] in ("Error", "Warning")] == []


def test_a_bad_training_uri_in_the_context_names_the_key(tmp_path: Path, demo_model_artifact: Path) -> None:
    with pytest.raises(
        ValueError, match=r"context trainingDataS3Uri=s3://bucket/no-slash: must be s3://BUCKET/PREFIX/"
    ):
        synthesize(tmp_path, context={"trainingDataS3Uri": "s3://bucket/no-slash"})
