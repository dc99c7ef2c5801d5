"""Snapshot of examples/scale-to-zero/ as its app.py synthesizes it: drift in what it deploys shows in review.

Asset hashes are normalized. Update deliberately with
``pytest tests/snapshots/test_scale_to_zero_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from tests.support.cdk import ROOT, normalized

EXAMPLE_APP = ROOT / "examples" / "scale-to-zero" / "app.py"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Any:
    outdir = tmp_path_factory.mktemp("scale-to-zero-snapshot")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDK_OUTDIR", str(outdir))
        patch.setenv("MODEL_ARTIFACT", str(demo_model_artifact))
        runpy.run_path(str(EXAMPLE_APP), run_name="__main__")
    return json.loads((outdir / "ScaleToZeroStack.template.json").read_text())


def test_the_scale_to_zero_example_matches_its_snapshot(template: Any, snapshot: SnapshotAssertion) -> None:
    assert normalized(template) == snapshot
