"""The library as a product: the wheel, installed in a fresh venv, synthesizes examples/ with the CDK CLI."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from tests.support.cdk import ROOT, synth_example
from tests.support.commands import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "sagemaker-own-image"


def test_the_wheel_ships_the_typed_package_and_no_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "ml_inference_cdk/py.typed" in names
    assert "ml_inference_cdk/constructs/sagemaker/endpoint.py" in names
    assert not [name for name in names if name.startswith(("tests/", "inference_image/", "scripts/"))]


def test_the_installed_library_is_imported_from_the_fresh_venv(fresh_venv: Path) -> None:
    completed = run(
        [
            str(fresh_venv / "bin" / "python"),
            "-c",
            "import ml_inference_cdk; print(ml_inference_cdk.__file__)",
        ],
        cwd=EXAMPLE,
        env={**os.environ, "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1"},
    )
    assert completed.stdout.strip().startswith(str(fresh_venv))


def test_the_example_app_synthesizes_an_endpoint_for_its_own_image(
    fresh_venv: Path, demo_model_artifact: Path, tmp_path: Path
) -> None:
    outdir = tmp_path / "cdk.out"
    synth_example(EXAMPLE, fresh_venv, outdir, {"MODEL_ARTIFACT": str(demo_model_artifact)})

    template = json.loads((outdir / "ExampleEndpointStack.template.json").read_text())
    types = [resource["Type"] for resource in template["Resources"].values()]
    assert {"AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"} <= set(
        types
    )
    (config,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    assert config["Properties"]["ProductionVariants"][0]["InstanceType"] == "ml.c5.large"
    assets = json.loads((outdir / "ExampleEndpointStack.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert Path(outdir, image["source"]["directory"], "serve").is_file()
    report = json.loads((outdir / "validation-report.json").read_text())
    assert all(not plugin.get("violations") for plugin in report["pluginReports"])
