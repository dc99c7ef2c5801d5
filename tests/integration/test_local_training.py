"""`make train` (scripts/local_training.py): the image's `train` on a local /opt/ml tree, packed into a
model.tar.gz that the constructs accept and the server serves."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ml_inference_cdk import ModelArtifact
from scripts.local_training import pack, write_demo_tree
from tests.support.cdk import ROOT

pytestmark = pytest.mark.integration

LOCAL_TRAINING = ROOT / "scripts" / "local_training.py"


def make_train_without_a_container(tree: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(LOCAL_TRAINING),
            "--no-container",
            "--opt-ml",
            str(tree),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_train_without_a_container_engine_trains_the_demo_job_into_a_model_tar_gz(
    tmp_path: Path,
) -> None:
    tree = write_demo_tree(tmp_path / "opt_ml")
    output = tmp_path / "model.tar.gz"

    completed = make_train_without_a_container(tree, output)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert '(local process (no container engine)); scores: {"train": 0.97' in completed.stdout
    with tarfile.open(output) as archive:
        assert sorted(archive.getnames()) == ["model-metadata.json", "model.joblib"]
        metadata = json.loads(archive.extractfile("model-metadata.json").read())  # type: ignore[union-attr]
    assert metadata["n_features_in"] == 4
    ModelArtifact.from_asset(output)  # the synth-time check of model.tar.gz accepts it


def test_a_failed_job_prints_its_failure_reason_and_exits_1(tmp_path: Path) -> None:
    tree = write_demo_tree(tmp_path / "opt_ml")
    (tree / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"estimator": "NoSuchModel"}))

    completed = make_train_without_a_container(tree, tmp_path / "model.tar.gz")

    assert completed.returncode == 1
    assert (
        "training failed: train exited with code 1: EstimatorError: unknown estimator 'NoSuchModel'"
        in completed.stderr
    )


def test_the_same_model_packs_to_the_same_bytes(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.joblib").write_bytes(b"model")
    (model_dir / "model-metadata.json").write_text("{}")

    first = pack(model_dir, tmp_path / "a.tar.gz").read_bytes()
    (model_dir / "model.joblib").touch()

    assert pack(model_dir, tmp_path / "b.tar.gz").read_bytes() == first
