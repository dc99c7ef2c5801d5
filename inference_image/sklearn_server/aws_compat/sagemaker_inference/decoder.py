"""Bytes or str -> numpy (or scipy sparse), as in aws/sagemaker-inference-toolkit ``decoder.py``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from . import content_types, errors


def _json_to_numpy(string_like: str | bytes, dtype: Any = None) -> Any:
    return np.array(json.loads(string_like), dtype=dtype)


def _csv_to_numpy(string_like: str, dtype: Any = None) -> Any:
    return np.genfromtxt(io.StringIO(string_like), dtype=dtype, delimiter=",")


def _npy_to_numpy(npy_array: bytes) -> Any:
    return np.load(io.BytesIO(npy_array), allow_pickle=True)


def _npz_to_sparse(npz_bytes: bytes) -> Any:
    import scipy.sparse

    return scipy.sparse.load_npz(io.BytesIO(npz_bytes))


_DECODERS: dict[str, Callable[[Any], Any]] = {
    content_types.NPY: _npy_to_numpy,
    content_types.CSV: _csv_to_numpy,
    content_types.JSON: _json_to_numpy,
    content_types.NPZ: _npz_to_sparse,
}


def decode(obj: Any, content_type: str) -> Any:
    try:
        decoder = _DECODERS[content_type]
    except KeyError:
        raise errors.UnsupportedFormatError(content_type) from None
    return decoder(obj)
