"""The built-in trainer in this process: an estimator named by hyperparameters, fitted on the train channel,
scored, and written as serve loads it. Each bad hyperparameter is an error that names it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn_server.training.builtin import train
from sklearn_server.training.data import DataError
from sklearn_server.training.environment import TrainingEnvironment
from sklearn_server.training.estimators import EstimatorError

from tests.server.targets import start_target
from tests.server.training_jobs import IRIS_COLUMNS, Job, iris_frame, write_job

ROWS = "5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n7.7,3.0,6.1,2.3\n6.0,2.2,5.0,1.5\n"


def run(job: Job) -> dict[str, Any]:
    return train(TrainingEnvironment.from_env({"SAGEMAKER_BASE_DIR": str(job.root)}))


def job_with(tmp_path: Path, csv_header: bool = True, **hyperparameters: Any) -> Job:
    frame = iris_frame()
    return write_job(
        tmp_path / "opt_ml",
        hyperparameters={**hyperparameters, **({} if csv_header else {"header": False})},
        channels={"train": frame.iloc[::2], "validation": frame.iloc[1::2]},
        header=csv_header,
    )


def served_predictions(model_dir: Path, tmp_path: Path, body: str, content_type: str) -> list[Any]:
    with start_target("asgi", model_dir, {}, tmp_path) as client:
        response = client.request(
            "POST",
            "/invocations",
            headers={"Content-Type": content_type, "Accept": "application/json"},
            content=body,
        )
    assert response.status_code == 200, response.text
    predictions: list[Any] = response.json()
    return predictions


def test_a_model_trained_without_a_header_serves_the_predictions_of_the_same_estimator(
    tmp_path: Path,
) -> None:
    job = job_with(tmp_path, csv_header=False, estimator="LogisticRegression", max_iter=1000, target=0)
    frame = iris_frame().iloc[::2]
    expected = LogisticRegression(max_iter=1000).fit(
        frame[IRIS_COLUMNS].to_numpy(), frame["species"].to_numpy()
    )

    run(job)

    served = served_predictions(job.model_dir, tmp_path, ROWS, "text/csv")
    rows = np.array([[float(v) for v in line.split(",")] for line in ROWS.splitlines()])
    assert served == expected.predict(rows).tolist()


def test_a_model_trained_with_a_header_records_its_columns_and_serves_rows_by_name(tmp_path: Path) -> None:
    job = job_with(
        tmp_path, estimator="sklearn.linear_model.LogisticRegression", max_iter=1000, target="species"
    )
    frame = iris_frame().iloc[::2]
    expected = LogisticRegression(max_iter=1000).fit(frame[IRIS_COLUMNS], frame["species"])
    records = [
        dict(zip(IRIS_COLUMNS, row, strict=True)) for row in frame[IRIS_COLUMNS].head(5).to_numpy().tolist()
    ]

    run(job)

    metadata = json.loads((job.model_dir / "model-metadata.json").read_text())
    assert metadata["feature_names"] == IRIS_COLUMNS
    assert metadata["feature_dtypes"] == dict.fromkeys(IRIS_COLUMNS, "number")
    served = served_predictions(job.model_dir, tmp_path, json.dumps(records), "application/json")
    assert served == expected.predict(pd.DataFrame(records)).tolist()


def test_hyperparameters_that_are_not_the_trainers_own_are_estimator_parameters(tmp_path: Path) -> None:
    job = job_with(
        tmp_path,
        estimator="RandomForestClassifier",
        estimator_params={"max_depth": 3, "random_state": 0},
        n_estimators=7,
        target="species",
    )

    run(job)

    import joblib

    model = joblib.load(job.model_dir / "model.joblib")
    assert isinstance(model, RandomForestClassifier)
    assert (model.n_estimators, model.max_depth, model.random_state) == (7, 3, 0)


def test_the_validation_channel_is_scored_with_the_metric_into_metrics_json(tmp_path: Path) -> None:
    job = job_with(
        tmp_path, estimator="LogisticRegression", max_iter=1000, target="species", metric="f1_macro"
    )

    metrics = run(job)

    assert job.metrics == metrics
    assert metrics["metric"] == "f1_macro"
    assert set(metrics["scores"]) == {"train", "validation"}
    assert 0.8 < metrics["scores"]["validation"] <= 1.0
    assert metrics["rows"] == {"train": 75, "validation": 75}


def test_the_default_metric_is_accuracy_for_a_classifier_and_a_metrics_function_works_too(
    tmp_path: Path,
) -> None:
    default = run(job_with(tmp_path / "a", estimator="LogisticRegression", max_iter=1000))
    function = run(
        job_with(tmp_path / "b", estimator="LogisticRegression", max_iter=1000, metric="accuracy_score")
    )

    assert default["metric"] == "accuracy"
    assert default["scores"] == function["scores"]


@pytest.mark.parametrize(
    ("hyperparameters", "error", "message"),
    [
        ({}, EstimatorError, "hyperparameter 'estimator' is required"),
        (
            {"estimator": "RandomForestClasifier"},
            EstimatorError,
            "unknown estimator 'RandomForestClasifier': did you mean RandomForestClassifier",
        ),
        (
            {"estimator": "os.system"},
            EstimatorError,
            "'os.system' is not allowed: it must come from one of sklearn, xgboost, lightgbm",
        ),
        ({"estimator": "subprocess.Popen"}, EstimatorError, "is not allowed"),
        ({"estimator": "sklearn.preprocessing.StandardScaler"}, EstimatorError, "is not an estimator class"),
        ({"estimator": "sklearn.utils._testing.MinimalClassifier"}, EstimatorError, "is private"),
        (
            {"estimator": "Ridge", "n_trees": 5},
            EstimatorError,
            "Ridge has no parameter 'n_trees'; its parameters are alpha, ",
        ),
        (
            {"estimator": "Ridge", "estimator_params": "[1]"},
            EstimatorError,
            "estimator_params must be a JSON object",
        ),
        (
            {"estimator": "Ridge", "target": "colour"},
            EstimatorError,
            "target column 'colour' is not in channel 'train'; its columns are species, sepal_length",
        ),
        (
            {"estimator": "Ridge", "metric": "acuracy"},
            EstimatorError,
            "unknown metric 'acuracy': did you mean accuracy",
        ),
        (
            {"estimator": "Ridge", "header": "maybe"},
            EstimatorError,
            "hyperparameter 'header' must be true or false",
        ),
        ({"estimator": "Ridge", "train_channel": "fit"}, EstimatorError, "the channel 'fit' is missing"),
        ({"estimator": "Ridge", "alpha": -1}, ValueError, "alpha"),
    ],
)
def test_a_bad_hyperparameter_is_an_error_that_names_it(
    tmp_path: Path, hyperparameters: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(job_with(tmp_path, **hyperparameters))


def test_without_a_header_the_target_is_a_column_number(tmp_path: Path) -> None:
    with pytest.raises(EstimatorError, match="target must be a column number from 0 to 4 when header=false"):
        run(job_with(tmp_path, csv_header=False, estimator="Ridge", target="species"))


def test_a_missing_training_channel_names_the_channels_there_are(tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "opt_ml", hyperparameters={"estimator": "Ridge"}, channels={"test": iris_frame()}
    )

    with pytest.raises(
        EstimatorError, match=r"the channel 'train' or 'training' is missing \(channels: test\)"
    ):
        run(job)


def test_the_training_channel_may_be_called_training_as_the_sdk_names_a_single_input(tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "opt_ml", hyperparameters={"estimator": "Ridge"}, channels={"training": iris_frame()}
    )

    assert run(job)["rows"] == {"training": 150}


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow is installed")
def test_parquet_without_pyarrow_is_an_error_that_says_so(tmp_path: Path) -> None:
    job = write_job(tmp_path / "opt_ml", hyperparameters={"estimator": "Ridge"}, channels={})
    (job.root / "input" / "data" / "train").mkdir(parents=True)
    (job.root / "input" / "data" / "train" / "part-0.parquet").write_bytes(b"PAR1")

    with pytest.raises(DataError, match="is Parquet, which needs pyarrow, and this image has none"):
        run(job)


def test_files_of_one_channel_must_have_the_same_columns(tmp_path: Path) -> None:
    job = job_with(tmp_path, estimator="Ridge")
    iris_frame().drop(columns=["petal_width"]).to_csv(
        job.root / "input" / "data" / "train" / "more.csv", index=False
    )

    with pytest.raises(DataError, match="every file of a channel must have the same columns"):
        run(job)


def test_pipe_mode_is_refused(tmp_path: Path) -> None:
    job = job_with(tmp_path, estimator="Ridge")
    (job.root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "Pipe"}})
    )

    with pytest.raises(DataError, match="channel 'train' uses Pipe mode"):
        run(job)


def test_a_tuning_jobs_objective_metric_hyperparameter_is_not_an_estimator_parameter(tmp_path: Path) -> None:
    job = job_with(tmp_path, estimator="Ridge", _tuning_objective_metric="validation:r2", metric="r2")

    assert set(run(job)["scores"]) == {"train", "validation"}


@pytest.mark.parametrize(
    ("name", "package"), [("XGBClassifier", "xgboost"), ("lightgbm.LGBMClassifier", "lightgbm")]
)
def test_xgboost_and_lightgbm_estimators_train_where_the_image_has_them(
    tmp_path: Path, name: str, package: str
) -> None:
    pytest.importorskip(package)
    job = job_with(tmp_path, estimator=name, n_estimators=5, target="species")

    metrics = run(job)

    assert metrics["estimator"].startswith(f"{package}.")
    assert metrics["scores"]["validation"] > 0.8
    served = served_predictions(job.model_dir, tmp_path, json.dumps(held_out_records(3)), "application/json")
    assert len(served) == 3


def held_out_records(count: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = (
        iris_frame()[IRIS_COLUMNS].iloc[1::2].head(count).to_dict(orient="records")
    )
    return records
