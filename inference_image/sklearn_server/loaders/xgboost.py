"""XGBoost boosters in their native format: ``xgboost-model``, the file SageMaker's XGBoost container uses.

SageMaker's XGBoost algorithm saves the trained booster with ``booster.save_model(".../xgboost-model")`` (JSON
or UBJSON, told apart by the content; no extension needed), and its server loads that file. Older containers
(0.90-1.x) pickled the booster instead; a pickle here is refused with how to convert it, as unpickling runs
whatever code it names.
An ``XGBClassifier``/``XGBRegressor`` pickled in ``model.joblib`` is the scikit-learn kind, not this one.

INFERENCE_PREDICT_METHOD=predict answers what ``booster.predict`` answers, as SageMaker's container does: the
probability of class 1 for ``binary:logistic``, rows of class probabilities for ``multi:softprob``, the class
index for ``multi:softmax``, the value for a regression. predict_proba answers rows of class probabilities, as
scikit-learn does (``[P(0), P(1)]`` for ``binary:logistic``), for those two probability objectives only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from sklearn_server.config import ServerConfig
from sklearn_server.errors import ModelLoadError
from sklearn_server.loaders.calling import complaint
from sklearn_server.loaders.frameworks import refuse_predict_proba, require, two_classes
from sklearn_server.loaders.sklearn import numeric_model
from sklearn_server.model import LoadedModel, ModelKind

FILENAMES: Final = ("xgboost-model",)
_PROBABILITY_OBJECTIVES: Final = ("binary:logistic", "multi:softprob")
_PICKLE_MAGIC: Final = b"\x80"


def load(path: Path, config: ServerConfig) -> LoadedModel:
    """Load the booster in ``path`` and serve it on the numeric path, one thread per worker.

    Raises:
        ModelLoadError: xgboost is missing, the file is not an XGBoost model, or predict_proba was asked of an
            objective without probabilities; the message names the file and the reason.
    """
    xgboost = require("xgboost", path, "an XGBoost")
    booster = _read_booster(xgboost, path)
    booster.set_param("nthread", 1)
    objective = str(json.loads(booster.save_config())["learner"]["objective"]["name"])
    n_features = int(booster.num_features()) or None
    predict: Callable[[Any], Any] = booster.inplace_predict
    if config.predict_method == "predict_proba":
        if objective not in _PROBABILITY_OBJECTIVES:
            raise refuse_predict_proba(path, objective, " or ".join(_PROBABILITY_OBJECTIVES))
        if objective == "binary:logistic":
            predict = two_classes(booster.inplace_predict)
    return numeric_model(
        path,
        predict,
        kind=f"XGBoost Booster ({objective})",
        method=config.predict_method,
        n_features=n_features,
        config=config,
        details={"objective": objective},
    )


def _read_booster(xgboost: Any, path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{path} cannot be read: {error}") from error
    if raw.startswith(_PICKLE_MAGIC):
        raise ModelLoadError(
            f"{path} is a pickle (older SageMaker XGBoost containers pickled the booster), which this server "
            "does not unpickle under a native model's name: convert it where you trust it, with "
            "pickle.load(file).save_model('xgboost-model')"
        )
    booster = xgboost.Booster()
    try:
        booster.load_model(bytearray(raw))  # from a buffer: JSON or UBJSON is read from the content
    except xgboost.core.XGBoostError as error:
        raise ModelLoadError(
            f"{path} cannot be loaded as an XGBoost model (JSON or UBJSON, as booster.save_model writes): "
            f"{complaint(error)}"
        ) from error
    return booster


KIND = ModelKind("XGBoost", FILENAMES, load)
