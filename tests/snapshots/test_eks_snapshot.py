"""Snapshots of EksStack and of the exported YAML: any change to what gets deployed shows up in review.

Update deliberately with ``pytest tests/snapshots/test_eks_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from syrupy.assertion import SnapshotAssertion

from ml_inference_cdk.constructs.eks.manifests import InferenceManifests
from ml_inference_cdk.manifests_cli import to_yaml
from ml_inference_cdk.stacks.eks_stack import EksStack
from ml_inference_cdk.stacks.settings import Settings
from tests.support.cdk import ROOT, normalized


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Any:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(tmp_path_factory.mktemp("eks-snapshot")), context=context)
    EksStack(app, "EksStack", settings=Settings.from_context(app.node, base_dir=ROOT))
    return app.synth().get_stack_by_name("EksStack").template


def test_eks_stack_matches_its_snapshot(template: Any, snapshot: SnapshotAssertion) -> None:
    assert normalized(template) == snapshot


def test_exported_manifests_match_their_snapshot(snapshot: SnapshotAssertion) -> None:
    manifests = InferenceManifests(
        image_uri="${IMAGE_URI}", model_bucket="${MODEL_S3_BUCKET}", model_key="${MODEL_S3_KEY}"
    )
    assert to_yaml(manifests.objects()) == snapshot
