"""pack_model(compile=...) and compile_model refuse bad arguments before writing anything, naming what is
allowed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_inference_cdk import Tolerance, compile_model, pack_model


@pytest.fixture(scope="module")
def iris() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(features, labels), features


def test_compile_needs_a_sample(iris: tuple[Any, np.ndarray], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compile='onnx' needs sample: a 2-D array-like of numeric rows"):
        pack_model(iris[0], tmp_path / "model.tar.gz", compile="onnx")
    assert not (tmp_path / "model.tar.gz").exists()


def test_compile_is_onnx_or_none(iris: tuple[Any, np.ndarray], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compile must be 'onnx' or None, got 'tvm'"):
        pack_model(iris[0], tmp_path / "model.tar.gz", compile="tvm", sample=iris[1])  # type: ignore[arg-type]


def test_compile_cannot_be_combined_with_user_inference_code(
    iris: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")

    with pytest.raises(ValueError, match="compile='onnx' cannot be combined with code_dir"):
        pack_model(
            iris[0], tmp_path / "model.tar.gz", code_dir=tmp_path / "code", compile="onnx", sample=iris[1]
        )


@pytest.mark.parametrize("name", ["sample", "tolerance"])
def test_sample_and_tolerance_are_refused_without_compile(
    iris: tuple[Any, np.ndarray], tmp_path: Path, name: str
) -> None:
    value: Any = {"sample": iris[1], "tolerance": Tolerance()}[name]
    with pytest.raises(ValueError, match=f"{name} is used only with compile='onnx'"):
        pack_model(iris[0], tmp_path / "model.tar.gz", **{name: value})


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ([1.0, 2.0, 3.0, 4.0], r"sample must be 2-D \(rows x features\), got shape \(4,\)"),
        (np.empty((0, 4)), "sample must hold at least one row"),
        ([["a", "b", "c", "d"]], "sample must hold numbers only"),
        ([[1.0, 2.0, 3.0]], r"sample must have 4 columns \(the estimator's n_features_in_\), got 3"),
        ([[1.0, 2.0], [1.0, 2.0, 3.0]], "sample must be a 2-D array-like of numbers"),
    ],
)
def test_the_sample_must_be_numeric_rows_of_the_estimators_width(
    iris: tuple[Any, np.ndarray], tmp_path: Path, sample: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pack_model(iris[0], tmp_path / "model.tar.gz", compile="onnx", sample=sample)
    assert not (tmp_path / "model.tar.gz").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rtol": -1.0}, "rtol must be a finite number >= 0, got -1.0"),
        ({"atol": float("nan")}, "atol must be a finite number >= 0, got nan"),
        ({"rtol": "1e-5"}, "rtol must be a finite number >= 0, got '1e-5'"),
    ],
)
def test_a_tolerance_is_two_finite_non_negative_numbers(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tolerance(**arguments)


def test_tolerance_must_be_a_tolerance(iris: tuple[Any, np.ndarray], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"tolerance must be a Tolerance\(rtol=..., atol=...\)"):
        pack_model(
            iris[0],
            tmp_path / "model.tar.gz",
            compile="onnx",
            sample=iris[1],
            tolerance=(1e-3, 1e-4),  # type: ignore[arg-type]
        )


def test_a_missing_converter_names_the_compile_extra(
    iris: tuple[Any, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # how Python marks a module as not importable

    with pytest.raises(ImportError, match=r"pip install 'ml-inference-cdk\[compile\]'"):
        compile_model(iris[0], iris[1])
