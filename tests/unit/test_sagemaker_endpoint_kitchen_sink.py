"""Every feature at once (where SageMaker allows the combination): nag clean, cfn-lint clean, least privilege.

The stack holds what a production endpoint would sit next to: a KMS key with rotation, TLS-only buckets with
access logs, TLS-only encrypted topics, a VPC with flow logs. The only acknowledgements in it are the
endpoint's own, on its role and on the caller it granted async invocation to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact
from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from ml_inference_cdk.constructs.repository import InferenceRepository
from ml_inference_cdk.constructs.sagemaker.deployment import (
    CapacitySize,
    DeploymentGuardrails,
    TrafficRouting,
)
from ml_inference_cdk.constructs.sagemaker.endpoint_pattern import SageMakerEndpoint
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.variants import InstanceVariant
from tests.support.cdk import cfn_lint
from tests.unit.test_sagemaker_endpoint import PROJECT_CONTEXT, permissions_of

UNSCOPABLE_ACTIONS = {
    # No resource-level permissions exist for these: the only resource IAM accepts is "*".
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",  # limited by a cloudwatch:namespace condition instead
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeNetworkInterfaces",
}


class KitchenSink:
    def __init__(self, outdir: Path) -> None:
        self.app = App(context=PROJECT_CONTEXT, outdir=str(outdir))
        apply_aws_solutions_checks(self.app)
        stack = self.stack = Stack(self.app, "KitchenSink")

        key = kms.Key(stack, "Key", enable_key_rotation=True)
        access_logs = s3.Bucket(
            stack,
            "AccessLogs",
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        )
        data = s3.Bucket(
            stack,
            "Data",
            enforce_ssl=True,
            encryption_key=key,
            server_access_logs_bucket=access_logs,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        )
        vpc = ec2.Vpc(
            stack,
            "Vpc",
            max_azs=2,
            # The restrict-default-SG custom resource is CDK's own (and cfn-lint flags its provider, W3005).
            restrict_default_security_group=False,
            flow_logs={
                "All": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_s3(access_logs, "flow-logs/"))
            },
        )
        done = sns.Topic(stack, "Done", master_key=key, enforce_ssl=True)
        failed = sns.Topic(stack, "Failed", master_key=key, enforce_ssl=True)
        repository = InferenceRepository(stack, "Repository", encryption_key=key)
        drift = cloudwatch.Alarm(
            stack,
            "Drift",
            metric=cloudwatch.Metric(namespace="Custom", metric_name="Drift"),
            threshold=1,
            evaluation_periods=1,
        )

        self.endpoint = SageMakerEndpoint(
            stack,
            "Endpoint",
            image=ContainerImage.from_repository(repository, digest="sha256:" + "a" * 64),
            model_artifact=ModelArtifact.from_bucket(data, "models/model.tar.gz"),
            variants=[
                InstanceVariant(
                    name="Blue",
                    instance_type="ml.c5.xlarge",
                    initial_instance_count=2,
                    initial_weight=3,
                    container_startup_health_check_timeout=Duration.minutes(5),
                ),
                InstanceVariant(name="Green", initial_weight=1),
            ],
            environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
            vpc=vpc,
            network_isolation=True,
            volume_encryption_key=key,
            async_inference=AsyncInference(
                bucket=data,
                success_topic=done,
                error_topic=failed,
                max_concurrent_invocations_per_instance=4,
                encryption_key=key,
            ),
            data_capture=DataCapture(bucket=data, sampling_percentage=20, encryption_key=key),
            deployment=DeploymentGuardrails.blue_green(
                traffic_routing=TrafficRouting.canary(
                    size=CapacitySize.percent(10), wait=Duration.minutes(5)
                ),
                termination_wait=Duration.minutes(10),
                maximum_execution_timeout=Duration.hours(1),
                alarms=[drift],
            ),
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=["DesiredWeight"],
            container_startup_health_check_timeout=Duration.minutes(10),
            model_data_download_timeout=Duration.minutes(15),
        )
        scaling = self.endpoint.auto_scale_instance_count(variant_name="Blue", min_capacity=2, max_capacity=6)
        scaling.scale_on_invocations(invocations_per_instance=600)
        scaling.scale_on_cpu_utilization(target_percent=140)

        self.caller = iam.Role(stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.endpoint.grant_invoke(self.caller)
        self.endpoint.grant_invoke_async(self.caller)
        cloudwatch.Alarm(
            stack,
            "SlowModel",
            metric=self.endpoint.metric_model_latency(),
            threshold=500_000,
            evaluation_periods=3,
        )

        self.app.synth()  # raises on any unacknowledged cdk-nag error
        self.outdir = outdir

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack.stack_name}.template.json"

    def report(self) -> list[dict[str, Any]]:
        plugins: list[dict[str, Any]] = json.loads((self.outdir / "validation-report.json").read_text())[
            "pluginReports"
        ]
        return plugins


@pytest.fixture(scope="module")
def kitchen_sink(tmp_path_factory: pytest.TempPathFactory) -> KitchenSink:
    return KitchenSink(tmp_path_factory.mktemp("kitchen-sink"))


@pytest.fixture(scope="module")
def template(kitchen_sink: KitchenSink) -> Template:
    return Template.from_json(json.loads(kitchen_sink.template_path.read_text()))


def test_kitchen_sink_has_no_unacknowledged_cdk_nag_finding(kitchen_sink: KitchenSink) -> None:
    (nag,) = [plugin for plugin in kitchen_sink.report() if plugin["pluginName"] == "AwsSolutions"]

    assert nag["violations"] == []


def test_kitchen_sink_has_no_finding_from_any_validation_plugin(kitchen_sink: KitchenSink) -> None:
    assert {plugin["pluginName"]: plugin["violations"] for plugin in kitchen_sink.report()} == {
        plugin["pluginName"]: [] for plugin in kitchen_sink.report()
    }


def test_every_acknowledged_finding_has_a_written_reason(kitchen_sink: KitchenSink) -> None:
    acknowledged = [finding for plugin in kitchen_sink.report() for finding in plugin["suppressedViolations"]]

    assert acknowledged
    assert all(finding["reason"].strip() for finding in acknowledged)


def test_endpoint_acknowledgements_sit_on_the_role_or_the_caller_they_concern(
    kitchen_sink: KitchenSink,
) -> None:
    (nag,) = [plugin for plugin in kitchen_sink.report() if plugin["pluginName"] == "AwsSolutions"]
    places = {finding["acknowledgedAt"] for finding in nag["suppressedViolations"]}

    assert places == {"KitchenSink/Endpoint/Role", "KitchenSink/Caller"}


def test_kitchen_sink_passes_cfn_lint_without_errors_or_warnings(kitchen_sink: KitchenSink) -> None:
    findings = cfn_lint([kitchen_sink.template_path])

    assert [
        (f["Level"], f["Rule"]["Id"], f["Message"]) for f in findings if f["Level"] in ("Error", "Warning")
    ] == []


def test_no_role_has_an_aws_managed_policy(template: Template) -> None:
    roles = template.find_resources("AWS::IAM::Role")

    assert roles
    assert [role["Properties"].get("ManagedPolicyArns") for role in roles.values()] == [None] * len(roles)


def test_endpoint_role_uses_star_only_for_actions_without_resource_level_permissions(
    kitchen_sink: KitchenSink, template: Template
) -> None:
    starred = {
        action
        for action, resource, _ in permissions_of(template, kitchen_sink.endpoint.role)
        if resource == "*"
    }

    assert starred == UNSCOPABLE_ACTIONS


def test_endpoint_role_has_no_service_wide_actions(kitchen_sink: KitchenSink, template: Template) -> None:
    actions = {action for action, _, _ in permissions_of(template, kitchen_sink.endpoint.role)}

    assert not [
        action for action in actions if action.endswith("*") and not action.startswith("ec2:Describe")
    ]
    assert "s3:*" not in actions
    assert "kms:*" not in actions


def test_caller_uses_no_star_resource(kitchen_sink: KitchenSink, template: Template) -> None:
    assert [a for a, resource, _ in permissions_of(template, kitchen_sink.caller) if resource == "*"] == []
