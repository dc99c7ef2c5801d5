"""LightGBM boosters in their native text format: ``model.txt``, as ``booster.save_model(path)`` writes it.

An ``LGBMClassifier``/``LGBMRegressor`` pickled in ``model.joblib`` is the scikit-learn kind, not this one.

INFERENCE_PREDICT_METHOD=predict answers what ``booster.predict`` answers: the probability of class 1 for a
``binary`` objective, rows of class probabilities for ``multiclass``/``multiclassova``, the value for a
regression. predict_proba answers rows of class probabilities, as scikit-learn does (``[P(0), P(1)]`` for
``binary``), for those objectives only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from sklearn_server.config import ServerConfig
from sklearn_server.errors import ModelLoadError
from sklearn_server.loaders.calling import complaint
from sklearn_server.loaders.frameworks import refuse_predict_proba, require, two_classes
from sklearn_server.loaders.sklearn import numeric_model
from sklearn_server.model import LoadedModel, ModelKind

FILENAMES: Final = ("model.txt",)
_MULTICLASS_OBJECTIVES: Final = ("multiclass", "multiclassova")


def load(path: Path, config: ServerConfig) -> LoadedModel:
    """Load the booster in ``path`` and serve it on the numeric path, one thread per worker.

    Raises:
        ModelLoadError: lightgbm is missing, the file is not a LightGBM model, or predict_proba was asked of
            an objective without probabilities; the message names the file and the reason.
    """
    lightgbm = require("lightgbm", path, "a LightGBM")
    try:
        booster = lightgbm.Booster(model_file=str(path))
    except (lightgbm.basic.LightGBMError, OSError, ValueError) as error:
        raise ModelLoadError(
            f"{path} cannot be loaded as a LightGBM model (the text format booster.save_model writes): "
            f"{complaint(error)}"
        ) from error
    objective = str(booster.params.get("objective", "unknown")).split()[0]

    def predict(data: Any) -> Any:
        return booster.predict(data, num_threads=1)

    chosen: Callable[[Any], Any] = predict
    if config.predict_method == "predict_proba":
        if objective == "binary":
            chosen = two_classes(predict)
        elif objective not in _MULTICLASS_OBJECTIVES:
            raise refuse_predict_proba(path, objective, "binary, multiclass or multiclassova")
    return numeric_model(
        path,
        chosen,
        kind=f"LightGBM Booster ({objective})",
        method=config.predict_method,
        n_features=int(booster.num_feature()) or None,
        config=config,
        details={"objective": objective},
    )


KIND = ModelKind("LightGBM", FILENAMES, load)
