"""Calling a model's method safely: what every kind does around its predict.

A ValueError from the model is about its input (NaN, a wrong shape, an unknown category): a 400 that quotes
the first line of its message. Anything else is the model failing: a 500 whose cause goes to the log only.
The answer must hold one output per input row; a list of per-output arrays (multi-output predict_proba) is
turned into rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from sklearn_server.errors import BadRequestError, InferenceError, ModelFailedError
from sklearn_server.model import rows_of

MAX_COMPLAINT_CHARS: Final = 300


def checked_method(model: Any, method: str) -> Callable[[Any], np.ndarray]:
    """``model.method`` as a predict function: errors mapped, output checked (see the module docstring)."""
    return checked(getattr(model, method), f"{type(model).__name__}.{method}")


def checked(function: Callable[[Any], Any], name: str) -> Callable[[Any], np.ndarray]:
    """``function`` (rows in, one output per row out) with the error mapping of the module docstring."""

    def predict(data: Any) -> np.ndarray:
        try:
            result = function(data)
        except InferenceError:
            raise
        except ValueError as error:
            raise BadRequestError(f"the model rejected the input: {complaint(error)}") from error
        except Exception as error:
            raise ModelFailedError() from error
        return as_rows(result, rows_of(data), name)

    return predict


def complaint(error: BaseException) -> str:
    """The first line of an exception's message, shortened: what a client may read of it."""
    return str(error).strip().split("\n", 1)[0][:MAX_COMPLAINT_CHARS]


def as_rows(result: Any, rows: int, name: str) -> np.ndarray:
    """``result`` as an array with one entry per input row.

    A list of arrays of ``rows`` rows each (MultiOutputClassifier.predict_proba: one array per output)
    becomes rows of per-output lists: a 3-D array when every output has as many classes, else a 1-D object
    array whose entries are lists.

    Raises:
        ModelFailedError: the result does not hold one entry per input row.
    """
    if (
        isinstance(result, list)
        and result
        and all(isinstance(part, np.ndarray) and part.ndim >= 1 and part.shape[0] == rows for part in result)
    ):
        if len({part.shape for part in result}) == 1:
            return np.stack(result, axis=1)
        ragged = np.empty(rows, dtype=object)
        for i in range(rows):
            ragged[i] = [part[i].tolist() for part in result]
        return ragged
    array = np.asarray(result)
    if array.ndim == 0 or array.shape[0] != rows:
        raise ModelFailedError() from RuntimeError(f"{name} returned shape {array.shape} for {rows} rows")
    return array
