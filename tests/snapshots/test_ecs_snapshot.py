"""Snapshot of EcsStack: any change to what gets deployed shows up in review.

Update deliberately with ``pytest tests/snapshots/test_ecs_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from syrupy.assertion import SnapshotAssertion

from ml_inference_cdk.stacks.ecs_stack import EcsStack
from ml_inference_cdk.stacks.settings import Settings
from tests.support.cdk import ROOT, normalized


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Any:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(tmp_path_factory.mktemp("ecs-snapshot")), context=context)
    EcsStack(app, "EcsStack", settings=Settings.from_context(app.node, base_dir=ROOT))
    return app.synth().get_stack_by_name("EcsStack").template


def test_ecs_stack_matches_its_snapshot(template: Any, snapshot: SnapshotAssertion) -> None:
    assert normalized(template) == snapshot
