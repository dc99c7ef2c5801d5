"""The sample a compiled model is verified on: numeric rows, from an array-like or a .csv / .npy file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_SUFFIXES = (".csv", ".npy")


def numeric_rows(sample: Any, n_features: int | None) -> np.ndarray:
    """``sample`` as a float64 [rows, features] array.

    Args:
        sample: a 2-D array-like of numbers (NumPy array, list of rows, all-numeric DataFrame).
        n_features: the width the estimator was fitted on; None accepts any width.

    Raises:
        ValueError: the sample is not 2-D, holds no rows, holds something other than numbers, or has the
            wrong number of columns.
    """
    if sample is None:
        raise ValueError("sample is required with compile='onnx': a 2-D array-like of numeric rows")
    try:
        array = np.asarray(sample)
    except ValueError as error:  # ragged rows
        raise ValueError(
            f"sample must be a 2-D array-like of numbers (rows of equal length): {error}"
        ) from error
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"sample must hold numbers only (bool, int or float), got dtype {array.dtype}; "
            "the compiled path serves numeric rows"
        )
    if array.ndim != 2:
        raise ValueError(f"sample must be 2-D (rows x features), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError("sample must hold at least one row")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"sample must have {n_features} columns (the estimator's n_features_in_), got {array.shape[1]}"
        )
    return array.astype(np.float64)


def read_sample(path: Path) -> np.ndarray:
    """Rows of numbers from a .csv file (one row per line; a first line that is not numbers is a header and
    skipped) or a .npy file (a 2-D numeric array; no pickles).

    Raises:
        ValueError: the file is missing, of another kind, or does not hold numeric rows; the message says
            where.
    """
    if path.suffix.lower() not in SAMPLE_SUFFIXES:
        raise ValueError(f"sample must be a .csv or .npy file, got {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"sample: no such file {str(path)!r}")
    if path.suffix.lower() == ".npy":
        try:
            return numeric_rows(np.load(path, allow_pickle=False), None)
        except (OSError, ValueError) as error:
            raise ValueError(f"sample {str(path)!r}: {error}") from error
    return _read_csv(path)


def _read_csv(path: Path) -> np.ndarray:
    with path.open(encoding="utf-8-sig") as file:
        first = file.readline()
    header = 1 if first.strip() and not _is_numeric_row(first) else 0
    try:
        rows = np.loadtxt(
            path, delimiter=",", skiprows=header, ndmin=2, dtype=np.float64, encoding="utf-8-sig"
        )
    except ValueError as error:
        raise ValueError(
            f"sample {str(path)!r} must hold comma-separated numbers, one row per line: {error}"
        ) from error
    return numeric_rows(rows, None)


def _is_numeric_row(line: str) -> bool:
    try:
        [float(field) for field in line.split(",")]
    except ValueError:
        return False
    return True
