"""``train`` as a local process on an /opt/ml tree (SAGEMAKER_BASE_DIR): script mode, and every failure
written to output/failure with a non-zero exit. The same runs in the real image are tests/container."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import joblib
import pytest
from sklearn.ensemble import RandomForestClassifier

from tests.server.training_jobs import (
    FAILING_SCRIPT,
    IRIS_COLUMNS,
    RANDOM_FOREST_SCRIPT,
    TRAIN,
    Job,
    iris_frame,
    train_locally,
    write_job,
)

pytestmark = pytest.mark.slow


def script_job(tmp_path: Path, script: str, **hyperparameters: object) -> Job:
    return write_job(
        tmp_path / "opt_ml",
        hyperparameters={"sagemaker_program": "train.py", **hyperparameters},
        channels={"train": iris_frame()},
        code={"train.py": script},
    )


def test_script_mode_runs_the_script_with_hyperparameters_as_arguments_and_sm_variables(
    tmp_path: Path,
) -> None:
    job = script_job(tmp_path, RANDOM_FOREST_SCRIPT, n_estimators=5, max_depth=3)

    completed = train_locally(job)

    assert completed.returncode == 0, completed.stderr
    seen = json.loads((job.root / "output" / "data" / "seen.json").read_text())
    assert seen == {
        "argv": ["--max_depth", "3", "--n_estimators", "5"],
        "hps": {"max_depth": 3, "n_estimators": 5},
        "channels": ["train"],
        "hp_n_estimators": "5",
    }
    model = joblib.load(job.model_dir / "model.joblib")
    expected = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(
        iris_frame()[IRIS_COLUMNS], iris_frame()["species"]
    )
    assert (
        model.predict(iris_frame()[IRIS_COLUMNS]).tolist()
        == expected.predict(iris_frame()[IRIS_COLUMNS]).tolist()
    )
    metadata = json.loads((job.model_dir / "model-metadata.json").read_text())
    assert metadata["feature_names"] == IRIS_COLUMNS


def test_a_failing_script_exits_with_its_code_and_its_stderr_tail_is_the_failure(tmp_path: Path) -> None:
    job = script_job(tmp_path, FAILING_SCRIPT)

    completed = train_locally(job)

    assert completed.returncode == 3
    failure = job.failure.read_text()
    assert failure.startswith("the training script train.py failed with exit code 3")
    assert "the label column is missing" in failure
    assert "the label column is missing" in completed.stderr


def test_a_failure_file_the_script_wrote_itself_is_kept(tmp_path: Path) -> None:
    script = (
        "import os, sys\nopen(os.environ['SM_OUTPUT_DIR'] + '/failure', 'w').write('mine')\nsys.exit(1)\n"
    )
    job = script_job(tmp_path, script)

    completed = train_locally(job)

    assert completed.returncode == 1
    assert job.failure.read_text() == "mine"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAGEMAKER_PROGRAM": "missing.py"}, "SAGEMAKER_PROGRAM names 'missing.py', which is not a file in"),
        (
            {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/code.tar.gz"},
            "this image does not download code from S3",
        ),
    ],
)
def test_a_script_that_cannot_be_found_is_a_failure_naming_it(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    job = script_job(tmp_path, RANDOM_FOREST_SCRIPT)

    completed = train_locally(job, env)

    assert completed.returncode == 1
    assert message in job.failure.read_text()


def test_a_script_that_writes_no_model_fails(tmp_path: Path) -> None:
    job = script_job(tmp_path, "print('forgot to save the model')\n")

    completed = train_locally(job)

    assert completed.returncode == 1
    assert "the script wrote no model to" in job.failure.read_text()


def test_a_bad_hyperparameter_of_the_built_in_trainer_is_the_failure_reason(tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "opt_ml", hyperparameters={"estimator": "os.system"}, channels={"train": iris_frame()}
    )

    completed = train_locally(job)

    assert completed.returncode == 1
    assert job.failure.read_text().startswith("EstimatorError: estimator 'os.system' is not allowed")
    assert not (job.model_dir / "model.joblib").exists()


def test_an_unreadable_configuration_exits_2_with_the_failure_reason(tmp_path: Path) -> None:
    job = write_job(tmp_path / "opt_ml", hyperparameters={}, channels={"train": iris_frame()})
    (job.root / "input" / "config" / "hyperparameters.json").write_text("{broken")

    completed = train_locally(job)

    assert completed.returncode == 2
    assert "hyperparameters.json is not valid JSON" in job.failure.read_text()


def test_the_submit_directory_may_be_the_sdks_sourcedir_tar_gz(tmp_path: Path) -> None:
    job = script_job(tmp_path, RANDOM_FOREST_SCRIPT)
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(job.root / "code" / "train.py", arcname="train.py")
    shutil.rmtree(job.root / "code")

    completed = train_locally(job, {"SAGEMAKER_SUBMIT_DIRECTORY": str(archive)})

    assert completed.returncode == 0, completed.stderr
    assert (job.model_dir / "model.joblib").is_file()


def test_sigterm_reaches_the_script_as_a_stopped_training_job_sends_it(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys, time\n"
        "def stop(signum, frame):\n"
        "    open(os.environ['SM_OUTPUT_DATA_DIR'] + '/stopped', 'w').write(str(signum))\n"
        "    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    job = script_job(tmp_path, script)
    env = {
        **os.environ,
        "SAGEMAKER_BASE_DIR": str(job.root),
        "SAGEMAKER_SUBMIT_DIRECTORY": str(job.root / "code"),
    }
    with subprocess.Popen(
        [sys.executable, str(TRAIN)], env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)

    assert exit_code == 143
    assert (job.root / "output" / "data" / "stopped").read_text() == str(int(signal.SIGTERM))
    assert "failed with exit code 143" in job.failure.read_text()


def test_the_container_log_level_hyperparameter_quietens_the_log(tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "opt_ml",
        hyperparameters={"estimator": "Ridge", "sagemaker_container_log_level": 40},
        channels={"train": iris_frame()},
    )

    completed = train_locally(job)

    assert completed.returncode == 0, completed.stderr
    assert "fitting Ridge" not in completed.stderr
