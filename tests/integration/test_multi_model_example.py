"""examples/multi-model-endpoint as a user runs it: the wheel in a fresh venv, the real CDK CLI, cdk-nag and
cfn-lint on what it synthesizes, and a deploy into the local moto server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.local_aws import LOCAL_IMAGE, LocalAws, bootstrap, deploy
from tests.support.cdk import ROOT, cfn_lint, synth_example

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "multi-model-endpoint"
STACK = "MultiModelEndpointStack"


def resources_of(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == resource_type]


@pytest.fixture(scope="module")
def synthesized(fresh_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdk.out of the example, synthesized by the CDK CLI with the installed wheel."""
    outdir = tmp_path_factory.mktemp("multi-model-example") / "cdk.out"
    synth_example(EXAMPLE, fresh_venv, outdir)
    return outdir


@pytest.fixture(scope="module")
def template(synthesized: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((synthesized / f"{STACK}.template.json").read_text())
    return result


def test_the_example_serves_the_models_prefix_of_its_bucket_in_multi_model_mode(
    template: dict[str, Any],
) -> None:
    ((bucket_id, _),) = [
        (logical_id, r)
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket" and "LoggingConfiguration" in r["Properties"]
    ]
    (model,) = resources_of(template, "AWS::SageMaker::Model")
    container = model["Properties"]["PrimaryContainer"]

    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/models/"]]}
    assert container["Environment"]["SAGEMAKER_MULTI_MODEL"] == "true"


def test_the_example_alarms_on_the_model_cache_hit_ratio(template: dict[str, Any]) -> None:
    (alarm,) = resources_of(template, "AWS::CloudWatch::Alarm")

    assert (alarm["Properties"]["MetricName"], alarm["Properties"]["Namespace"]) == (
        "ModelCacheHit",
        "AWS/SageMaker",
    )
    assert (alarm["Properties"]["Statistic"], alarm["Properties"]["Threshold"]) == ("Average", 0.5)
    assert alarm["Properties"]["ComparisonOperator"] == "LessThanThreshold"


def test_the_example_buckets_refuse_requests_without_tls(template: dict[str, Any]) -> None:
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    denials = [
        statement
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
    ]

    assert len(policies) == 2
    assert len(denials) == 2
    assert all(d["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for d in denials)


def test_the_example_has_no_unacknowledged_cdk_nag_finding(synthesized: Path) -> None:
    report = json.loads((synthesized / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]

    assert plugin.get("violations", []) == []
    assert all(len(finding["reason"].strip()) >= 30 for finding in plugin["suppressedViolations"])


def test_the_example_passes_cfn_lint_without_errors_or_warnings(synthesized: Path) -> None:
    findings = cfn_lint([synthesized / f"{STACK}.template.json"])

    assert [
        (f["Level"], f["Rule"]["Id"], f["Message"]) for f in findings if f["Level"] in ("Error", "Warning")
    ] == []


# --- deployed into the local moto server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def outputs(
    local_aws: LocalAws, fresh_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Outputs of ``cdk deploy`` of the example (the wheel's venv runs app.py; the local image, as moto cannot
    take an image asset)."""
    workdir = tmp_path_factory.mktemp("multi-model-deploy")
    bootstrap(local_aws, workdir)
    deployed = deploy(
        local_aws, [STACK], workdir=workdir, app_dir=EXAMPLE, app=f"{fresh_venv / 'bin' / 'python'} app.py"
    )
    return deployed[STACK]


@pytest.fixture(scope="module")
def deployed_model(local_aws: LocalAws, outputs: dict[str, str]) -> dict[str, Any]:
    sagemaker = local_aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    description: dict[str, Any] = sagemaker.describe_model(
        ModelName=config["ProductionVariants"][0]["ModelName"]
    )
    return description


def test_the_deployed_model_serves_the_prefix_of_the_deployed_bucket_in_multi_model_mode(
    deployed_model: dict[str, Any], outputs: dict[str, str]
) -> None:
    container = deployed_model["PrimaryContainer"]

    assert (container["Mode"], container["Image"]) == ("MultiModel", LOCAL_IMAGE)
    assert (
        container["ModelDataUrl"] == f"s3://{outputs['ModelBucketName']}/models/" == outputs["ModelDataUrl"]
    )
    assert container["Environment"]["SAGEMAKER_MULTI_MODEL"] == "true"


def test_the_deployed_role_reads_exactly_the_models_prefix(
    local_aws: LocalAws, deployed_model: dict[str, Any], outputs: dict[str, str]
) -> None:
    iam = local_aws.client("iam")
    role_name = deployed_model["ExecutionRoleArn"].rsplit("/", 1)[1]
    statements = [
        statement
        for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        for statement in iam.get_role_policy(RoleName=role_name, PolicyName=policy)["PolicyDocument"][
            "Statement"
        ]
    ]
    s3_statements = [s for s in statements if any(str(a).startswith("s3:") for a in _listed(s["Action"]))]

    assert [(_listed(s["Action"]), _listed(s["Resource"])) for s in s3_statements] == [
        (["s3:GetObject"], [f"arn:aws:s3:::{outputs['ModelBucketName']}/models/*"])
    ]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
