"""The policy checkers, on the real synthesized templates of every stack (as `npx cdk synth` writes them)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import control_tower
from tests.support.cdk import ROOT, VENV_BIN, SynthesizedApp, cfn_lint

STACKS = ("SageMakerStack", "EcsStack", "EksStack")
CHECKOV = VENV_BIN.parent / "checkov" / "bin" / "checkov"
CDK_PROVIDER_FUNCTIONS = re.compile(
    r"(CustomCDKECRDeployment|CustomVpcRestrictDefaultSGCustomResourceProvider|ClusterKubectlProvider)"
)


def resources(app: SynthesizedApp, resource_type: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, logical_id, resource)
        for stack in STACKS
        for logical_id, resource in app.template(stack)["Resources"].items()
        if resource["Type"] == resource_type
    ]


def test_the_app_synthesizes_all_three_stacks(synthesized_app: SynthesizedApp) -> None:
    assert sorted(path.name for path in synthesized_app.template_paths()) == sorted(
        f"{stack}.template.json" for stack in STACKS
    )


def test_cdk_nag_aws_solutions_reports_no_unsuppressed_finding(synthesized_app: SynthesizedApp) -> None:
    report = synthesized_app.nag_report()
    assert report["conclusion"] == "success"
    assert report.get("violations", []) == []


def test_every_cdk_nag_acknowledgement_carries_a_written_reason(synthesized_app: SynthesizedApp) -> None:
    suppressed = synthesized_app.nag_report()["suppressedViolations"]
    assert suppressed, "expected the acknowledgements this app documents"
    assert all(len(violation["reason"].strip()) >= 30 for violation in suppressed)


def test_no_acknowledgement_sits_on_a_whole_stack(synthesized_app: SynthesizedApp) -> None:
    suppressed = synthesized_app.nag_report()["suppressedViolations"]
    assert not [v["acknowledgedAt"] for v in suppressed if "/" not in v["acknowledgedAt"]]


def test_cfn_lint_reports_no_error_and_no_warning(synthesized_app: SynthesizedApp) -> None:
    findings = cfn_lint(synthesized_app.template_paths())
    assert [f for f in findings if f["Level"] in ("Error", "Warning")] == []


def test_no_role_uses_an_aws_managed_full_access_policy(synthesized_app: SynthesizedApp) -> None:
    managed = [
        json.dumps(role["Properties"].get("ManagedPolicyArns", []))
        for _, _, role in resources(synthesized_app, "AWS::IAM::Role")
    ]
    assert not [arns for arns in managed if "FullAccess" in arns]


def test_no_policy_allows_every_s3_action(synthesized_app: SynthesizedApp) -> None:
    statements = [
        statement
        for _, _, policy in resources(synthesized_app, "AWS::IAM::Policy")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = [
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert "s3:*" not in actions
    assert "*" not in actions


def test_the_only_lambda_functions_are_the_cdks_deployment_time_providers(
    synthesized_app: SynthesizedApp,
) -> None:
    # .checkov.yaml skips the Lambda DLQ/VPC/concurrency checks on this premise; it must stay true.
    functions = [
        f"{stack}/{logical_id}"
        for stack, logical_id, _ in resources(synthesized_app, "AWS::Lambda::Function")
    ]
    assert functions
    assert [f for f in functions if not CDK_PROVIDER_FUNCTIONS.search(f)] == []


@pytest.mark.slow
def test_checkov_finds_no_failed_check(synthesized_app: SynthesizedApp, tmp_path: Path) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make setup`")
    files = [arg for path in synthesized_app.template_paths() for arg in ("--file", str(path))]
    completed = subprocess.run(
        [str(CHECKOV), "--config-file", str(ROOT / ".checkov.yaml"), "--output", "json", *files],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert completed.stdout.strip(), completed.stderr
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{check['check_id']} {Path(check['file_path']).name} {check['resource']}"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(report["summary"]["passed"] for report in reports) > 100


# --- AWS Control Tower proactive controls (cfn-guard, cdklabs-cdk-validator-cfnguard's rule set) ----------


def test_the_control_tower_rule_set_is_the_pinned_one() -> None:
    pinned = (ROOT / "requirements-dev.txt").read_text()

    assert f"{control_tower.PACKAGE}=={control_tower.version()}" in pinned
    assert len(list(control_tower.rule_set()[1].rglob("*.guard"))) > 200


@pytest.mark.parametrize("stack", STACKS)
def test_every_failing_control_tower_control_is_exempted_on_its_resource(
    synthesized_app: SynthesizedApp, stack: str
) -> None:
    assert control_tower.unexplained(synthesized_app.outdir / f"{stack}.template.json") == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_control_tower_exemption_answers_a_real_failure(
    synthesized_app: SynthesizedApp, stack: str
) -> None:
    path = synthesized_app.outdir / f"{stack}.template.json"
    exempted = control_tower.exemptions(synthesized_app.template(stack)).keys()

    assert sorted(exempted - control_tower.failures(path)) == []


def test_every_control_tower_exemption_gives_a_written_reason(synthesized_app: SynthesizedApp) -> None:
    reasons = [
        reason
        for stack in STACKS
        for reason in control_tower.exemptions(synthesized_app.template(stack)).values()
    ]

    assert reasons
    assert [r for r in reasons if len(r.split()) < 15] == []


def test_the_check_catches_a_control_that_fails(tmp_path: Path) -> None:
    template = {"Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7}}}}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))

    assert control_tower.unexplained(path) == [
        control_tower.Failure("CT.CLOUDWATCH.PR.2", "Logs"),
        control_tower.Failure("CT.CLOUDWATCH.PR.3", "Logs"),
    ]
