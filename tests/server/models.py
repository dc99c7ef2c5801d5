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


def write_packed(directory: Path, estimator: Any) -> Path:
    """``directory`` holding what pack_model() writes, unpacked as SageMaker unpacks model.tar.gz."""
    import tarfile

    from ml_inference_cdk.constructs import pack_model

    directory.mkdir(parents=True, exist_ok=True)
    archive = pack_model(estimator, directory.parent / f"{directory.name}.tar.gz")
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
