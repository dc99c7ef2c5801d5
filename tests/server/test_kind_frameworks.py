"""XGBoost, LightGBM and ONNX models on every target: in-process, as a process and in the real container.

Each served case answers CSV and JSON rows exactly as the framework itself predicts on the same rows, and
refuses a row of the wrong width with a 400 naming both widths. The scikit-learn wrappers (XGBClassifier,
LGBMClassifier) pickled in model.joblib are served by the scikit-learn kind, with their library in the image.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.server import models
from tests.server.conftest import TARGETS
from tests.server.targets import Client, start_target

ROWS = models.IRIS_FEATURES[::10]
"""Fifteen iris rows, every class among them."""
CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}
JSON = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True)
class Case:
    """A model directory to serve and what the framework itself answers for rows."""

    write: Callable[[Path], Path]
    expected: Callable[[np.ndarray], np.ndarray]
    env: dict[str, str] = field(default_factory=dict)


@functools.cache
def xgboost_booster(objective: str) -> Any:
    return models.xgboost_booster(objective)


@functools.cache
def lightgbm_booster(objective: str) -> Any:
    return models.lightgbm_booster(objective)


@functools.cache
def xgb_classifier() -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(models.IRIS_FEATURES, models.IRIS_LABELS)


@functools.cache
def lgbm_classifier() -> Any:
    from lightgbm import LGBMClassifier

    classifier = LGBMClassifier(n_estimators=5, n_jobs=1, verbose=-1, min_child_samples=5)
    return classifier.fit(models.IRIS_FEATURES, models.IRIS_LABELS)


def xgboost_predict(objective: str, rows: np.ndarray) -> np.ndarray:
    import xgboost

    return np.asarray(xgboost_booster(objective).predict(xgboost.DMatrix(rows)))


def onnx_run(zipmap: bool, output: int, rows: np.ndarray) -> np.ndarray:
    """What ONNX Runtime itself answers for ``rows`` (as float32) on the iris export, output by position."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        models.onnx_export(iris_model(), zipmap=zipmap), providers=["CPUExecutionProvider"]
    )
    return np.asarray(session.run(None, {session.get_inputs()[0].name: rows.astype(np.float32)})[output])


@functools.cache
def iris_model() -> Any:
    return models.iris_model()


def write_iris_onnx(directory: Path) -> Path:
    """skl2onnx's default export, with ZipMap: the server turns its dicts into rows in class order."""
    return models.write_onnx(directory, iris_model())


def _two_columns(positive: np.ndarray) -> np.ndarray:
    return np.column_stack((1.0 - positive.astype(np.float64), positive.astype(np.float64)))


PREDICT_PROBA = {"INFERENCE_PREDICT_METHOD": "predict_proba"}
CASES = {
    "xgboost-multi-softprob": Case(
        lambda d: models.write_xgboost(d, xgboost_booster("multi:softprob")),
        functools.partial(xgboost_predict, "multi:softprob"),
    ),
    "xgboost-binary-predict-proba": Case(
        lambda d: models.write_xgboost(d, xgboost_booster("binary:logistic")),
        lambda rows: _two_columns(xgboost_predict("binary:logistic", rows)),
        PREDICT_PROBA,
    ),
    "lightgbm-multiclass": Case(
        lambda d: models.write_lightgbm(d, lightgbm_booster("multiclass")),
        lambda rows: lightgbm_booster("multiclass").predict(rows),
    ),
    "lightgbm-binary-predict-proba": Case(
        lambda d: models.write_lightgbm(d, lightgbm_booster("binary")),
        lambda rows: _two_columns(lightgbm_booster("binary").predict(rows)),
        PREDICT_PROBA,
    ),
    "onnx-zipmap-predict": Case(write_iris_onnx, functools.partial(onnx_run, True, 0)),
    # The same export's probabilities, as ONNX Runtime answers them without ZipMap (a tensor in class order).
    "onnx-zipmap-predict-proba": Case(write_iris_onnx, functools.partial(onnx_run, False, 1), PREDICT_PROBA),
    "xgbclassifier-joblib": Case(
        lambda d: models.write_joblib(d, xgb_classifier()), lambda rows: xgb_classifier().predict(rows)
    ),
    "lgbmclassifier-joblib": Case(
        lambda d: models.write_joblib(d, lgbm_classifier()), lambda rows: lgbm_classifier().predict(rows)
    ),
}


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=list(CASES))
def served(
    request: pytest.FixtureRequest, target: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Case, Client]]:
    """One server per case and target, shared by the tests below."""
    case = CASES[request.param]
    model_dir = case.write(tmp_path_factory.mktemp(request.param))
    with start_target(target, model_dir, case.env, tmp_path_factory.mktemp("logs")) as client:
        yield case, client


def csv_body(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(value)) for value in row) for row in rows).encode()


def test_csv_rows_get_the_frameworks_own_predictions(served: tuple[Case, Client]) -> None:
    case, client = served

    response = client.request("POST", "/invocations", headers=CSV, content=csv_body(ROWS))

    assert response.status_code == 200, response.text
    answered = np.loadtxt(io.StringIO(response.text), delimiter=",", ndmin=1)
    expected = case.expected(ROWS)
    np.testing.assert_array_equal(answered.reshape(expected.shape), expected.astype(np.float64))


def test_json_rows_get_the_frameworks_own_predictions(served: tuple[Case, Client]) -> None:
    case, client = served

    response = client.request("POST", "/invocations", headers=JSON, content=json.dumps(ROWS.tolist()))

    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(np.asarray(response.json()), case.expected(ROWS).tolist())


def test_a_row_of_the_wrong_width_is_a_400_naming_expected_and_got(served: tuple[Case, Client]) -> None:
    _, client = served

    response = client.request("POST", "/invocations", headers=CSV, content=b"5.1,3.5,1.4")

    assert response.status_code == 400
    assert "expected 4 features, got 3" in response.json()["error"]
