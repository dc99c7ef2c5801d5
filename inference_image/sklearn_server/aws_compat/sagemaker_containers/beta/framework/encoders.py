"""Array <-> JSON, CSV and NPY, with the behaviour of aws/sagemaker-containers ``_encoders.py``.

``decode`` gives numpy arrays (JSON and CSV arrive as ``str``, NPY as ``bytes``); ``encode`` gives ``str`` for
JSON and CSV, ``bytes`` for NPY. An unknown content type raises ``errors.UnsupportedFormatError``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from . import content_types, errors


def array_to_npy(array_like: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array_like)
    return buffer.getvalue()


def npy_to_numpy(npy_array: bytes) -> Any:
    return np.load(io.BytesIO(npy_array), allow_pickle=True)


def array_to_json(array_like: Any) -> str:
    def default(value: Any) -> Any:
        if hasattr(value, "tolist"):
            return value.tolist()
        return json.JSONEncoder().default(value)

    return json.dumps(array_like, default=default)


def json_to_numpy(string_like: str | bytes, dtype: Any = None) -> Any:
    return np.array(json.loads(string_like), dtype=dtype)


def csv_to_numpy(string_like: str, dtype: Any = None) -> Any:
    try:
        reader = csv.reader(
            io.StringIO(string_like), delimiter=",", quotechar='"', doublequote=True, strict=True
        )
        array = np.array(list(reader)).squeeze()
        return array.astype(dtype)
    except ValueError as error:
        raise errors.ClientError(f"Error while writing numpy array: {error}. dtype is: {dtype}") from error
    except Exception as error:
        raise errors.ClientError(f"Error while decoding csv: {error}") from error


def array_to_csv(array_like: Any) -> str:
    array = np.array(array_like)
    if array.ndim == 1:
        array = array.reshape(array.shape[0], 1)
    try:
        stream = io.StringIO()
        writer = csv.writer(
            stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True
        )
        writer.writerows(array)
        return stream.getvalue()
    except csv.Error as error:
        raise errors.ClientError(f"Error while encoding csv: {error}") from error


_ENCODERS: dict[str, Callable[[Any], str | bytes]] = {
    content_types.NPY: array_to_npy,
    content_types.CSV: array_to_csv,
    content_types.JSON: array_to_json,
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    content_types.NPY: npy_to_numpy,
    content_types.CSV: csv_to_numpy,
    content_types.JSON: json_to_numpy,
}


def decode(obj: Any, content_type: str) -> Any:
    """``obj`` (in ``content_type``) as a numpy array."""
    try:
        decoder = _DECODERS[content_type]
    except KeyError:
        raise errors.UnsupportedFormatError(content_type) from None
    return decoder(obj)


def encode(array_like: Any, content_type: str) -> str | bytes:
    """``array_like`` serialized as ``content_type``."""
    try:
        encoder = _ENCODERS[content_type]
    except KeyError:
        raise errors.UnsupportedFormatError(content_type) from None
    return encoder(array_like)
