"""``ml-inference-pack``: run as users run it (a separate process), on files as users have them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_inference_cdk import ModelArtifact
from ml_inference_cdk.pack_cli import main
from tests.support.cdk import ROOT
from tests.unit.compile_splits import archive_member, compiled_record


def pack(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m ml_inference_cdk.pack_cli``: the console script's code, from this checkout."""
    return subprocess.run(
        [sys.executable, "-m", "ml_inference_cdk.pack_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    return features, labels


@pytest.fixture
def iris_joblib(iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=1000).fit(*iris), path)
    return path


@pytest.fixture
def iris_csv(iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> Path:
    path = tmp_path / "sample.csv"
    rows = "\n".join(",".join(repr(float(value)) for value in row) for row in iris[0])
    path.write_text(f"sepal_length,sepal_width,petal_length,petal_width\n{rows}\n")
    return path


def test_the_cli_packs_a_verified_onnx_copy_from_a_csv_sample_with_a_header_deterministically(
    iris_joblib: Path, iris_csv: Path, tmp_path: Path
) -> None:
    first = pack(iris_joblib, "--sample", iris_csv, "--compile", "onnx", "--output", tmp_path / "a.tar.gz")
    second = pack(iris_joblib, "--sample", iris_csv, "--compile", "onnx", "--output", tmp_path / "b.tar.gz")
    assert second.returncode == 0, second.stderr

    assert first.returncode == 0, first.stderr
    outcome, written = first.stdout.splitlines()
    figures = r"\(labels identical; max \|Δ\| probabilities \d\.?\d*e-0\d\)"
    assert re.fullmatch(rf"compiled: model\.onnx verified on 150 rows {figures}", outcome), outcome
    assert written == f"wrote {tmp_path / 'a.tar.gz'}"
    assert archive_member(tmp_path / "a.tar.gz", "model.onnx") is not None
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()  # across processes
    ModelArtifact.from_asset(tmp_path / "a.tar.gz")


def test_the_cli_reports_a_refusal_and_still_writes_the_native_archive(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import joblib
    import skl2onnx
    from sklearn.kernel_ridge import KernelRidge

    joblib.dump(KernelRidge().fit(*iris), tmp_path / "ridge.joblib")
    np.save(tmp_path / "sample.npy", iris[0][:40])

    completed = pack(
        tmp_path / "ridge.joblib", "--sample", tmp_path / "sample.npy", "--compile", "onnx",
        "--output", tmp_path / "model.tar.gz",
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0] == (
        f"not compiled: skl2onnx {skl2onnx.__version__} has no converter for "
        "sklearn.kernel_ridge.KernelRidge; the archive serves model.joblib"
    )
    assert compiled_record(tmp_path / "model.tar.gz")["sample_rows"] == 40
    assert archive_member(tmp_path / "model.tar.gz", "model.onnx") is None


def test_the_cli_loads_a_skops_lightgbm_model_and_keeps_skops_with_the_tolerance_given(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import skops.io
    from lightgbm import LGBMClassifier

    skops.io.dump(LGBMClassifier(n_estimators=10, verbose=-1).fit(*iris), tmp_path / "model.skops")
    np.save(tmp_path / "sample.npy", iris[0])

    completed = pack(
        tmp_path / "model.skops", "--sample", tmp_path / "sample.npy", "--compile", "onnx",
        "--rtol", "1e-4", "--atol", "1e-5", "--output", tmp_path / "model.tar.gz",
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("compiled: model.onnx verified on 150 rows (labels identical; ")
    record = compiled_record(tmp_path / "model.tar.gz")
    assert (record["native_file"], record["tolerance"]) == ("model.skops", {"rtol": 1e-4, "atol": 1e-5})
    assert record["converter"].startswith("onnxmltools ")


def test_the_cli_refuses_a_skops_file_holding_types_from_outside_the_model_libraries(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import operator

    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression(max_iter=1000)).fit(*iris)
    skops.io.dump(model, tmp_path / "model.skops")

    completed = pack(tmp_path / "model.skops", "--output", tmp_path / "model.tar.gz")

    assert completed.returncode == 2
    assert "holds types from outside scikit-learn, NumPy, SciPy, XGBoost and LightGBM" in completed.stderr
    assert "_operator.neg" in completed.stderr
    assert not (tmp_path / "model.tar.gz").exists()


def test_the_cli_without_compile_just_packs(iris_joblib: Path, tmp_path: Path) -> None:
    completed = pack(iris_joblib, "--output", tmp_path / "model.tar.gz")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"wrote {tmp_path / 'model.tar.gz'}\n"
    assert archive_member(tmp_path / "model.tar.gz", "model.onnx") is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--compile", "onnx"], "--compile onnx needs --sample"),
        (["--compile", "onnx", "--sample", "{text}", "--rtol", "-1"], "rtol must be a finite number >= 0"),
        (["--compile", "onnx", "--sample", "{text}"], "must hold comma-separated numbers, one row per line"),
        (["--compile", "tvm", "--sample", "{text}"], "argument --compile: invalid choice: 'tvm'"),
    ],
)
def test_the_cli_exits_2_with_a_message_for_bad_arguments_and_files(
    iris_joblib: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    text = tmp_path / "text.csv"
    text.write_text("a,b,c,d\n1,2,3,4\n1,2,three,4\n")

    completed = pack(
        iris_joblib, "--output", tmp_path / "model.tar.gz", *(a.format(text=text) for a in arguments)
    )

    assert completed.returncode == 2
    assert completed.stderr.startswith("usage: ml-inference-pack")
    assert message in completed.stderr
    assert not (tmp_path / "model.tar.gz").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["{model}", "--sample", "{sample}", "--output", "{out}"], "--sample only apply with --compile onnx"),
        (["{missing}", "--output", "{out}"], "MODEL: no such file"),
        (["{pickle}", "--output", "{out}"], "MODEL must be a .joblib or .skops file"),
        (["{model}", "--output", "{dir}/model.zip"], r"output must end with .tar.gz"),
        (["{model}", "--compile", "onnx", "--sample", "{dir}/sample.parquet", "--output", "{out}"],
         "sample must be a .csv or .npy file"),
    ],
)  # fmt: skip
def test_the_cli_names_what_is_wrong_with_its_files(
    iris_joblib: Path,
    iris_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    (tmp_path / "model.pkl").write_bytes(b"")
    names: dict[str, Any] = {
        "model": iris_joblib,
        "sample": iris_csv,
        "out": tmp_path / "model.tar.gz",
        "dir": tmp_path,
        "missing": tmp_path / "missing.joblib",
        "pickle": tmp_path / "model.pkl",
    }

    with pytest.raises(SystemExit) as exited:
        main([argument.format(**names) for argument in arguments])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err
