"""scikit-learn models fitted on a pandas DataFrame: named columns in, the estimator's own predictions out.

An estimator or Pipeline fitted on a DataFrame has ``feature_names_in_`` (a ColumnTransformer routing string
columns to a OneHotEncoder, say). ``loaders/sklearn.py`` hands such a model here; a model fitted on numbers
stays on the numeric fast path.

A request names its columns (MLflow's scoring protocol, which users already send to SageMaker; records; CSV
whose first line names the features) or gives them by position, in the model's order (rows, CSV without a
header, .npy/.npz for a model whose columns are all numbers). Columns are matched by name and reordered;
a missing or unknown column is a 400 that names it and lists what the model expects.

Each column is coerced to its kind: ``number`` (float64; numbers, numeric strings and null, which is a
missing value) or ``string`` (text; numbers become their text, null stays missing). The kinds come from
``model-metadata.json`` (``feature_names`` and ``feature_dtypes``, written by ``pack_model``); a column it
does not type is inferred from the request: numbers when every value reads as one, else text.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd

from sklearn_server import codecs
from sklearn_server.config import CONTENT_TYPES, CSV, JSON, JSONLINES, NPY, NPZ, ServerConfig
from sklearn_server.errors import BadRequestError, UnsupportedMediaTypeError
from sklearn_server.loaders.calling import checked_method
from sklearn_server.model import LoadedModel

logger = logging.getLogger(__name__)

NUMBER: Final = "number"
STRING: Final = "string"
KINDS: Final = (NUMBER, STRING)
"""The values ``feature_dtypes`` in model-metadata.json may hold."""
MAX_NAMED: Final = 10
"""Columns named in one error message, at most (the rest are counted)."""
_SNIPPET_CHARS: Final = 40
_TEXT_TYPES: Final = (CSV, JSON, JSONLINES)

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Schema:
    """The columns a model was fitted on, in order, and the kind of each (None: inferred per request)."""

    names: tuple[str, ...]
    kinds: tuple[str | None, ...]

    @property
    def all_numbers(self) -> bool:
        return all(kind == NUMBER for kind in self.kinds)


def schema_of(estimator: Any, metadata: Mapping[str, Any], path: Path) -> Schema:
    """The estimator's columns, each typed by model-metadata.json, else by what the estimator learned (the
    same reading as pack_model's, in ml_inference_cdk/constructs/feature_schema.py), else per request."""
    names = tuple(str(name) for name in estimator.feature_names_in_)
    recorded = metadata.get("feature_dtypes")
    dtypes: Mapping[str, Any] = recorded if isinstance(recorded, dict) else {}
    listed = metadata.get("feature_names")
    if isinstance(listed, list) and [str(name) for name in listed] != list(names):
        logger.warning(
            "%s: model-metadata.json lists features %s but the estimator was fitted on %s; "
            "using the estimator's names",
            path,
            _names(listed),
            _names(names),
        )
    learned = column_kinds(estimator, list(names))
    kinds: list[str | None] = []
    for name, fallback in zip(names, learned, strict=True):
        kind = dtypes.get(name)
        if kind is not None and kind not in KINDS:
            logger.warning(
                "%s: feature_dtypes[%r] is %r, not one of %s; ignoring it",
                path,
                name,
                kind,
                ", ".join(KINDS),
            )
            kind = None
        kinds.append(kind or fallback)
    return Schema(names, tuple(kinds))


def dataframe_model(
    path: Path, estimator: Any, method: str, schema: Schema, *, config: ServerConfig
) -> LoadedModel:
    """A model that takes a DataFrame: this module's decoders, the codecs' encoders.

    A model whose columns are all numbers, and that predicts the same from a float array once its column
    names are taken off (``numeric_twin``), is given float arrays: scikit-learn's checks of a DataFrame cost
    ~4x its predict on one row (measured: 440 us against 100 us for the iris LogisticRegression).
    """
    twin = numeric_twin(estimator, method, schema) if schema.all_numbers else None

    typed = sum(kind is not None for kind in schema.kinds)
    strings = sum(kind == STRING for kind in schema.kinds)
    return LoadedModel(
        path=path,
        kind=f"scikit-learn {type(estimator).__name__} on a DataFrame",
        method=method,
        n_features=len(schema.names),
        decode=frame_decoder(schema, arrays=twin is not None),
        predict=checked_method(estimator if twin is None else twin, method),
        encode=codecs.model_encoder(config.json_response),
        join=join_frames if twin is None else codecs.join_rows,
        input_types=codecs.READABLE if schema.all_numbers else _TEXT_TYPES,
        output_types=CONTENT_TYPES,
        details={
            "columns": len(schema.names),
            "string_columns": strings,
            "typed_columns": typed,
            "predicts_from": "arrays" if twin is not None else "DataFrames",
        },
    )


def join_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Several requests' frames (same columns, same order) as one, rows in order."""
    return pd.concat(frames, ignore_index=True)


def numeric_twin(estimator: Any, method: str, schema: Schema) -> Any | None:
    """A copy of ``estimator`` without its column names, if it predicts from a float array exactly what
    ``estimator`` predicts from the same rows as a DataFrame, without a warning; else None.

    Only an estimator that keeps its names as a plain attribute (or a Pipeline whose first step is one) is
    tried, never a ColumnTransformer (it selects columns by name); the check on a probe of two rows catches
    the rest (a later step that wants names, say).
    """
    twin = _without_names(estimator)
    if twin is None:
        return None
    probe = np.array([np.zeros(len(schema.names)), np.arange(1.0, len(schema.names) + 1)])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            expected = getattr(estimator, method)(pd.DataFrame(probe, columns=list(schema.names)))
            got = getattr(twin, method)(probe)
    except Exception:
        return None
    return twin if np.array_equal(np.asarray(expected), np.asarray(got)) else None


def _without_names(estimator: Any) -> Any | None:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        first = _without_names(steps[0][1])
        if first is None:
            return None
        twin = copy.copy(estimator)
        twin.steps = [(steps[0][0], first), *steps[1:]]
        return twin
    if type(estimator).__name__ == "ColumnTransformer" or "feature_names_in_" not in vars(estimator):
        return None
    twin = copy.copy(estimator)
    del twin.feature_names_in_
    return twin


# --- decoding --------------------------------------------------------------------------------------------


def frame_decoder(schema: Schema, *, arrays: bool = False) -> Callable[[bytes, str], Any]:
    """(body, media type) -> a DataFrame with exactly the model's columns, in its order, coerced; with
    ``arrays`` (a model whose columns are all numbers), its values as a float array instead."""
    width = len(schema.names)

    def positional_numbers(array: Any) -> Any:
        if arrays:
            return array
        if not isinstance(array, np.ndarray):
            array = array.toarray()  # a sparse .npz: pandas wants it dense to name the columns
        return pd.DataFrame(array, columns=list(schema.names), copy=False)

    def decode(body: bytes, media_type: str) -> Any:
        frame = decode_frame(body, media_type)
        return frame.to_numpy(dtype=np.float64) if arrays and isinstance(frame, pd.DataFrame) else frame

    def decode_frame(body: bytes, media_type: str) -> Any:
        if media_type in (NPY, NPZ):
            if not schema.all_numbers:
                raise UnsupportedMediaTypeError(
                    f"{media_type} holds numbers only, and this model has text columns; "
                    f"send one of {', '.join(_TEXT_TYPES)}"
                )
            return positional_numbers(codecs.decoder_for(media_type)(body, width))
        if media_type == CSV:
            return _from_csv(body, schema, positional_numbers)
        if media_type == JSON:
            return _from_json(_parse_json(body), schema, positional_numbers)
        if media_type == JSONLINES:
            return _from_jsonlines(body, schema)
        return positional_numbers(codecs.decoder_for(media_type)(body, width))  # raises the 415

    return decode


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"the body is not valid JSON: {error}") from None


FRAME_FIELDS: Final = ("dataframe_split", "dataframe_records", "instances", "inputs")
"""The fields of MLflow's scoring protocol (one per request)."""


def _from_json(
    document: Any, schema: Schema, positional_numbers: Callable[[Any], pd.DataFrame]
) -> pd.DataFrame:
    if isinstance(document, list):
        return _from_list(document, "the body", schema, positional_numbers)
    if not isinstance(document, dict):
        raise BadRequestError(f"the JSON body must be an object or a list, got {_kind(document)}; {_SHAPES}")
    fields = [name for name in FRAME_FIELDS if name in document]
    if len(fields) != 1:
        found = "none of them" if not fields else "more than one: " + ", ".join(fields)
        raise BadRequestError(
            f"the JSON object must hold exactly one of {', '.join(FRAME_FIELDS)}, got {found}; {_SHAPES}"
        )
    field = fields[0]
    value = document[field]
    if field == "dataframe_split":
        return _from_split(value, schema)
    if field == "dataframe_records":
        if not isinstance(value, list) or not all(type(record) is dict for record in value):
            raise BadRequestError(f"dataframe_records must be a list of objects, got {_kind(value)}")
        return _from_list(value, field, schema, positional_numbers)
    if isinstance(value, dict):
        return _from_columns(value, field, schema)
    return _from_list(value, field, schema, positional_numbers)


_SHAPES: Final = (
    'send {"dataframe_split": {"columns": [...], "data": [[...]]}}, {"dataframe_records": [{...}]}, '
    '{"instances": [...]}, {"inputs": ...} or a list of records or rows'
)


def _from_list(
    items: Any, field: str, schema: Schema, positional_numbers: Callable[[Any], pd.DataFrame]
) -> pd.DataFrame:
    """A list of records (objects), of rows (lists), or of values (one row)."""
    if not isinstance(items, list):
        raise BadRequestError(f"{field} must be a list of records or rows, got {_kind(items)}")
    if not items:
        raise BadRequestError(f"{field} is empty: send at least one row")
    first = items[0]
    if type(first) is dict:
        return _from_records(items, field, schema)
    if schema.all_numbers:
        return positional_numbers(
            codecs.json_rows(items, field if field != "the body" else "", len(schema.names))
        )
    rows = items if type(first) is list else [items]
    return _from_rows(None, rows, schema, field)


def _from_split(value: Any, schema: Schema) -> pd.DataFrame:
    if not isinstance(value, dict):
        raise BadRequestError(
            f'dataframe_split must be an object {{"columns": [...], "data": [[...]]}}, got {_kind(value)}'
        )
    data = value.get("data")
    if not isinstance(data, list) or not data:
        raise BadRequestError(
            "dataframe_split.data must be a non-empty list of rows, "
            f"got {_kind(data) if data != [] else 'an empty list'}"
        )
    columns = value.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(type(name) is str for name in columns)
    ):
        raise BadRequestError(f"dataframe_split.columns must be a list of names, got {_kind(columns)}")
    rows = data if type(data[0]) is list else [data]
    return _from_rows(columns, rows, schema, "dataframe_split.data")


def _from_records(records: list[Any], field: str, schema: Schema) -> pd.DataFrame:
    """Objects keyed by column name; a key absent from one record is a missing value there."""
    seen: dict[str, None] = {}
    for i, record in enumerate(records):
        if type(record) is not dict:
            raise BadRequestError(f"{field}[{i}] must be an object like {field}[0], got {_kind(record)}")
        for name in record:
            seen[name] = None
    _check_names(list(seen), schema)
    return _frame({name: [record.get(name) for record in records] for name in schema.names}, schema)


def _from_columns(columns: dict[str, Any], field: str, schema: Schema) -> pd.DataFrame:
    """``{"name": [values], ...}`` (a scalar is one row's value)."""
    _check_names(list(columns), schema)
    values = {
        name: columns[name] if type(columns[name]) is list else [columns[name]] for name in schema.names
    }
    lengths = {len(column) for column in values.values()}
    if len(lengths) != 1:
        counts = ", ".join(f"{name}: {len(values[name])}" for name in schema.names[:MAX_NAMED])
        raise BadRequestError(f"the columns of {field} must be lists of one length, got {counts}")
    if lengths == {0}:
        raise BadRequestError(f"the columns of {field} are empty: send at least one row")
    return _frame(values, schema)


def _from_rows(columns: list[str] | None, rows: list[Any], schema: Schema, field: str) -> pd.DataFrame:
    """Rows of values: in ``columns``' order, or (None) in the model's."""
    names = list(schema.names) if columns is None else columns
    if columns is not None:
        _check_names(columns, schema)
    width = len(names)
    for i, row in enumerate(rows):
        where = f"CSV row {i + 1}" if field == "CSV" else f"{field}[{i}]"
        if type(row) is not list:
            raise BadRequestError(f"{where} must be a list of values, got {_kind(row)}")
        if len(row) != width:
            what = "columns" if columns is not None else "features the model expects"
            raise BadRequestError(f"{where} has {len(row)} values, but there are {width} {what}")
    by_name = dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else {}
    return _frame({name: list(by_name[name]) for name in schema.names}, schema)


def _from_jsonlines(body: bytes, schema: Schema) -> pd.DataFrame:
    """One record (object) or one row (list) per line, every line alike."""
    items: list[Any] = []
    for number, line in enumerate(body.strip().split(b"\n"), start=1):
        if not line.strip():
            raise BadRequestError(f"JSON line {number} is empty")
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise BadRequestError(f"JSON line {number} is not valid JSON: {error}") from None
        if type(item) not in (dict, list) or (items and type(item) is not type(items[0])):
            expected = "an object or a list" if not items else f"{_kind(items[0]).split(' ')[0]} like line 1"
            raise BadRequestError(f"JSON line {number} must be {expected}, got {_kind(item)}")
        items.append(item)
    if not items or items == [[]]:
        raise BadRequestError("the JSON lines body is empty: send one record or row per line")
    if type(items[0]) is dict:
        return _from_records(items, "line", schema)
    return _from_rows(None, items, schema, "line")


def _from_csv(body: bytes, schema: Schema, positional_numbers: Callable[[Any], pd.DataFrame]) -> pd.DataFrame:
    """Rows of comma-separated values; a first line naming any of the model's features is the header."""
    text = body.strip()
    if not text:
        raise BadRequestError(
            "the CSV body is empty: send a header line of column names, then one row per line"
        )
    end = text.find(b"\n")
    first = (text if end < 0 else text[:end]).decode("utf-8", "replace")
    header = _csv_cells(first)
    named = set(schema.names)
    has_header = any(cell.strip() in named for cell in header)
    if not has_header and schema.all_numbers:
        return positional_numbers(codecs.decode_csv(text, len(schema.names)))
    try:
        lines = list(csv.reader(io.StringIO(text.decode("utf-8"), newline="")))
    except UnicodeDecodeError as error:
        raise BadRequestError(f"the CSV body is not UTF-8 text: {error}") from None
    except csv.Error as error:
        raise BadRequestError(f"the CSV body cannot be read: {error}") from None
    columns = [cell.strip() for cell in lines[0]] if has_header else None
    rows = lines[1:] if has_header else lines
    if not rows:
        raise BadRequestError("the CSV body holds a header and no rows: send at least one row")
    for number, row in enumerate(rows, start=2 if has_header else 1):
        if not row or row == [""]:
            raise BadRequestError(f"CSV line {number} is empty")
    cells = [[cell if cell.strip() else None for cell in row] for row in rows]
    return _from_rows(columns, cells, schema, "CSV")


def _csv_cells(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return line.split(",")


# --- the kinds an estimator learned (read as ml_inference_cdk/constructs/feature_schema.py does) ----


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


# --- columns and their values ----------------------------------------------------------------------------


def _check_names(given: Sequence[Any], schema: Schema) -> None:
    """400 naming every missing and unknown column (capped) and what the model expects."""
    expected = set(schema.names)
    counts = Counter(str(name) for name in given)
    duplicated = [name for name, count in counts.items() if count > 1]
    missing = [name for name in schema.names if name not in counts]
    unknown = [str(name) for name in dict.fromkeys(given) if str(name) not in expected]
    if not (missing or unknown or duplicated):
        return
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {_names(missing)}")
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {_names(unknown)}")
    if duplicated:
        problems.append(f"repeated column{'s' if len(duplicated) > 1 else ''} {_names(duplicated)}")
    raise BadRequestError(f"{'; '.join(problems)}; the model expects {_names(schema.names)}")


def _frame(columns: dict[str, list[Any]], schema: Schema) -> pd.DataFrame:
    data = {
        name: _column(name, values, kind)
        for (name, values), kind in zip(columns.items(), schema.kinds, strict=True)
    }
    return pd.DataFrame(data, columns=list(schema.names))


def _column(name: str, values: list[Any], kind: str | None) -> np.ndarray:
    if kind is None:
        kind = NUMBER if all(_reads_as_number(value) for value in values) else STRING
    if kind == NUMBER:
        if all(type(value) is float or type(value) is int for value in values):
            try:
                return np.array(values, dtype=np.float64)
            except OverflowError:
                pass
        return np.array([_number(name, i, value) for i, value in enumerate(values)], dtype=np.float64)
    return np.array([_text(name, i, value) for i, value in enumerate(values)], dtype=object)


def _reads_as_number(value: Any) -> bool:
    if value is None or type(value) is float or type(value) is int:
        return True
    if type(value) is str:
        text = value.strip()
        try:
            float(text)
        except ValueError:
            return False
        return bool(text) and "_" not in text
    return False


def _number(name: str, row: int, value: Any) -> float:
    if value is None:
        return math.nan
    if type(value) is float or type(value) is int:
        try:
            return float(value)
        except OverflowError:
            pass
    elif type(value) is str:
        text = value.strip()
        if text and "_" not in text:
            try:
                return float(text)
            except ValueError:
                pass
    raise BadRequestError(
        f"column {name!r} holds numbers, but row {row + 1} has {_kind(value)}; "
        "send a number, a string holding one, or null for a missing value"
    )


def _text(name: str, row: int, value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is float or type(value) is int:
        return str(value)
    raise BadRequestError(
        f"column {name!r} holds text, but row {row + 1} has {_kind(value)}; send a string, a number or null"
    )


def _names(names: Sequence[Any]) -> str:
    shown = ", ".join(repr(_snippet(str(name))) for name in names[:MAX_NAMED])
    more = len(names) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."


_kind: Final = codecs.describe
