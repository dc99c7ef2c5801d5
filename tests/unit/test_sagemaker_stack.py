"""SageMakerStack: what `cdk synth` produces out of the box, and what the context keys change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Capture, Match, Template

from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from ml_inference_cdk.stacks.sagemaker_stack import SageMakerStack
from ml_inference_cdk.stacks.settings import Settings
from tests.support.cdk import ROOT, cfn_lint, normalized
from tests.unit.test_sagemaker_endpoint import PROJECT_CONTEXT, flat, logical_id, permissions_of

UNSCOPABLE_ACTIONS = {
    # No resource-level permissions exist for these: the only resource IAM accepts is "*".
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",  # limited by a cloudwatch:namespace condition instead
}


def sagemaker_stack(outdir: Path | None = None, **context: Any) -> SageMakerStack:
    app = App(context={**PROJECT_CONTEXT, **context}, outdir=str(outdir) if outdir else None)
    apply_aws_solutions_checks(app)
    settings = Settings.from_context(app.node, base_dir=ROOT)
    return SageMakerStack(app, "SageMakerStack", settings=settings)


class Synthesized:
    """The default stack, synthesized once with cdk-nag, as `npx cdk synth SageMakerStack` does."""

    def __init__(self, outdir: Path) -> None:
        self.stack = sagemaker_stack(outdir)
        self.stack.node.root.synth()
        self.outdir = outdir
        self.template_path = outdir / "SageMakerStack.template.json"
        self.template = Template.from_json(json.loads(self.template_path.read_text()))

    def plugin(self, name: str) -> dict[str, Any]:
        report = json.loads((self.outdir / "validation-report.json").read_text())
        (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == name]
        result: dict[str, Any] = plugin
        return result


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Synthesized:
    return Synthesized(tmp_path_factory.mktemp("sagemaker-stack"))


@pytest.fixture(scope="module")
def template(synthesized: Synthesized) -> Template:
    return synthesized.template


# --- out of the box ---------------------------------------------------------------------------------------


def test_stack_has_a_sagemaker_model_endpoint_config_and_endpoint(template: Template) -> None:
    for resource_type in (
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
    ):
        template.resource_count_is(resource_type, 1)


def test_endpoint_config_defaults_to_one_ml_m5_large_instance_in_variant_all_traffic(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
                )
            ]
        },
    )


def test_repository_scans_on_push_keeps_tags_immutable_and_encrypts(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "ImageTagMutability": "IMMUTABLE",
            "EncryptionConfiguration": {"EncryptionType": "AES256"},
        },
    )


def test_repository_expires_untagged_images_and_keeps_the_newest(template: Template) -> None:
    policy = Capture()
    template.has_resource_properties(
        "AWS::ECR::Repository", {"LifecyclePolicy": {"LifecyclePolicyText": policy}}
    )

    rules = json.loads(policy.as_string())["rules"]
    assert [rule["selection"] for rule in rules] == [
        {"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1, "countUnit": "days"},
        {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
    ]


def test_repository_is_retained_when_the_stack_is_deleted(template: Template) -> None:
    template.has_resource(
        "AWS::ECR::Repository", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )


def test_image_is_copied_into_the_repository_before_the_model_is_created(
    synthesized: Synthesized, template: Template
) -> None:
    copy = synthesized.stack.endpoint.node.find_child("CopyImage")
    destination = Capture()
    template.has_resource_properties("Custom::CDKECRDeployment", {"DestImage": destination})

    assert json.dumps(normalized(destination.as_object())).endswith(':<asset-hash>"]]}')
    template.has_resource(
        "AWS::SageMaker::Model",
        {
            "DependsOn": Match.array_with(
                [logical_id(copy.node.find_child("CustomResource").node.default_child)]
            )
        },
    )


def test_model_runs_the_copied_image_and_serves_the_demo_model(
    synthesized: Synthesized, template: Template
) -> None:
    repository = synthesized.stack.repository.repository
    image = Capture()
    model_data = Capture()
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": Match.object_like({"Image": image, "ModelDataUrl": model_data})},
    )

    assert {"Ref": logical_id(repository.node.default_child)} in image.as_object()["Fn::Join"][1]
    assert model_data.as_object()["Fn::Sub"].startswith(
        "s3://cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/"
    )


def test_the_model_runs_with_network_isolation(template: Template) -> None:
    template.has_resource_properties("AWS::SageMaker::Model", {"EnableNetworkIsolation": True})


def test_outputs_name_the_endpoint_model_image_model_data_and_repository(
    synthesized: Synthesized, template: Template
) -> None:
    outputs = template.find_outputs("*")
    endpoint_id = logical_id(synthesized.stack.endpoint.node.find_child("Endpoint"))

    assert set(outputs) == {
        "EndpointName",
        "EndpointArn",
        "ModelName",
        "ImageUri",
        "ModelDataUrl",
        "RepositoryUri",
    }
    assert outputs["EndpointName"]["Value"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
    assert outputs["EndpointArn"]["Value"] == {"Ref": endpoint_id}
    assert all(output["Description"] for output in outputs.values())


# --- least privilege --------------------------------------------------------------------------------------


def test_no_role_has_an_aws_managed_full_access_policy(template: Template) -> None:
    roles = template.find_resources("AWS::IAM::Role")
    managed = [
        flat(policy) for role in roles.values() for policy in role["Properties"].get("ManagedPolicyArns", [])
    ]

    assert roles
    assert not [policy for policy in managed if "FullAccess" in policy]


def test_endpoint_role_has_no_managed_policy_at_all(synthesized: Synthesized, template: Template) -> None:
    role = template.find_resources("AWS::IAM::Role")[
        logical_id(synthesized.stack.endpoint.role.node.default_child)
    ]

    assert "ManagedPolicyArns" not in role["Properties"]


def test_endpoint_role_uses_star_only_for_actions_without_resource_level_permissions(
    synthesized: Synthesized, template: Template
) -> None:
    permissions = permissions_of(template, synthesized.stack.endpoint.role)

    assert {action for action, resource, _ in permissions if resource == "*"} == UNSCOPABLE_ACTIONS
    assert not [action for action, _, _ in permissions if action.endswith("*")]


# --- checkers ---------------------------------------------------------------------------------------------


def test_stack_has_no_unacknowledged_cdk_nag_finding(synthesized: Synthesized) -> None:
    assert synthesized.plugin("AwsSolutions")["violations"] == []


def test_every_acknowledged_finding_has_a_written_reason_on_the_resource_it_concerns(
    synthesized: Synthesized,
) -> None:
    acknowledged = synthesized.plugin("AwsSolutions")["suppressedViolations"]

    assert acknowledged
    assert all(finding["reason"].strip() for finding in acknowledged)
    assert all(finding["acknowledgedAt"] != "SageMakerStack" for finding in acknowledged)


def test_stack_passes_cfn_lint_without_errors_or_warnings(synthesized: Synthesized) -> None:
    findings = cfn_lint([synthesized.template_path])

    assert [
        (f["Level"], f["Rule"]["Id"], f["Message"]) for f in findings if f["Level"] in ("Error", "Warning")
    ] == []


# --- context keys -----------------------------------------------------------------------------------------


def test_instance_type_and_count_come_from_the_context(demo_model_artifact: Path) -> None:
    stack = sagemaker_stack(instanceType="ml.c5.xlarge", instanceCount="2")

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like({"InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 2})
            ]
        },
    )


def test_destroy_on_delete_deletes_and_empties_the_repository(demo_model_artifact: Path) -> None:
    template = Template.from_stack(sagemaker_stack(destroyOnDelete=True))

    template.has_resource(
        "AWS::ECR::Repository",
        {"DeletionPolicy": "Delete", "Properties": Match.object_like({"EmptyOnDelete": True})},
    )


def test_image_uri_runs_that_image_without_building_or_copying(demo_model_artifact: Path) -> None:
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-inference:v1"
    stack = sagemaker_stack(imageUri=uri)
    template = Template.from_stack(stack)

    template.resource_count_is("Custom::CDKECRDeployment", 0)
    template.has_resource_properties(
        "AWS::SageMaker::Model", {"PrimaryContainer": Match.object_like({"Image": uri})}
    )
    assert "arn:aws:ecr:us-east-1:123456789012:repository/iris-inference" in [
        resource for _, resource, _ in permissions_of(template, stack.endpoint.role)
    ]


def test_without_the_copy_the_model_runs_the_image_from_the_cdk_asset_repository(
    demo_model_artifact: Path,
) -> None:
    template = Template.from_stack(sagemaker_stack(copyImageToRepository=False))
    image = Capture()

    template.resource_count_is("Custom::CDKECRDeployment", 0)
    template.has_resource_properties(
        "AWS::SageMaker::Model", {"PrimaryContainer": Match.object_like({"Image": image})}
    )
    assert "cdk-hnb659fds-container-assets-${AWS::AccountId}-${AWS::Region}" in image.as_object()["Fn::Sub"]


def test_model_s3_uri_serves_an_artifact_already_in_s3() -> None:
    stack = sagemaker_stack(modelS3Uri="s3://training-output-bucket/iris/model.tar.gz")
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": Match.object_like(
                {"ModelDataUrl": "s3://training-output-bucket/iris/model.tar.gz"}
            )
        },
    )
    (model_object,) = [r for a, r, _ in permissions_of(template, stack.endpoint.role) if a == "s3:GetObject"]
    assert flat(model_object).endswith(':s3:::training-output-bucket/iris/model.tar.gz"]]}')
