"""examples/scale-to-zero/: the wheel, installed in a fresh venv, synthesizes it with the real CDK CLI.

The template holds every piece SageMaker's "Scale an endpoint to zero instances" asks for; cdk-nag and
cfn-lint find nothing. moto cannot deploy it (its README says why): the last test shows moto's refusal, and
fails the day moto accepts the stack, so that a deploy test can replace it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.local_aws import bootstrap, deploy, moto_server
from tests.support import control_tower
from tests.support.cdk import ROOT, VENV_BIN, cfn_lint, synth_example

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "scale-to-zero"
STACK = "ScaleToZeroStack"


@pytest.fixture(scope="module")
def outdir(fresh_venv: Path, demo_model_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cdk synth` of the example, run by the fresh venv's python3 with the installed wheel."""
    outdir = tmp_path_factory.mktemp("scale-to-zero") / "cdk.out"
    synth_example(EXAMPLE, fresh_venv, outdir, {"MODEL_ARTIFACT": str(demo_model_artifact)})
    return outdir


@pytest.fixture(scope="module")
def resources(outdir: Path) -> dict[str, dict[str, Any]]:
    template = json.loads((outdir / f"{STACK}.template.json").read_text())
    found: dict[str, dict[str, Any]] = template["Resources"]
    return found


def of_type(resources: dict[str, dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources.values() if r["Type"] == resource_type]


def test_the_endpoint_configuration_names_no_model_and_may_scale_to_zero_instances(
    resources: dict[str, dict[str, Any]],
) -> None:
    (config,) = of_type(resources, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert "ModelName" not in variant
    assert "ExecutionRoleArn" in config
    assert config["EnableNetworkIsolation"] is True
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 0,
        "MaxInstanceCount": 2,
    }


def test_one_inference_component_serves_the_model_with_one_core_and_one_gigabyte(
    resources: dict[str, dict[str, Any]],
) -> None:
    (component,) = of_type(resources, "AWS::SageMaker::InferenceComponent")
    assert component["Specification"]["ComputeResourceRequirements"] == {
        "MinMemoryRequiredInMb": 1024,
        "NumberOfCpuCoresRequired": 1,
    }
    assert component["RuntimeConfig"] == {"CopyCount": 1}
    (model,) = of_type(resources, "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is True


def test_the_copy_count_scales_from_zero_to_two_with_the_documented_wake_up(
    resources: dict[str, dict[str, Any]],
) -> None:
    (target,) = of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["ScalableDimension"], target["MinCapacity"], target["MaxCapacity"]) == (
        "sagemaker:inference-component:DesiredCopyCount",
        0,
        2,
    )
    policies = {p["PolicyType"]: p for p in of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy")}
    assert policies.keys() == {"TargetTrackingScaling", "StepScaling"}
    tracking = policies["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking == {
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
        },
        "TargetValue": 1,
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 300,
    }
    (alarm,) = of_type(resources, "AWS::CloudWatch::Alarm")
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == (
        "NoCapacityInvocationFailures",
        "Sum",
        60,
        1,
    )


def test_cdk_nag_reports_no_unacknowledged_finding_and_every_acknowledgement_has_a_reason(
    outdir: Path,
) -> None:
    report = json.loads((outdir / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert plugin["conclusion"] == "success"
    assert plugin.get("violations", []) == []
    assert all(len(v["reason"].strip()) >= 30 for v in plugin["suppressedViolations"])


def test_cfn_lint_reports_no_error_and_no_warning(outdir: Path) -> None:
    findings = cfn_lint([outdir / f"{STACK}.template.json"])
    assert [f for f in findings if f["Level"] in ("Error", "Warning")] == []


def test_checkov_finds_no_failed_check(outdir: Path) -> None:
    checkov = VENV_BIN.parent / "checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.fail(f"checkov is not installed at {checkov}: run `make setup`")
    completed = subprocess.run(
        [
            str(checkov),
            "--config-file",
            str(ROOT / ".checkov.yaml"),
            "--output",
            "json",
            "--file",
            str(outdir / f"{STACK}.template.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = json.loads(completed.stdout)
    assert [check["check_id"] for check in report["results"]["failed_checks"]] == []
    assert report["summary"]["passed"] > 30


def test_no_aws_control_tower_proactive_control_fails(outdir: Path) -> None:
    assert control_tower.failures(outdir / f"{STACK}.template.json") == set()


def test_moto_cannot_create_an_endpoint_configuration_without_a_model(
    demo_model_artifact: Path, tmp_path: Path
) -> None:
    """moto 5.2's SageMaker backend reads every variant's ModelName (KeyError): the stack cannot deploy."""
    with moto_server(tmp_path / "moto.log") as local:
        bootstrap(local, tmp_path)
        with pytest.raises(RuntimeError, match="failed"):
            deploy(local, [STACK], workdir=tmp_path, app_dir=EXAMPLE)
        assert local.client("sagemaker").list_endpoint_configs()["EndpointConfigs"] == []
    log = (tmp_path / "moto.log").read_text()
    assert "validate_production_variants" in log
    assert "KeyError: 'ModelName'" in log
