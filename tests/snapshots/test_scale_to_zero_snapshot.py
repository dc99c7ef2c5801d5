"""Snapshot of examples/scale-to-zero/ as its app.py synthesizes it: drift in what it deploys shows in review.

Asset hashes are normalized. Update deliberately with
``pytest tests/snapshots/test_scale_to_zero_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from tests.support.cdk import ROOT, normalized
from tests.support.commands import run

EXAMPLE_APP = ROOT / "examples" / "scale-to-zero" / "app.py"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Any:
    outdir = tmp_path_factory.mktemp("scale-to-zero-snapshot")
    # A process of its own, as `cdk synth` runs it: CDK_OUTDIR reaches the app's own jsii runtime.
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "MODEL_ARTIFACT": str(demo_model_artifact)}
    run([sys.executable, str(EXAMPLE_APP)], cwd=EXAMPLE_APP.parent, env=env)
    return json.loads((outdir / "ScaleToZeroStack.template.json").read_text())


def test_the_scale_to_zero_example_matches_its_snapshot(template: Any, snapshot: SnapshotAssertion) -> None:
    assert normalized(template) == snapshot
