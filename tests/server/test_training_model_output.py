"""What ``train`` writes to /opt/ml/model is what pack_model() packs: the same files and the same metadata.

The image cannot import ml_inference_cdk, so sklearn_server/training/model_output.py writes the fields itself;
these tests keep the two writers in step.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sklearn_server.training.model_output import check_model_dir, model_metadata, write_model

from ml_inference_cdk.constructs import pack_model
from tests.server import models
from tests.server.test_dataframe_decoding import passthrough_model


def packed(estimator: Any, tmp_path: Path) -> dict[str, bytes]:
    archive = pack_model(estimator, tmp_path / "model.tar.gz")
    with tarfile.open(archive) as opened:
        return {member.name: opened.extractfile(member).read() for member in opened.getmembers()}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "estimator",
    [
        pytest.param(models.iris_model(), id="numbers"),
        pytest.param(models.iris_frame_model(), id="dataframe"),
        pytest.param(models.customer_pipeline(), id="text-columns"),
        pytest.param(passthrough_model(), id="passthrough-column"),
        pytest.param(models.multi_output_model(), id="multi-output"),
        pytest.param(models.iris_text_label_model(), id="text-labels"),
    ],
)
def test_train_writes_the_metadata_pack_model_writes(estimator: Any, tmp_path: Path) -> None:
    from_pack_model = json.loads(packed(estimator, tmp_path)["model-metadata.json"])

    assert model_metadata(estimator) == from_pack_model


def test_train_writes_the_files_pack_model_packs(tmp_path: Path) -> None:
    estimator = models.iris_frame_model()

    write_model(estimator, tmp_path / "model")

    written = sorted(path.name for path in (tmp_path / "model").iterdir())
    assert written == sorted(packed(estimator, tmp_path))
    assert json.loads((tmp_path / "model" / "model-metadata.json").read_text()) == model_metadata(estimator)


def test_a_scripts_model_joblib_without_metadata_gets_it(tmp_path: Path) -> None:
    import joblib

    joblib.dump(models.iris_frame_model(), tmp_path / "model.joblib")

    assert check_model_dir(tmp_path) == "model.joblib"
    metadata = json.loads((tmp_path / "model-metadata.json").read_text())
    assert metadata == model_metadata(models.iris_frame_model())


def test_a_script_that_wrote_no_model_is_an_error_naming_what_serve_loads(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"wrote no model to .* \(SM_MODEL_DIR\): write one of model\.joblib, model\.skops"
    ):
        check_model_dir(tmp_path)


def test_a_script_that_wrote_two_model_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"")
    (tmp_path / "model.onnx").write_bytes(b"")

    with pytest.raises(ValueError, match="serve loads exactly one model file"):
        check_model_dir(tmp_path)
