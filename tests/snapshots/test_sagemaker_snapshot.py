"""Snapshot of SageMakerStack as `npx cdk synth` writes it: any change to what gets deployed shows in review.

Asset hashes are normalized, so retraining the demo model or editing the image does not churn the snapshot.
Update deliberately with ``pytest tests/snapshots/test_sagemaker_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from syrupy.assertion import SnapshotAssertion

from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from ml_inference_cdk.stacks.sagemaker_stack import SageMakerStack
from ml_inference_cdk.stacks.settings import Settings
from tests.support.cdk import ROOT, normalized


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Any:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(tmp_path_factory.mktemp("sagemaker-snapshot")), context=context)
    apply_aws_solutions_checks(app)
    SageMakerStack(app, "SageMakerStack", settings=Settings.from_context(app.node, base_dir=ROOT))
    return app.synth().get_stack_by_name("SageMakerStack").template


def test_sagemaker_stack_matches_its_snapshot(template: Any, snapshot: SnapshotAssertion) -> None:
    assert normalized(template) == snapshot
