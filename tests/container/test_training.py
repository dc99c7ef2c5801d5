"""`IMAGE train` run as SageMaker runs it (non-root, read-only root, tmpfs /tmp, no network, /opt/ml mounted),
then `IMAGE serve` on the model it wrote: one image does both halves.

Each trained model's predictions, served by the container, equal those of the same estimator trained in this
process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.ensemble import RandomForestClassifier

from tests.server.container_target import running_container
from tests.server.training_jobs import (
    FAILING_SCRIPT,
    IRIS_COLUMNS,
    RANDOM_FOREST_SCRIPT,
    iris_frame,
    train_in_container,
    write_job,
)

pytestmark = pytest.mark.container

TRAIN_ROWS = slice(0, None, 2)
HELD_OUT_ROWS = slice(1, None, 2)


def served_predictions(model_dir: Path, records: list[dict[str, Any]]) -> list[Any]:
    """Serve ``model_dir`` with the image and ask it for predictions on ``records`` (JSON, by column name)."""
    with running_container(model_dir, {}) as url:
        response = httpx.post(
            f"{url}/invocations",
            content=json.dumps(records),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    predictions: list[Any] = response.json()
    return predictions


def held_out_records() -> list[dict[str, Any]]:
    return iris_frame()[IRIS_COLUMNS].iloc[HELD_OUT_ROWS].to_dict(orient="records")


def in_process_random_forest(**params: Any) -> list[Any]:
    frame = iris_frame()
    train = frame.iloc[TRAIN_ROWS]
    model = RandomForestClassifier(random_state=0, **params).fit(train[IRIS_COLUMNS], train["species"])
    predictions: list[Any] = model.predict(frame[IRIS_COLUMNS].iloc[HELD_OUT_ROWS]).tolist()
    return predictions


def test_the_built_in_trainer_in_the_image_writes_a_model_the_image_serves(
    image: str, tmp_path: Path
) -> None:
    frame = iris_frame()
    job = write_job(
        tmp_path / "opt_ml",
        hyperparameters={
            "estimator": "RandomForestClassifier",
            "estimator_params": {"random_state": 0},
            "n_estimators": 20,
            "target": "species",
            "metric": "accuracy",
        },
        channels={"train": frame.iloc[TRAIN_ROWS], "validation": frame.iloc[HELD_OUT_ROWS]},
    )

    completed = train_in_container(job)

    assert completed.returncode == 0, completed.stderr
    assert not job.failure.exists()
    assert sorted(path.name for path in job.model_dir.iterdir()) == ["model-metadata.json", "model.joblib"]
    assert set(job.metrics["scores"]) == {"train", "validation"}
    assert "metric validation:accuracy=" in completed.stderr
    assert served_predictions(job.model_dir, held_out_records()) == in_process_random_forest(n_estimators=20)


def test_script_mode_in_the_image_runs_sagemaker_program_from_opt_ml_code(image: str, tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "opt_ml",
        hyperparameters={"n_estimators": 15, "max_depth": 4},
        channels={"train": iris_frame().iloc[TRAIN_ROWS]},
        code={"train.py": RANDOM_FOREST_SCRIPT},
    )

    completed = train_in_container(job, {"SAGEMAKER_PROGRAM": "train.py"})

    assert completed.returncode == 0, completed.stderr
    seen = json.loads((job.root / "output" / "data" / "seen.json").read_text())
    assert seen["argv"] == ["--max_depth", "4", "--n_estimators", "15"]
    assert (job.model_dir / "model-metadata.json").is_file()
    expected = in_process_random_forest(n_estimators=15, max_depth=4)
    assert served_predictions(job.model_dir, held_out_records()) == expected


def test_a_failing_script_in_the_image_writes_opt_ml_output_failure_and_exits_non_zero(
    image: str, tmp_path: Path
) -> None:
    job = write_job(
        tmp_path / "opt_ml",
        hyperparameters={"sagemaker_program": "train.py"},
        channels={"train": iris_frame()},
        code={"train.py": FAILING_SCRIPT},
    )

    completed = train_in_container(job)

    assert completed.returncode == 3
    failure = job.failure.read_text()
    assert "the training script train.py failed with exit code 3" in failure
    assert "the label column is missing" in failure


def test_a_bad_hyperparameter_in_the_image_writes_the_failure_reason_and_exits_1(
    image: str, tmp_path: Path
) -> None:
    job = write_job(
        tmp_path / "opt_ml",
        hyperparameters={"estimator": "RandomForestClassifier", "n_trees": 10},
        channels={"train": iris_frame()},
    )

    completed = train_in_container(job)

    assert completed.returncode == 1
    assert job.failure.read_text().startswith(
        "EstimatorError: RandomForestClassifier has no parameter 'n_trees'"
    )


def test_the_full_image_trains_an_xgboost_classifier_by_its_short_name(image: str, tmp_path: Path) -> None:
    xgboost = pytest.importorskip("xgboost")
    frame = iris_frame()
    job = write_job(
        tmp_path / "opt_ml",
        hyperparameters={
            "estimator": "XGBClassifier",
            "n_estimators": 10,
            "max_depth": 3,
            "target": "species",
        },
        channels={"train": frame.iloc[TRAIN_ROWS]},
    )
    train = frame.iloc[TRAIN_ROWS]
    expected = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(train[IRIS_COLUMNS], train["species"])

    completed = train_in_container(job)

    assert completed.returncode == 0, completed.stderr
    served = served_predictions(job.model_dir, held_out_records())
    assert served == expected.predict(frame[IRIS_COLUMNS].iloc[HELD_OUT_ROWS]).tolist()
