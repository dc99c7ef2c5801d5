"""pack_model(compile="onnx") refusals: the archive serves the native model alone, and the record says why.

Each case is a real model and a real converter: one that skl2onnx has no converter for, one that converts
but computes differently (float32 cannot hold what the model separates), one fitted on a DataFrame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_inference_cdk import ModelArtifact, Tolerance, compile_model, pack_model
from tests.unit.compile_splits import archive_member, compiled_record


def _refused(archive: Path) -> dict[str, Any]:
    record = compiled_record(archive)
    assert record["status"] == "refused", record
    assert archive_member(archive, "model.onnx") is None
    assert archive_member(archive, "model.joblib") is not None
    ModelArtifact.from_asset(archive)  # the archive still serves, natively
    return record


def test_a_model_skl2onnx_cannot_convert_is_packed_native_with_the_reason(tmp_path: Path) -> None:
    import skl2onnx
    from sklearn.datasets import load_iris
    from sklearn.kernel_ridge import KernelRidge

    features, labels = load_iris(return_X_y=True)
    model = KernelRidge().fit(features, labels)

    record = _refused(pack_model(model, tmp_path / "model.tar.gz", compile="onnx", sample=features))

    assert record == {
        "format": "onnx",
        "status": "refused",
        "reason": f"skl2onnx {skl2onnx.__version__} has no converter for sklearn.kernel_ridge.KernelRidge",
        "native_file": "model.joblib",
        "converter": f"skl2onnx {skl2onnx.__version__}",
        "sample_rows": 150,
    }


def test_a_pipeline_with_a_step_skl2onnx_cannot_convert_names_that_step() -> None:
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    features, labels = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), XGBClassifier(n_estimators=3)).fit(features, labels)

    compiled = compile_model(model, features)

    assert compiled.onnx is None
    assert compiled.record["reason"].endswith(
        "cannot convert sklearn.pipeline.Pipeline: it has no converter for xgboost.sklearn.XGBClassifier "
        "inside it"
    )


def test_a_tree_that_splits_values_float32_cannot_tell_apart_falls_back_with_the_first_difference(
    tmp_path: Path,
) -> None:
    from lightgbm import LGBMClassifier

    # 1.0 and 1.000000001 are one float32 value: LightGBM (float64) splits them, its ONNX copy cannot.
    features = np.array([[1.0], [1.0 + 1e-9]] * 20)
    labels = np.array([0, 1] * 20)
    model = LGBMClassifier(n_estimators=5, min_child_samples=1, min_data_in_bin=1, verbose=-1)
    model.fit(features, labels)

    record = _refused(pack_model(model, tmp_path / "model.tar.gz", compile="onnx", sample=features))

    assert record["first_difference"] == {
        "row": 1,
        "method": "predict",
        "native": 1,
        "onnx": 0,
        "values": [1.0 + 1e-9],
    }
    assert record["reason"].startswith("labels differ on sample row 1 (native 1, ONNX 0): ")
    assert "float32" in record["reason"]
    assert record["converter"].startswith("onnxmltools ")


def test_a_regressor_of_magnitudes_beyond_float32_falls_back_with_the_first_difference() -> None:
    from sklearn.linear_model import LinearRegression

    # Near 1e8, float32 holds every 8th integer only: the ONNX copy reads 100000003 as 100000000.
    features = 1e8 + np.arange(16, dtype=np.float64).reshape(-1, 1)
    model = LinearRegression().fit(features, features.ravel() - 1e8)

    compiled = compile_model(model, features)

    assert compiled.onnx is None
    difference = compiled.record["first_difference"]
    assert (difference["row"], difference["method"], difference["values"]) == (1, "predict", [1e8 + 1])
    assert difference["native"] == pytest.approx(1.0)
    assert difference["onnx"] == pytest.approx(0.0, abs=0.5)
    assert compiled.record["reason"].startswith(
        "predictions differ beyond atol + rtol * 15 (the largest |prediction|) = 0.000151, rtol=1e-05, "
        "atol=1e-06 on sample row 1"
    )


def test_probabilities_beyond_the_tolerance_refuse_a_classifier_whose_labels_match() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)

    compiled = compile_model(model, features, tolerance=Tolerance(rtol=0.0, atol=0.0))

    assert compiled.onnx is None
    assert compiled.record["first_difference"]["method"] == "predict_proba"
    assert len(compiled.record["first_difference"]["native"]) == 3
    assert compiled.record["reason"].startswith("probabilities differ beyond rtol=0, atol=0 on sample row ")
    assert "methods" not in compiled.record


def test_an_estimator_fitted_on_a_dataframe_is_refused_as_the_compiled_path_serves_numeric_rows_only(
    tmp_path: Path,
) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 1, 0, 1])

    record = _refused(pack_model(model, tmp_path / "model.tar.gz", compile="onnx", sample=frame.to_numpy()))

    assert record["reason"] == "fitted on a pandas DataFrame: the compiled path serves numeric rows only"


def test_a_refusal_is_logged_as_a_warning_naming_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.datasets import load_iris
    from sklearn.kernel_ridge import KernelRidge

    features, labels = load_iris(return_X_y=True)
    with caplog.at_level("INFO", logger="ml_inference_cdk"):
        pack_model(
            KernelRidge().fit(features, labels), tmp_path / "model.tar.gz", compile="onnx", sample=features
        )

    (warning,) = [record for record in caplog.records if record.levelname == "WARNING"]
    assert warning.getMessage().startswith("not compiled: skl2onnx ")
    assert warning.getMessage().endswith("; the archive serves model.joblib")
