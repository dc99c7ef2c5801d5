"""examples/shadow-test: synthesized from the installed wheel, checked, deployed into the local moto server.

The app puts a production model and a candidate in its shadow on one endpoint. moto 5.2 creates both models,
the endpoint configuration and the endpoint, but drops ``ShadowProductionVariants`` from the configuration:
the shadow variant is asserted on the synthesized template, and the deploy test pins what moto keeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from ml_inference_cdk import pack_model
from scripts.local_aws import LOCAL_IMAGE, LocalAws, bootstrap, deploy
from tests.support.cdk import ROOT, cfn_lint, synth_example

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "shadow-test"
STACK = "ShadowTestStack"


@pytest.fixture(scope="module")
def candidate_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A retrained model, different from the demo model: a depth-3 decision tree on iris."""
    features, labels = load_iris(return_X_y=True)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, labels)
    return pack_model(tree, tmp_path_factory.mktemp("candidate") / "model.tar.gz")


@pytest.fixture(scope="module")
def models_env(demo_model_artifact: Path, candidate_model: Path) -> dict[str, str]:
    return {"PRODUCTION_MODEL": str(demo_model_artifact), "CANDIDATE_MODEL": str(candidate_model)}


@pytest.fixture(scope="module")
def synthesized(
    fresh_venv: Path, models_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``cdk synth`` of the example with the library installed from the wheel, as a user's app runs."""
    outdir = tmp_path_factory.mktemp("shadow-test") / "cdk.out"
    synth_example(EXAMPLE, fresh_venv, outdir, models_env)
    return outdir


@pytest.fixture(scope="module")
def template(synthesized: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((synthesized / f"{STACK}.template.json").read_text())
    return result


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: r for key, r in template["Resources"].items() if r["Type"] == resource_type}


def test_the_candidate_shadows_the_production_model_on_one_endpoint(template: dict[str, Any]) -> None:
    (config,) = of_type(template, "AWS::SageMaker::EndpointConfig").values()
    (production,) = config["Properties"]["ProductionVariants"]
    (shadow,) = config["Properties"]["ShadowProductionVariants"]
    models = of_type(template, "AWS::SageMaker::Model")

    assert (production["VariantName"], shadow["VariantName"]) == ("Production", "Candidate")
    assert production["ModelName"]["Fn::GetAtt"][0] != shadow["ModelName"]["Fn::GetAtt"][0]
    assert {production["ModelName"]["Fn::GetAtt"][0], shadow["ModelName"]["Fn::GetAtt"][0]} == set(models)
    assert len(of_type(template, "AWS::SageMaker::Endpoint")) == 1


def test_the_two_models_serve_different_model_files_with_the_same_image(
    synthesized: Path, template: dict[str, Any]
) -> None:
    containers = [
        m["Properties"]["PrimaryContainer"] for m in of_type(template, "AWS::SageMaker::Model").values()
    ]
    assets = json.loads((synthesized / f"{STACK}.assets.json").read_text())["files"]
    model_files = {a["source"]["path"] for a in assets.values() if a["source"]["path"].endswith(".tar.gz")}

    assert containers[0]["Image"] == containers[1]["Image"]
    assert containers[0]["ModelDataUrl"] != containers[1]["ModelDataUrl"]
    assert len(model_files) == 2


def test_each_model_has_its_own_role(template: dict[str, Any]) -> None:
    roles = {
        m["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
        for m in of_type(template, "AWS::SageMaker::Model").values()
    }

    assert len(roles) == 2


def test_cdk_nag_reports_no_unacknowledged_finding_and_a_reason_for_each_acknowledged_one(
    synthesized: Path,
) -> None:
    report = json.loads((synthesized / "validation-report.json").read_text())
    (nag,) = [plugin for plugin in report["pluginReports"] if plugin["pluginName"] == "AwsSolutions"]

    assert nag["violations"] == []
    assert all(finding["reason"].strip() for finding in nag["suppressedViolations"])
    assert {finding["acknowledgedAt"] for finding in nag["suppressedViolations"]} == {
        f"{STACK}/Endpoint/Role",
        f"{STACK}/Candidate/Role",
    }


def test_cfn_lint_reports_no_error_and_no_warning(synthesized: Path) -> None:
    findings = cfn_lint([synthesized / f"{STACK}.template.json"])

    assert [
        (f["Level"], f["Rule"]["Id"], f["Message"]) for f in findings if f["Level"] in ("Error", "Warning")
    ] == []


# --- deployed into the local moto server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def outputs(
    local_aws: LocalAws,
    models_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch_module: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The real CDK CLI deploys the example (the image by URI: image assets cannot be published to moto)."""
    workdir = tmp_path_factory.mktemp("shadow-deploy")
    for name, value in models_env.items():
        monkeypatch_module.setenv(name, value)
    bootstrap(local_aws, workdir)
    return deploy(local_aws, [STACK], workdir=workdir, app_dir=EXAMPLE)[STACK]


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_deployed_endpoint_is_in_service_with_its_production_variant(
    local_aws: LocalAws, outputs: dict[str, str]
) -> None:
    endpoint = local_aws.client("sagemaker").describe_endpoint(EndpointName=outputs["EndpointName"])

    assert endpoint["EndpointStatus"] == "InService"
    assert [v["VariantName"] for v in endpoint["ProductionVariants"]] == ["Production"]


def test_both_models_exist_each_with_its_own_model_file(local_aws: LocalAws, outputs: dict[str, str]) -> None:
    sagemaker = local_aws.client("sagemaker")
    production = sagemaker.describe_model(ModelName=outputs["ProductionModelName"])["PrimaryContainer"]
    candidate = sagemaker.describe_model(ModelName=outputs["CandidateModelName"])["PrimaryContainer"]

    assert production["Image"] == candidate["Image"] == LOCAL_IMAGE
    assert production["ModelDataUrl"] != candidate["ModelDataUrl"]


def test_moto_keeps_the_production_variant_and_drops_the_shadow_variant(
    local_aws: LocalAws, outputs: dict[str, str]
) -> None:
    # What README says moto does not support: its CloudFormation EndpointConfig reads ProductionVariants,
    # DataCaptureConfig, AsyncInferenceConfig, KmsKeyId and Tags only. If this fails, moto learned shadow
    # variants: assert them here instead and update examples/shadow-test/README.md.
    sagemaker = local_aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])

    assert [v["ModelName"] for v in config["ProductionVariants"]] == [outputs["ProductionModelName"]]
    assert "ShadowProductionVariants" not in config
    assert "ShadowProductionVariants" not in endpoint
