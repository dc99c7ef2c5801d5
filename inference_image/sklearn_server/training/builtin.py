"""The built-in trainer: an estimator configured only by hyperparameters, fitted on the ``train`` channel.

Hyperparameters (values as SageMaker passes them: strings, parsed as JSON where they are JSON):

- ``estimator`` (required): a scikit-learn estimator class (``RandomForestClassifier``,
  ``sklearn.linear_model.Ridge``), or XGBoost's and LightGBM's (``XGBClassifier``, ``LGBMRegressor``) where
  the image has them.
- ``estimator_params``: a JSON object of the estimator's parameters. Any other hyperparameter that is not one
  of the names below is a parameter too (``n_estimators=200``), which is how a tuning job varies one.
- ``target``: the column to predict. Default: the first column (SageMaker's built-in algorithms' convention).
- ``header``: whether each CSV file's first line names the columns. Default: true. With a header the model is
  fitted on a DataFrame and serves rows by column name; without, on a plain array of numbers.
- ``train_channel`` / ``validation_channel``: Default: ``train`` (or ``training``, the SDK's name for a single
  input) / ``validation`` when that channel exists.
- ``metric``: a scikit-learn scorer name or sklearn.metrics function. Default: accuracy (classifier) or r2.

Writes model.joblib and model-metadata.json to the model directory (``model_output``) and the scores to
``output/data/metrics.json``; logs one ``metric <channel>:<name>=<value>`` line per score, for a training
job's MetricDefinitions (regex ``<channel>:<name>=([-0-9.e]+)``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from sklearn_server.training.data import read_channel
from sklearn_server.training.environment import METRICS_FILE, TrainingEnvironment
from sklearn_server.training.estimators import (
    EstimatorError,
    build_estimator,
    default_metric,
    resolve_estimator,
    resolve_metric,
)
from sklearn_server.training.model_output import write_model

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

ESTIMATOR: Final = "estimator"
ESTIMATOR_PARAMS: Final = "estimator_params"
TARGET: Final = "target"
HEADER: Final = "header"
METRIC: Final = "metric"
TRAIN_CHANNEL: Final = "train_channel"
VALIDATION_CHANNEL: Final = "validation_channel"
TRAINER_HYPERPARAMETERS: Final = (
    ESTIMATOR,
    ESTIMATOR_PARAMS,
    TARGET,
    HEADER,
    METRIC,
    TRAIN_CHANNEL,
    VALIDATION_CHANNEL,
)
"""The trainer's own names; every other hyperparameter is a parameter of the estimator."""
TRAIN_CHANNELS: Final = ("train", "training")


def train(env: TrainingEnvironment) -> dict[str, Any]:
    """Fit, score, and write the model and metrics.json; the metrics written.

    Everything a hyperparameter names is checked before the fit (estimator, parameters, metric, channels,
    target), so a mistake fails in seconds, not after an hour of fitting.

    Raises:
        ValueError: a hyperparameter, channel or column the message names (EstimatorError, DataError).
    """
    hps = env.hyperparameters
    estimator = build_estimator(resolve_estimator(_estimator_name(hps)), estimator_params(hps))
    metric = hps.get(METRIC) or default_metric(estimator)
    score = resolve_metric(str(metric)) if metric is not None else None
    datasets = _datasets(env, header=_flag(hps.get(HEADER, True), HEADER))
    train_name, (features, labels) = next(iter(datasets.items()))
    logger.info(
        "fitting %s on channel %r: %d rows, %d features", type(estimator).__name__, train_name, len(labels),
        features.shape[1],
    )  # fmt: skip
    began = time.monotonic()
    estimator.fit(features, labels)
    seconds = time.monotonic() - began
    write_model(estimator, env.model_dir)

    scores = {name: score(estimator, x, y) for name, (x, y) in datasets.items()} if score is not None else {}
    for channel, value in scores.items():
        logger.info("metric %s:%s=%.6g", channel, metric, value)
    metrics = {
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "metric": metric,
        "scores": scores,
        "rows": {name: len(y) for name, (_, y) in datasets.items()},
        "fit_seconds": round(seconds, 3),
    }
    env.output_data_dir.mkdir(parents=True, exist_ok=True)
    (env.output_data_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics


def _datasets(env: TrainingEnvironment, *, header: bool) -> dict[str, tuple[Any, Any]]:
    """(features, target) of the training channel, first, and of the validation channel when there is one."""
    train_name = _train_channel(env)
    data = _read(env, train_name, header)
    target = _target_column(data, env.hyperparameters.get(TARGET), header, train_name)
    logger.info("channel %r: %d rows; target column %r", train_name, len(data), target)
    datasets = {train_name: _split(data, target, header)}
    validation = _validation_channel(env)
    if validation is not None:
        held_out = _read(env, validation, header)
        if list(held_out.columns) != list(data.columns):
            raise EstimatorError(
                f"channel {validation!r} must have the columns of {train_name!r} "
                f"({', '.join(map(str, data.columns))}), got {', '.join(map(str, held_out.columns))}"
            )
        datasets[validation] = _split(held_out, target, header)
    return datasets


def estimator_params(hps: dict[str, Any]) -> dict[str, Any]:
    """``estimator_params`` merged with every hyperparameter that is not the trainer's own."""
    params = hps.get(ESTIMATOR_PARAMS) or {}
    if not isinstance(params, dict):
        raise EstimatorError(
            f'{ESTIMATOR_PARAMS} must be a JSON object such as {{"n_estimators": 100}}, got {params!r}'
        )
    extra = {name: value for name, value in hps.items() if name not in TRAINER_HYPERPARAMETERS}
    return {**params, **extra}


def _estimator_name(hps: dict[str, Any]) -> str:
    name = hps.get(ESTIMATOR)
    if not isinstance(name, str) or not name.strip():
        raise EstimatorError(
            f"hyperparameter {ESTIMATOR!r} is required: a scikit-learn estimator class such as "
            "RandomForestClassifier (or set SAGEMAKER_PROGRAM to run your own training script)"
        )
    return name


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise EstimatorError(f"hyperparameter {name!r} must be true or false, got {value!r}")


def _train_channel(env: TrainingEnvironment) -> str:
    named = env.hyperparameters.get(TRAIN_CHANNEL)
    candidates = [str(named)] if named else [name for name in TRAIN_CHANNELS if name in env.channels]
    if not candidates or candidates[0] not in env.channels:
        wanted = repr(str(named)) if named else " or ".join(map(repr, TRAIN_CHANNELS))
        raise EstimatorError(
            f"no training data: the channel {wanted} is missing "
            f"(channels: {', '.join(env.channels) or 'none'}); "
            f"name the training channel train, or set the hyperparameter {TRAIN_CHANNEL}"
        )
    return candidates[0]


def _validation_channel(env: TrainingEnvironment) -> str | None:
    named = env.hyperparameters.get(VALIDATION_CHANNEL)
    if named:
        if str(named) not in env.channels:
            raise EstimatorError(
                f"{VALIDATION_CHANNEL} names the channel {named!r}, which is missing "
                f"(channels: {', '.join(env.channels)})"
            )
        return str(named)
    return "validation" if "validation" in env.channels else None


def _read(env: TrainingEnvironment, name: str, header: bool) -> pd.DataFrame:
    config = env.input_data_config.get(name, {})
    return read_channel(name, env.channels[name], config if isinstance(config, dict) else {}, header=header)


def _target_column(data: pd.DataFrame, wanted: Any, header: bool, channel: str) -> Any:
    columns = list(data.columns)
    if wanted is None or wanted == "":
        return columns[0]
    if header:
        by_text = {str(column): column for column in columns}
        if str(wanted) in by_text:
            return by_text[str(wanted)]
        raise EstimatorError(
            f"target column {str(wanted)!r} is not in channel {channel!r}; its columns are "
            f"{', '.join(map(str, columns))}"
        )
    if isinstance(wanted, int) and 0 <= wanted < len(columns):
        return wanted
    raise EstimatorError(
        f"target must be a column number from 0 to {len(columns) - 1} when {HEADER}=false (the files have no "
        f"column names), got {wanted!r}"
    )


def _split(data: pd.DataFrame, target: Any, header: bool) -> tuple[Any, Any]:
    """Features (a DataFrame with a header, so its column names are kept; else an array) and the target."""
    features = data.drop(columns=[target])
    labels = data[target].to_numpy()
    if features.shape[1] == 0:
        raise EstimatorError(
            f"the data has only the target column {target!r}: there are no features to fit on"
        )
    return (features if header else features.to_numpy()), labels
