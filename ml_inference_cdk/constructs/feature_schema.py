"""The columns an estimator fitted on a pandas DataFrame takes, and the kind of each, for model-metadata.json.

The server coerces each column of a request to its kind: ``number`` (float64) or ``string`` (text). A fitted
estimator keeps its column names (``feature_names_in_``) but not their dtypes, so the kind is read from what
the fitted steps learned. A column routed (by a ColumnTransformer, or directly) to an encoder whose categories
are text (OneHotEncoder, OrdinalEncoder, TargetEncoder) or an imputer whose fill values are text is
``string``; one routed to any other fitted scikit-learn step is ``number``. A column passed through as it is,
or to a FunctionTransformer, is left out: the server infers its kind from each request. A kind can be
corrected by editing model-metadata.json.

The server (inference_image/sklearn_server/loaders/dataframe.py) reads the kinds the same way when a model
comes without this metadata; tests/server/test_dataframe_decoding.py checks that the two agree.
"""

from __future__ import annotations

from typing import Any, Final

NUMBER: Final = "number"
STRING: Final = "string"


def feature_schema(estimator: Any) -> dict[str, Any]:
    """``{"feature_names": [...], "feature_dtypes": {name: kind}}``; {} for an estimator fitted on numbers."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return {}
    names = [str(name) for name in names]
    kinds = column_kinds(estimator, names)
    return {
        "feature_names": names,
        "feature_dtypes": {name: kind for name, kind in zip(names, kinds, strict=True) if kind is not None},
    }


def column_kinds(estimator: Any, names: list[str]) -> list[str | None]:
    """Per column of ``names``: ``string``, ``number``, or None (cannot tell)."""
    steps = getattr(estimator, "steps", None)
    if steps:  # a Pipeline: its first step is the one that sees the DataFrame
        return column_kinds(steps[0][1], names)
    transformers = getattr(estimator, "transformers_", None)
    if transformers is None:
        return _kinds_of(estimator, len(names))
    kinds: dict[str, str | None] = {}
    for _, transformer, columns in transformers:
        selected = _selected(names, columns)
        kinds.update(zip(selected, _kinds_of(transformer, len(selected)), strict=True))
    return [kinds.get(name) for name in names]


def _selected(names: list[str], columns: Any) -> list[str]:
    """The names a ColumnTransformer's column selection picks: names, indices, a slice or a mask."""
    import numpy as np

    if isinstance(columns, str):
        return [columns]
    try:
        if isinstance(columns, slice):
            return names[columns]
        picked = list(columns)
        if all(isinstance(column, str) for column in picked):
            return [str(column) for column in picked]
        return [str(name) for name in np.asarray(names, dtype=object)[np.asarray(picked)]]
    except (TypeError, IndexError, ValueError):
        return []


def _kinds_of(transformer: Any, width: int) -> list[str | None]:
    """Per column the step ``transformer`` reads: what it learned, or None for a step that learns nothing."""
    first = transformer
    while getattr(first, "steps", None):
        first = first.steps[0][1]
    if isinstance(first, str) or type(first).__name__ == "FunctionTransformer":
        return [None] * width  # "passthrough", "drop", or a function: nothing learned about the values
    categories = getattr(first, "categories_", None)
    if isinstance(categories, list) and len(categories) == width:
        return [STRING if any(isinstance(v, str) for v in column) else NUMBER for column in categories]
    statistics = getattr(first, "statistics_", None)
    if statistics is not None and len(statistics) == width:
        return [STRING if isinstance(value, str) else NUMBER for value in statistics]
    return [NUMBER] * width
