"""XGBoost, LightGBM and ONNX models that cannot be served: every start-up error names the file and why.

Loading is tested in-process; the real entrypoint and the real container each show once that such an error
stops the server at start with the message in its log.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from sklearn_server.config import ServerConfig
from sklearn_server.errors import BadRequestError, ModelLoadError
from sklearn_server.model import find_model_file, load_model

from tests.server import container_target, models
from tests.server.targets import SERVE, server_environment

PREDICT_PROBA = ServerConfig(workers=1, predict_method="predict_proba")
FAIL_FAST_S = 30.0
"""Bound on how long a server with a bad model may take to exit (about a second; the container more)."""
NATIVE_FILES = [
    pytest.param("xgboost-model", "xgboost", id="xgboost"),
    pytest.param("model.txt", "lightgbm", id="lightgbm"),
    pytest.param("model.onnx", "onnxruntime", id="onnx"),
]


def test_a_joblib_and_an_xgboost_model_together_are_ambiguous(tmp_path: Path) -> None:
    models.write_joblib(tmp_path, models.iris_model())
    models.write_xgboost(tmp_path, models.xgboost_booster())

    with pytest.raises(ModelLoadError, match=r"ambiguous model .*both model\.joblib and xgboost-model"):
        find_model_file(tmp_path)


def test_three_kinds_together_are_all_listed(tmp_path: Path) -> None:
    models.write_xgboost(tmp_path, models.xgboost_booster())
    models.write_lightgbm(tmp_path, models.lightgbm_booster())
    models.write_onnx(tmp_path, models.iris_model())

    with pytest.raises(ModelLoadError, match=r"xgboost-model, model\.txt and model\.onnx are present"):
        find_model_file(tmp_path)


@pytest.mark.parametrize(("filename", "library"), NATIVE_FILES)
def test_a_corrupt_native_file_is_a_load_error_naming_it(tmp_path: Path, filename: str, library: str) -> None:
    models.write_corrupt_file(tmp_path, filename)

    with pytest.raises(ModelLoadError, match=rf"{tmp_path / filename} cannot be loaded as an? \w+ model"):
        load_model(tmp_path / filename)


@pytest.mark.parametrize(("filename", "library"), NATIVE_FILES)
def test_a_missing_library_names_the_file_the_library_and_the_flavour(
    tmp_path: Path, filename: str, library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    models.write_corrupt_file(tmp_path, filename)  # never read: the import fails first
    monkeypatch.setitem(sys.modules, library, None)  # what `import` sees when the package is absent

    with pytest.raises(ModelLoadError) as raised:
        load_model(tmp_path / filename)

    message = str(raised.value)
    assert f"{tmp_path / filename} is a" in message
    assert f"{library} is not installed in this image" in message
    assert "--build-arg FLAVOUR=full" in message


def test_a_pickled_xgboost_model_is_refused_with_how_to_convert_it(tmp_path: Path) -> None:
    (tmp_path / "xgboost-model").write_bytes(pickle.dumps(models.xgboost_booster()))

    with pytest.raises(ModelLoadError, match=r"is a pickle .* pickle\.load\(file\)\.save_model"):
        load_model(tmp_path / "xgboost-model")


def test_a_json_xgboost_model_loads_as_well_as_ubjson(tmp_path: Path) -> None:
    booster = models.xgboost_booster()
    (tmp_path / "xgboost-model").write_bytes(bytes(booster.save_raw("json")))

    model = load_model(tmp_path / "xgboost-model")

    assert model.n_features == 4
    assert model.predict(models.IRIS_FEATURES[:1]).shape == (1, 3)


def test_predict_proba_of_an_xgboost_regression_is_refused_naming_the_objective(tmp_path: Path) -> None:
    models.write_xgboost(tmp_path, models.xgboost_booster("reg:squarederror"))

    with pytest.raises(
        ModelLoadError,
        match=r"\(binary:logistic or multi:softprob\); this model's objective is 'reg:squarederror'",
    ):
        load_model(tmp_path / "xgboost-model", PREDICT_PROBA)


def test_predict_proba_of_a_lightgbm_regression_is_refused_naming_the_objective(tmp_path: Path) -> None:
    models.write_lightgbm(tmp_path, models.lightgbm_booster("regression"))

    with pytest.raises(ModelLoadError, match=r"objective is 'regression'"):
        load_model(tmp_path / "model.txt", PREDICT_PROBA)


def test_an_onnx_model_with_two_inputs_is_refused_naming_what_is_supported(tmp_path: Path) -> None:
    models.write_onnx_two_inputs(tmp_path)

    with pytest.raises(ModelLoadError, match=r"has 2 inputs \(a .*, b .*\); this server feeds one input"):
        load_model(tmp_path / "model.onnx")


def test_an_onnx_input_of_rank_3_is_refused(tmp_path: Path) -> None:
    models.write_onnx_rank_3(tmp_path)

    with pytest.raises(ModelLoadError, match=r"input 'x' has rank 3 .*this server feeds rank 2"):
        load_model(tmp_path / "model.onnx")


def test_predict_proba_of_an_onnx_regressor_is_refused_naming_its_outputs(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    models.write_onnx(tmp_path, LinearRegression().fit(models.IRIS_FEATURES, models.IRIS_LABELS))

    with pytest.raises(ModelLoadError, match=r"needs a probabilities output .*its outputs are variable"):
        load_model(tmp_path / "model.onnx", PREDICT_PROBA)


def test_zipmap_probabilities_of_text_labels_come_in_class_order(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    labels = np.array(["zeta", "alpha", "mid"])[models.IRIS_LABELS]  # classes_ sorts them: alpha, mid, zeta
    classifier = LogisticRegression(max_iter=1000).fit(models.IRIS_FEATURES, labels)
    models.write_onnx(tmp_path, classifier)

    model = load_model(tmp_path / "model.onnx", PREDICT_PROBA)

    rows = models.IRIS_FEATURES[::25]
    np.testing.assert_allclose(model.predict(rows), classifier.predict_proba(rows), atol=1e-6)


def test_onnx_runtimes_complaint_about_the_input_is_a_400(tmp_path: Path) -> None:
    models.write_onnx(tmp_path, models.iris_model())
    model = load_model(tmp_path / "model.onnx")

    # n_features is checked by the decoders; a 3-wide array handed straight to predict reaches ONNX Runtime.
    with pytest.raises(
        BadRequestError, match=r"INVALID_ARGUMENT : Got invalid dimensions .* Got: 3 Expected: 4"
    ):
        model.predict(models.IRIS_FEATURES[:2, :3])


def test_a_sparse_matrix_for_an_onnx_model_is_a_400_naming_dense_types(tmp_path: Path) -> None:
    models.write_onnx(tmp_path, models.iris_model())
    model = load_model(tmp_path / "model.onnx")

    with pytest.raises(BadRequestError, match=r"ONNX models take dense rows"):
        model.predict(scipy.sparse.csr_matrix(models.IRIS_FEATURES[:2]))


def test_sparse_rows_reach_an_xgboost_booster_as_sparse(tmp_path: Path) -> None:
    models.write_xgboost(tmp_path, models.xgboost_booster())
    model = load_model(tmp_path / "xgboost-model")

    dense = model.predict(models.IRIS_FEATURES[:3])
    sparse = model.predict(scipy.sparse.csr_matrix(models.IRIS_FEATURES[:3]))

    np.testing.assert_array_equal(sparse, dense)


# --- the real entrypoint and the real container ------------------------------------------------------------


def test_serve_exits_1_naming_both_files_of_an_ambiguous_directory(tmp_path: Path) -> None:
    model_dir = models.write_joblib(tmp_path / "model", models.iris_model())
    models.write_lightgbm(model_dir, models.lightgbm_booster())

    completed = subprocess.run(
        [sys.executable, str(SERVE), "serve"],
        env=server_environment(model_dir, {}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=FAIL_FAST_S,
        check=False,
    )

    assert completed.returncode == 1
    assert "both model.joblib and model.txt are present" in completed.stderr


@pytest.mark.container
def test_the_container_exits_naming_a_corrupt_native_file(tmp_path: Path) -> None:
    model_dir = models.write_corrupt_file(tmp_path / "model", "model.txt")

    with container_target.started_container(model_dir, {}, wait_for_ping=False) as container:
        deadline = time.monotonic() + FAIL_FAST_S
        while container_target.is_running(container.id) and time.monotonic() < deadline:
            time.sleep(0.1)
        log = container_target.logs(container.id)

    assert not container_target.is_running(container.id), log
    assert "/opt/ml/model/model.txt cannot be loaded as a LightGBM model" in log
