"""model.tar.gz with user inference code: what ModelArtifact.from_asset accepts, and pack_model(code_dir=)."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from ml_inference_cdk.constructs.model_artifact import ModelArtifact, pack_model
from tests.unit.test_model_artifact import write_archive

MODEL_FN = b"import joblib\n\ndef model_fn(model_dir):\n    return joblib.load(model_dir + '/weights')\n"
OUTPUT_FN = b"def output_fn(prediction, accept):\n    return str(prediction)\n"


@pytest.fixture(scope="module")
def iris_model() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(features, labels)


def test_from_asset_accepts_code_with_a_model_fn_and_no_model_file(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"code/inference.py": MODEL_FN, "weights": b"w"})

    ModelArtifact.from_asset(archive)


def test_from_asset_accepts_code_without_model_fn_next_to_one_model_file(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"code/inference.py": OUTPUT_FN, "model.joblib": b"m"})

    ModelArtifact.from_asset(archive)


def test_from_asset_refuses_code_without_model_fn_and_without_a_model_file(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"code/inference.py": OUTPUT_FN})

    with pytest.raises(ValueError, match=r"holds code/inference\.py without a model_fn, so the server loads"):
        ModelArtifact.from_asset(archive)


def test_from_asset_refuses_code_that_is_not_python_naming_the_line(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"code/inference.py": b"x = 1\ndef model_fn(:\n"})

    with pytest.raises(ValueError, match=r"code/inference\.py:2: is not valid Python"):
        ModelArtifact.from_asset(archive)


def test_pack_model_packs_the_code_dir_under_code(iris_model: Any, tmp_path: Path) -> None:
    code = tmp_path / "src"
    (code / "lib").mkdir(parents=True)
    (code / "inference.py").write_bytes(OUTPUT_FN)
    (code / "lib" / "helpers.py").write_text("X = 1\n")
    (code / "requirements.txt").write_text("tinydep==1.0\n")
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"\0")

    archive = pack_model(iris_model, tmp_path / "model.tar.gz", code_dir=code)

    with tarfile.open(archive) as opened:
        names = opened.getnames()
    assert names == [
        "model.joblib",
        "model-metadata.json",
        "code/inference.py",
        "code/lib/helpers.py",
        "code/requirements.txt",
    ]
    ModelArtifact.from_asset(archive)


def test_pack_model_code_dir_must_hold_inference_py(iris_model: Any, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()

    with pytest.raises(ValueError, match=r"code_dir must hold inference\.py"):
        pack_model(iris_model, tmp_path / "model.tar.gz", code_dir=tmp_path / "src")


def test_pack_model_code_dir_must_exist(iris_model: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"code_dir must be a folder holding inference\.py, got"):
        pack_model(iris_model, tmp_path / "model.tar.gz", code_dir=tmp_path / "absent")


def test_pack_model_refuses_code_that_is_not_python(iris_model: Any, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "inference.py").write_text("def model_fn(:\n")

    with pytest.raises(ValueError, match=r"inference\.py:1: is not valid Python"):
        pack_model(iris_model, tmp_path / "model.tar.gz", code_dir=tmp_path / "src")
