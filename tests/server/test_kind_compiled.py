"""Compiled models: model.onnx serves in place of the native model beside it only with a valid record.

Which model serves is decided in-process, one test per reason the compiled model is passed over. The real
entrypoint and the real container then each serve one compiled archive both ways (the record honoured, and
INFERENCE_USE_COMPILED=false) and say in their log which path serves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn_server.config import ServerConfig
from sklearn_server.model import find_model_file, load_model, load_model_directory

from tests.server import container_target, models
from tests.server.targets import DEFAULT_ENV, HttpClient, serve_process, wait_until_ready

ROWS = models.IRIS_FEATURES[::7]
PREDICT = ServerConfig(workers=1)
PREDICT_PROBA = ServerConfig(workers=1, predict_method="predict_proba")
COMPILED = "ONNX Runtime (compiled from model.joblib"


def served_kind(model_dir: Path, config: ServerConfig = PREDICT) -> str:
    return load_model(find_model_file(model_dir), config).kind


def test_a_verified_compiled_model_serves_with_onnx_runtime(tmp_path: Path, caplog: Any) -> None:
    models.write_compiled(tmp_path, models.iris_model())

    with caplog.at_level(logging.INFO):
        model = load_model(find_model_file(tmp_path), PREDICT)

    assert model.kind.startswith(COMPILED)
    assert "serving model.onnx with ONNX Runtime, compiled from model.joblib: predict verified on 150" in (
        caplog.text
    )


def test_a_multi_model_load_of_a_compiled_directory_serves_with_onnx_runtime(tmp_path: Path) -> None:
    models.write_compiled(tmp_path, models.iris_model())

    model = load_model_directory(tmp_path, dataclasses.replace(PREDICT, multi_model=True))

    assert model.kind.startswith(COMPILED)
    np.testing.assert_array_equal(model.predict(ROWS), models.iris_model().predict(ROWS))


def test_model_onnx_beside_a_native_model_is_its_compiled_form_not_a_second_model(tmp_path: Path) -> None:
    models.write_compiled(tmp_path, models.iris_model())

    assert find_model_file(tmp_path).name == "model.joblib"


@pytest.mark.parametrize(
    "estimator",
    [models.iris_model, models.iris_forest, models.iris_text_label_model],
    ids=["logistic-regression", "random-forest", "text-labels"],
)
def test_the_compiled_model_answers_labels_as_the_native_model_does(tmp_path: Path, estimator: Any) -> None:
    fitted = estimator()
    models.write_compiled(tmp_path, fitted)

    model = load_model(find_model_file(tmp_path), PREDICT)

    labels = model.predict(ROWS)
    assert labels.dtype == fitted.predict(ROWS).dtype
    np.testing.assert_array_equal(labels, fitted.predict(ROWS))


def test_the_compiled_model_answers_probabilities_as_float64_rows_close_to_the_native_ones(
    tmp_path: Path,
) -> None:
    fitted = models.iris_model()
    models.write_compiled(tmp_path, fitted)

    model = load_model(find_model_file(tmp_path), PREDICT_PROBA)

    probabilities = model.predict(ROWS)
    assert model.kind.startswith(COMPILED)
    assert probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities, fitted.predict_proba(ROWS), rtol=1e-5, atol=1e-6)


def test_a_compiled_regressor_answers_one_float64_value_per_row(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit(models.IRIS_FEATURES, models.IRIS_LABELS)
    models.write_compiled(tmp_path, fitted)

    model = load_model(find_model_file(tmp_path), PREDICT)

    values = model.predict(ROWS)
    assert model.kind.startswith(COMPILED)
    assert values.shape == (len(ROWS),)
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, fitted.predict(ROWS), rtol=1e-5, atol=1e-5)


# --- when the native model serves instead -------------------------------------------------------------


def with_record(directory: Path, **changes: Any) -> Path:
    models.write_compiled(directory, models.iris_model(), **changes)
    return directory


def without_record(directory: Path) -> Path:
    models.write_compiled(directory, models.iris_model())
    models.set_compiled_record(directory, None)
    return directory


def replaced_onnx(directory: Path) -> Path:
    """The record verified one model.onnx; another (the forest's export) was put in its place."""
    models.write_compiled(directory, models.iris_model())
    (directory / "model.onnx").write_bytes(models.onnx_export(models.iris_forest(), zipmap=False))
    return directory


def onnx_missing(directory: Path) -> Path:
    models.write_compiled(directory, models.iris_model())
    (directory / "model.onnx").unlink()
    return directory


PASSED_OVER = {
    "no-record": (without_record, PREDICT, "model.onnx has no verification record in model-metadata.json"),
    "refused-at-pack-time": (
        lambda d: with_record(d, status="refused", reason="labels differ on sample row 17"),
        PREDICT,
        "the model was not compiled when it was packed: labels differ on sample row 17",
    ),
    "replaced-file": (replaced_onnx, PREDICT, "is not the file that was verified: its sha256 differs"),
    "file-missing": (onnx_missing, PREDICT, "was verified, and .*model.onnx is missing"),
    "verified-against-another-file": (
        lambda d: with_record(d, native_file="model.skops"),
        PREDICT,
        "model.onnx was verified against 'model.skops', not model.joblib",
    ),
    "method-not-verified": (
        lambda d: with_record(d, methods={"predict": {"output": "label", "rows": 150}}),
        PREDICT_PROBA,
        r"INFERENCE_PREDICT_METHOD=predict_proba was not verified \(verified: predict\)",
    ),
    "switched-off": (
        lambda d: with_record(d),
        dataclasses.replace(PREDICT, use_compiled=False),
        "INFERENCE_USE_COMPILED=false",
    ),
    "output-not-in-the-file": (
        lambda d: with_record(d, methods={"predict": {"output": "scores", "rows": 150}}),
        PREDICT,
        "the record names output 'scores' for predict; .*model.onnx has label, probabilities",
    ),
}


@pytest.mark.parametrize("case", list(PASSED_OVER))
def test_the_native_model_serves_and_the_log_says_why(tmp_path: Path, case: str, caplog: Any) -> None:
    write, config, reason = PASSED_OVER[case]
    write(tmp_path)

    with caplog.at_level(logging.INFO):
        kind = served_kind(tmp_path, config)

    assert kind == "scikit-learn LogisticRegression"
    assert any(
        record.getMessage().startswith("serving model.joblib, not model.onnx: ")
        and re.search(reason, record.getMessage())
        for record in caplog.records
    ), caplog.text


def test_a_corrupt_model_onnx_whose_hash_matches_its_record_falls_back_to_the_native_model(
    tmp_path: Path, caplog: Any
) -> None:
    models.write_compiled(tmp_path, models.iris_model(), sha256=hashlib.sha256(b"not a model").hexdigest())
    (tmp_path / "model.onnx").write_bytes(b"not a model")

    with caplog.at_level(logging.INFO):
        kind = served_kind(tmp_path)

    assert kind == "scikit-learn LogisticRegression"
    assert "serving model.joblib, not model.onnx: " in caplog.text
    assert "cannot be loaded as an ONNX model" in caplog.text


def test_a_lone_model_onnx_is_still_a_model_of_its_own(tmp_path: Path) -> None:
    models.write_onnx(tmp_path, models.iris_model())

    assert served_kind(tmp_path).startswith("ONNX model (X: tensor(float)")


# --- the real entrypoint and the real container -----------------------------------------------------------

LIVE_TARGETS = [
    pytest.param("process", id="process"),
    pytest.param("container", id="container", marks=pytest.mark.container),
]
SWITCHES = {
    "compiled": ({}, "serving model.onnx with ONNX Runtime, compiled from model.joblib: predict verified"),
    "switched-off": (
        {"INFERENCE_USE_COMPILED": "false"},
        "serving model.joblib, not model.onnx: INFERENCE_USE_COMPILED=false",
    ),
}


@pytest.fixture(scope="module")
def compiled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.write_compiled(tmp_path_factory.mktemp("compiled"), models.iris_model())


@contextlib.contextmanager
def serving(target: str, model_dir: Path, env: dict[str, str], log_dir: Path) -> Iterator[tuple[str, Any]]:
    """(base URL, a function returning the server's log so far) for ``target``."""
    if target == "process":
        with serve_process(model_dir, {**DEFAULT_ENV, **env}, log_dir) as served:
            client = HttpClient("process", served.base_url)
            try:
                wait_until_ready(client, served)
            finally:
                client.close()
            yield served.base_url, served.log
    else:
        with container_target.started_container(model_dir, {**DEFAULT_ENV, **env}) as container:
            yield container.url, lambda: container_target.logs(container.id)


@pytest.mark.parametrize("switch", list(SWITCHES))
@pytest.mark.parametrize("target", LIVE_TARGETS)
def test_the_server_says_which_path_serves_and_answers_as_the_native_model(
    target: str, switch: str, compiled_dir: Path, tmp_path: Path
) -> None:
    env, said = SWITCHES[switch]
    native = models.iris_model()
    body = "\n".join(",".join(repr(float(value)) for value in row) for row in ROWS).encode()

    with serving(target, compiled_dir, env, tmp_path) as (url, log):
        labels = httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": "text/csv"})
        server_log = log()

    assert labels.status_code == 200, labels.text
    assert labels.json() == native.predict(ROWS).tolist()
    assert said in server_log


@pytest.mark.container
def test_the_default_flavour_serves_the_native_model_of_a_compiled_archive_and_names_the_full_one(
    compiled_dir: Path,
) -> None:
    native = models.iris_model()
    body = "\n".join(",".join(repr(float(value)) for value in row) for row in ROWS).encode()

    with container_target.started_container(
        compiled_dir, DEFAULT_ENV, flavour=container_target.DEFAULT_FLAVOUR
    ) as container:
        labels = httpx.post(
            f"{container.url}/invocations", content=body, headers={"Content-Type": "text/csv"}
        )
        server_log = container_target.logs(container.id)

    assert labels.status_code == 200, labels.text
    assert labels.json() == native.predict(ROWS).tolist()
    assert "serving model.joblib, not model.onnx: " in server_log
    assert "onnxruntime is not installed in this image" in server_log
    assert "FLAVOUR=full" in server_log
