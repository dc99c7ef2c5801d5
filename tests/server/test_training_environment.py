"""SageMaker's training contract as ``train`` reads it: hyperparameters.json, inputdataconfig.json,
resourceconfig.json and the SM_* variables, and what a user's script is given. No container, no training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn_server.training.environment import TrainingConfigError, TrainingEnvironment


def write_config(base: Path, **files: object) -> Path:
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (config / f"{name}.json").write_text(text)
    return base


def read(base: Path, **env: str) -> TrainingEnvironment:
    return TrainingEnvironment.from_env({"SAGEMAKER_BASE_DIR": str(base), **env})


def test_hyperparameter_strings_are_parsed_as_json_where_they_are_json(tmp_path: Path) -> None:
    hps = {
        "n_estimators": "100",
        "criterion": '"gini"',
        "plain": "gini",
        "estimator_params": '{"C": 2.5}',
        "fit_intercept": "true",
        "layers": "[64, 32]",
    }

    env = read(write_config(tmp_path, hyperparameters=hps))

    assert env.hyperparameters == {
        "n_estimators": 100,
        "criterion": "gini",
        "plain": "gini",
        "estimator_params": {"C": 2.5},
        "fit_intercept": True,
        "layers": [64, 32],
    }


def test_sagemaker_and_tuning_hyperparameters_are_the_frameworks_and_name_the_script(tmp_path: Path) -> None:
    hps = {
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"/opt/ml/input/data/code"',
        "sagemaker_job_name": '"job-1"',
        "_tuning_objective_metric": '"validation:accuracy"',
        "alpha": "0.5",
    }

    env = read(write_config(tmp_path, hyperparameters=hps))

    assert env.hyperparameters == {"alpha": 0.5}
    assert env.framework_parameters["sagemaker_job_name"] == "job-1"
    assert env.framework_parameters["_tuning_objective_metric"] == "validation:accuracy"
    assert env.program == "train.py"
    assert env.submit_directory == "/opt/ml/input/data/code"


def test_sagemaker_program_in_the_environment_wins_over_the_hyperparameter(tmp_path: Path) -> None:
    base = write_config(tmp_path, hyperparameters={"sagemaker_program": '"other.py"'})

    env = read(base, SAGEMAKER_PROGRAM="train.py", SAGEMAKER_SUBMIT_DIRECTORY="/code")

    assert (env.program, env.submit_directory) == ("train.py", "/code")


def test_without_a_program_the_built_in_trainer_runs_from_opt_ml_code_by_default(tmp_path: Path) -> None:
    env = read(write_config(tmp_path, hyperparameters={}))

    assert env.program is None
    assert env.submit_directory == "/opt/ml/code"


def test_channels_come_from_inputdataconfig_and_live_under_input_data(tmp_path: Path) -> None:
    config = {"train": {"ContentType": "text/csv"}, "validation": {"ContentType": "text/csv"}}

    env = read(write_config(tmp_path, inputdataconfig=config))

    assert env.channels == {
        "train": tmp_path / "input" / "data" / "train",
        "validation": tmp_path / "input" / "data" / "validation",
    }
    assert env.input_data_config == config


def test_sm_channel_variables_say_where_a_channel_is_and_add_channels(tmp_path: Path) -> None:
    base = write_config(tmp_path, inputdataconfig={"train": {}})

    env = read(base, SM_CHANNEL_TRAIN="/data/train", SM_CHANNEL_TEST="/data/test", SM_CHANNELS='["extra"]')

    assert env.channels == {
        "train": Path("/data/train"),
        "extra": tmp_path / "input" / "data" / "extra",
        "test": Path("/data/test"),
    }


def test_without_inputdataconfig_the_channels_are_the_folders_under_input_data(tmp_path: Path) -> None:
    for name in ("validation", "train"):
        (tmp_path / "input" / "data" / name).mkdir(parents=True)

    env = read(tmp_path)

    assert list(env.channels) == ["train", "validation"]


def test_sm_hps_replaces_hyperparameters_json(tmp_path: Path) -> None:
    base = write_config(tmp_path, hyperparameters={"alpha": "1"})

    env = read(base, SM_HPS='{"alpha": 2, "estimator": "Ridge"}')

    assert env.hyperparameters == {"alpha": 2, "estimator": "Ridge"}


def test_the_tree_is_under_opt_ml_unless_variables_move_it() -> None:
    default = TrainingEnvironment.from_env({"SAGEMAKER_BASE_DIR": "/nonexistent/ml"})
    moved = TrainingEnvironment.from_env(
        {"SM_MODEL_DIR": "/m", "SM_OUTPUT_DIR": "/o", "SM_OUTPUT_DATA_DIR": "/d", "SM_INPUT_DIR": "/i"}
    )

    assert default.model_dir == Path("/nonexistent/ml/model")
    assert default.failure_file == Path("/nonexistent/ml/output/failure")
    assert default.output_data_dir == Path("/nonexistent/ml/output/data")
    assert (moved.model_dir, moved.output_dir, moved.output_data_dir) == (Path("/m"), Path("/o"), Path("/d"))
    assert moved.input_config_dir == Path("/i/config")


def test_resourceconfig_names_the_hosts_and_a_local_run_is_algo_1(tmp_path: Path) -> None:
    base = write_config(
        tmp_path / "a", resourceconfig={"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}
    )

    assert (read(base).current_host, read(base).hosts) == ("algo-2", ["algo-1", "algo-2"])
    assert (read(tmp_path / "b").current_host, read(tmp_path / "b").hosts) == ("algo-1", ["algo-1"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("hyperparameters", "{not json", "hyperparameters.json is not valid JSON"),
        ("inputdataconfig", "[1, 2]", "inputdataconfig.json must hold a JSON object, got list"),
    ],
)
def test_a_config_file_sagemaker_would_not_write_is_an_error_naming_it(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    base = write_config(tmp_path, **{name: content})

    with pytest.raises(TrainingConfigError, match=message):
        read(base)


def test_sm_channels_must_be_a_json_list_of_names(tmp_path: Path) -> None:
    with pytest.raises(
        TrainingConfigError, match=r'SM_CHANNELS must be a JSON list of channel names, e\.g\. \["train"\]'
    ):
        read(tmp_path, SM_CHANNELS="train,validation")


def test_a_script_gets_the_hyperparameters_as_sorted_name_value_arguments() -> None:
    env = TrainingEnvironment(
        hyperparameters={"n_estimators": 100, "a": 1.5, "params": {"y": 2, "x": 1}, "flag": True}
    )

    assert env.to_cmd_args() == [
        "-a",
        "1.5",
        "--flag",
        "True",
        "--n_estimators",
        "100",
        "--params",
        "x=1,y=2",
    ]


def test_a_script_gets_the_sm_variables_of_the_training_toolkit() -> None:
    env = TrainingEnvironment(
        model_dir=Path("/opt/ml/model"),
        hyperparameters={"n_estimators": 100, "criterion": "gini"},
        channels={"train": Path("/opt/ml/input/data/train"), "validation": Path("/v")},
        program="train.py",
        submit_directory="/opt/ml/code",
    )

    variables = env.to_env_vars()

    assert variables["SM_MODEL_DIR"] == "/opt/ml/model"
    assert variables["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert variables["SM_CHANNEL_VALIDATION"] == "/v"
    assert json.loads(variables["SM_CHANNELS"]) == ["train", "validation"]
    assert json.loads(variables["SM_HPS"]) == {"n_estimators": 100, "criterion": "gini"}
    assert variables["SM_HP_N_ESTIMATORS"] == "100"
    assert variables["SM_HP_CRITERION"] == "gini"
    assert variables["SM_OUTPUT_DATA_DIR"] == "/opt/ml/output/data"
    assert variables["SM_USER_ENTRY_POINT"] == "train.py"
    assert variables["SM_MODULE_DIR"] == "/opt/ml/code"
    assert json.loads(variables["SM_USER_ARGS"]) == env.to_cmd_args()
    assert json.loads(variables["SM_TRAINING_ENV"])["channel_train"] == "/opt/ml/input/data/train"
    assert int(variables["SM_NUM_CPUS"]) >= 1
