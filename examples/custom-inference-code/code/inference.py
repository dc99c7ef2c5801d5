"""Inference code for the iris classifier: named flowers in, species and confidence out.

The server calls these hooks (AWS's scikit-learn container convention); each one left out falls back to the
built-in. The model itself is model.joblib next to this folder, so no model_fn is needed: predict_fn gets the
fitted estimator.
"""

import json

import numpy as np

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
SPECIES = ("setosa", "versicolor", "virginica")

BATCH_SAFE = True
"""predict_fn answers row by row and input_fn returns a numpy array, so the server may join concurrent
requests into one predict_fn call."""


class BadFlowerError(ValueError):
    """A request naming no flowers, or a flower without a measurement; answered with its status."""

    status_code = 400


def input_fn(body, content_type):
    """``{"flowers": [{"sepal_length": 5.1, ...}, ...]}`` -> one row per flower."""
    if content_type != "application/json":
        raise BadFlowerError(f"send application/json, not {content_type}")
    flowers = json.loads(body).get("flowers") or []
    if not flowers:
        raise BadFlowerError('send {"flowers": [{"sepal_length": ..., ...}]}')
    try:
        return np.array([[float(flower[name]) for name in FEATURES] for flower in flowers])
    except KeyError as missing:
        raise BadFlowerError(f"every flower needs {', '.join(FEATURES)}; one lacks {missing}") from None


def predict_fn(rows, model):
    return model.predict_proba(rows)


def output_fn(probabilities, accept):
    answers = [
        {"species": SPECIES[int(np.argmax(row))], "confidence": round(float(np.max(row)), 3)}
        for row in probabilities
    ]
    return json.dumps(answers), "application/json"
