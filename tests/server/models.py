"""Model directories for the server tests, written as a user's model.tar.gz would unpack them.

Every model here is built from scikit-learn, numpy and the standard library only: the same directories are
mounted into the container, which cannot import test code. That is why the slow and the failing model are
small pipelines rather than classes of our own.
"""

from __future__ import annotations

import functools
import json
import operator
import platform
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

IRIS_FEATURES, IRIS_LABELS = load_iris(return_X_y=True)
IRIS_NAMES = np.array(["setosa", "versicolor", "virginica"])


def iris_model() -> LogisticRegression:
    return LogisticRegression(max_iter=1000).fit(IRIS_FEATURES, IRIS_LABELS)


def iris_text_label_model() -> LogisticRegression:
    """Predicts "setosa", "versicolor" or "virginica" rather than 0, 1, 2."""
    return LogisticRegression(max_iter=1000).fit(IRIS_FEATURES, IRIS_NAMES[IRIS_LABELS])


def multi_output_model() -> MultiOutputClassifier:
    """Two outputs per row: the iris class (3 classes) and whether it is setosa (2 classes)."""
    targets = np.column_stack([IRIS_LABELS, IRIS_LABELS == 0])
    return MultiOutputClassifier(LogisticRegression(max_iter=1000)).fit(IRIS_FEATURES, targets)


def sleepy_model() -> Pipeline:
    """A classifier whose predict sleeps, per row, as many seconds as the row's first feature says.

    Built from a ColumnTransformer that feeds feature 0 to ``time.sleep`` (through ``np.vectorize``) and a
    DummyClassifier that ignores what it gets, so it always predicts 1. "0.5,0,0,0" takes half a second.
    """
    pipeline = Pipeline(
        [
            ("sleep", ColumnTransformer([("first_feature", FunctionTransformer(), [0])])),
            ("ignore", FunctionTransformer(functools.partial(np.not_equal, None))),
            ("constant", DummyClassifier(strategy="most_frequent")),
        ]
    ).fit(np.zeros((3, 4)), [0, 1, 1])
    # Set after fit: fitting would call it, and a vectorize object that has run cannot be pickled.
    sleeper = pipeline.named_steps["sleep"].transformers_[0][1]
    sleeper.set_params(func=np.vectorize(time.sleep, otypes=[object]))
    return pipeline


def failing_model() -> Pipeline:
    """A classifier that raises TypeError (not ValueError) on every float input: a model bug, so a 500.

    Its first step is ``np.invert``, defined for integers only; the server always sends floats.
    """
    integers = (IRIS_FEATURES * 10).astype(np.int64)
    return Pipeline(
        [
            ("invert", FunctionTransformer(np.invert)),
            ("classify", LogisticRegression(max_iter=2000)),
        ]
    ).fit(integers, IRIS_LABELS)


def untrusted_skops_model() -> Pipeline:
    """Holds ``_operator.neg``, a function skops does not trust by default."""
    return Pipeline(
        [("negate", FunctionTransformer(operator.neg)), ("classify", LogisticRegression(max_iter=1000))]
    ).fit(IRIS_FEATURES, IRIS_LABELS)


class SleepWhenUnpickled:
    """Pickles as a call to ``time.sleep(seconds)``: unpickling it takes that long (a slow-loading model)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, tuple[float]]:
        return time.sleep, (self.seconds,)


def slow_loading_model(seconds: float) -> LogisticRegression:
    model = iris_model()
    model.load_delay = SleepWhenUnpickled(seconds)
    return model


class AllocateWhenUnpickled:
    """Pickles as a call to ``numpy.ones``: unpickling it fills that many MiB of memory, from a file of a few
    bytes (a model that is much bigger in memory than on disk)."""

    def __init__(self, megabytes: int) -> None:
        self.values = megabytes * 1024 * 1024 // 8

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return np.ones, (self.values,)


def memory_hungry_model(megabytes: int) -> LogisticRegression:
    """The iris model, plus ``megabytes`` MiB of ballast that exists only in memory once loaded."""
    model = iris_model()
    model.ballast = AllocateWhenUnpickled(megabytes)
    return model


def big_file_model(megabytes: int) -> LogisticRegression:
    """The iris model, plus ``megabytes`` MiB of random numbers in its file."""
    model = iris_model()
    model.padding = np.random.default_rng(0).random(megabytes * 1024 * 1024 // 8)
    return model


CUSTOMERS = pd.DataFrame(
    {
        "city": ["paris", "rome", "oslo", "lima", "rome", "paris", "oslo", "lima"] * 4,
        "plan": ["1", "2", "3", "1", "2", "3", "2", "1"] * 4,  # digits, but a category: text
        "age": [23, 35, 47, 59, 31, 62, 44, 28] * 4,
        "income": [1.5, 2.25, 3.0, 4.75, 2.0, 5.5, 3.25, 1.0] * 4,
    }
)
CUSTOMER_LABELS = np.array(["stays", "leaves"])[[0, 1, 1, 0, 1, 0, 0, 1] * 4]


def customer_pipeline() -> Pipeline:
    """A Pipeline fitted on a DataFrame: OneHotEncoder on the text columns (city, plan), StandardScaler on
    the numbers (age, income, with missing values imputed), LogisticRegression predicting "stays"/"leaves"."""
    numbers = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    columns = ColumnTransformer(
        [
            ("text", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
            ("numbers", numbers, ["age", "income"]),
        ]
    )
    return Pipeline([("columns", columns), ("classify", LogisticRegression(max_iter=1000))]).fit(
        CUSTOMERS, CUSTOMER_LABELS
    )


def iris_frame_model() -> LogisticRegression:
    """The iris LogisticRegression fitted on a DataFrame: every column a number, each with a name."""
    frame = pd.DataFrame(
        IRIS_FEATURES, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"]
    )
    return LogisticRegression(max_iter=1000).fit(frame, IRIS_LABELS)


def write_packed(directory: Path, estimator: Any, **options: Any) -> Path:
    """``directory`` holding what pack_model(estimator, ..., **options) writes, unpacked as SageMaker unpacks
    model.tar.gz."""
    import tarfile

    from ml_inference_cdk.constructs import pack_model

    directory.mkdir(parents=True, exist_ok=True)
    archive = pack_model(estimator, directory.parent / f"{directory.name}.tar.gz", **options)
    with tarfile.open(archive) as packed:
        packed.extractall(directory, filter="data")
    archive.unlink()
    return directory


def write_joblib(directory: Path, estimator: Any, *, metadata: dict[str, Any] | None = None) -> Path:
    """``directory`` holding ``model.joblib`` and, like pack_model() writes it, ``model-metadata.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, directory / "model.joblib")
    write_metadata(directory, estimator, "joblib", **(metadata or {}))
    return directory


def write_skops(directory: Path, estimator: Any) -> Path:
    import skops.io

    directory.mkdir(parents=True, exist_ok=True)
    skops.io.dump(estimator, directory / "model.skops")
    write_metadata(directory, estimator, "skops")
    return directory


def _classes(estimator: Any) -> list[Any] | None:
    """``classes_`` as lists (a multi-output classifier has one array per output)."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return None
    return [np.asarray(part).tolist() for part in classes] if isinstance(classes, list) else classes.tolist()


def write_metadata(directory: Path, estimator: Any, serialization: str, **overrides: Any) -> None:
    metadata = {
        "format": serialization,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "n_features_in": getattr(estimator, "n_features_in_", None),
        "classes": _classes(estimator),
        **overrides,
    }
    (directory / "model-metadata.json").write_text(json.dumps(metadata, indent=2))


def write_corrupt(directory: Path) -> Path:
    """``model.joblib`` that is not a pickle at all (a truncated upload, say)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.joblib").write_bytes(b"this is not a pickle\x00\x01\x02")
    return directory


def write_truncated(directory: Path, *, seconds: float = 0.0) -> Path:
    """``model.joblib`` cut one byte short, so loading it raises a bare ``EOFError`` (an interrupted
    download, say); with ``seconds``, loading takes that long before it fails."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.joblib"
    joblib.dump([SleepWhenUnpickled(seconds), iris_model()], path)
    path.write_bytes(path.read_bytes()[:-1])
    return directory


def write_ambiguous(directory: Path) -> Path:
    """Both model.joblib and model.skops: the server must not guess which one is meant."""
    write_joblib(directory, iris_model())
    write_skops(directory, iris_model())
    return directory


def write_regressor(directory: Path) -> Path:
    """A regressor: it has predict but no predict_proba."""
    return write_joblib(directory, LinearRegression().fit(IRIS_FEATURES, IRIS_LABELS))


# --- XGBoost, LightGBM and ONNX (the image's full flavour; tests/server/test_kind_frameworks*.py) --------
# The files are written by the frameworks' own save functions; the container only loads them.

IRIS_SETOSA = (IRIS_LABELS == 0).astype(np.int64)
"""Iris as a two-class problem: setosa or not."""


def xgboost_booster(objective: str = "multi:softprob") -> Any:
    """A small native XGBoost booster on iris: three classes, or setosa-or-not for ``binary:*``."""
    import xgboost

    binary = objective.startswith("binary:")
    labels = IRIS_SETOSA if binary else IRIS_LABELS
    params: dict[str, Any] = {"objective": objective, "nthread": 1, "max_depth": 2}
    if objective.startswith("multi:"):
        params["num_class"] = 3
    return xgboost.train(params, xgboost.DMatrix(IRIS_FEATURES, label=labels), num_boost_round=5)


def write_xgboost(directory: Path, booster: Any) -> Path:
    """``directory/xgboost-model`` as SageMaker's XGBoost algorithm writes it (UBJSON, no extension)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "xgboost-model").write_bytes(bytes(booster.save_raw("ubj")))
    return directory


def lightgbm_booster(objective: str = "multiclass") -> Any:
    """A small native LightGBM booster on iris: three classes, or setosa-or-not for ``binary``."""
    import lightgbm

    params: dict[str, Any] = {"objective": objective, "num_threads": 1, "verbose": -1, "min_data_in_leaf": 5}
    if objective.startswith("multiclass"):
        params["num_class"] = 3
    labels = IRIS_SETOSA if objective == "binary" else IRIS_LABELS
    return lightgbm.train(params, lightgbm.Dataset(IRIS_FEATURES, label=labels), num_boost_round=5)


def write_lightgbm(directory: Path, booster: Any) -> Path:
    """``directory/model.txt``, LightGBM's text format."""
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(directory / "model.txt")
    return directory


def onnx_export(estimator: Any, *, zipmap: bool = True) -> bytes:
    """``estimator`` exported by skl2onnx with one float32 input [rows, features]; ``zipmap=False`` makes the
    probabilities a tensor rather than skl2onnx's default list of {class: probability}."""
    from skl2onnx import to_onnx

    options = None if zipmap else {"zipmap": False}
    exported = to_onnx(estimator, IRIS_FEATURES[:1].astype(np.float32), options=options)
    return bytes(exported.SerializeToString())


def write_onnx(directory: Path, estimator: Any, *, zipmap: bool = True) -> Path:
    """``directory/model.onnx``: see ``onnx_export``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(onnx_export(estimator, zipmap=zipmap))
    return directory


def write_onnx_two_inputs(directory: Path) -> Path:
    """``model.onnx`` with two inputs (an Add of two float tensors): not something the server can feed."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        "two_inputs",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 4]) for name in ("a", "b")],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 4])],
    )
    directory.mkdir(parents=True, exist_ok=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    (directory / "model.onnx").write_bytes(model.SerializeToString())
    return directory


def write_onnx_rank_3(directory: Path) -> Path:
    """``model.onnx`` whose one input has rank 3 (an image-like [rows, 2, 2]): not rows of features."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "rank_3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2, 2])],
    )
    directory.mkdir(parents=True, exist_ok=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    (directory / "model.onnx").write_bytes(model.SerializeToString())
    return directory


def write_corrupt_file(directory: Path, name: str) -> Path:
    """``directory/name`` holding bytes no framework reads (a truncated upload, say)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(b"this is not a model\x00\x01\x02")
    return directory


# --- compiled models (loaders/compiled.py): model.onnx beside the native model, with its record ----------


def write_compiled(directory: Path, estimator: Any, **overrides: Any) -> Path:
    """``directory`` as pack_model(compile="onnx", sample=iris) writes it: model.joblib, model.onnx and
    model-metadata.json whose ``compiled`` record verifies it; ``overrides`` replace fields of the record."""
    write_packed(directory, estimator, compile="onnx", sample=IRIS_FEATURES)
    record = compiled_record(directory)
    assert record["status"] == "verified", record
    set_compiled_record(directory, {**record, **overrides})
    return directory


def compiled_record(directory: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((directory / "model-metadata.json").read_text())["compiled"]
    return record


def set_compiled_record(directory: Path, record: dict[str, Any] | None) -> None:
    """Replace the ``compiled`` record of ``directory``'s model-metadata.json (None: remove it)."""
    path = directory / "model-metadata.json"
    metadata = json.loads(path.read_text())
    metadata.pop("compiled", None)
    if record is not None:
        metadata["compiled"] = record
    path.write_text(json.dumps(metadata, indent=2))


def iris_forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(
        IRIS_FEATURES, IRIS_LABELS
    )
