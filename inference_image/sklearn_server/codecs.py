"""Request bodies to 2-D float arrays, and predictions to response bodies: one function per media type.

Decoders take the raw body and return a 2-D float64 array (rows x features; a sparse matrix for a scipy
sparse .npz) or raise ``BadRequestError`` naming the row and column (CSV) or the field (JSON) at fault.
Encoders take the predictions for one request (one entry per input row: a label, or a row of
probabilities) and return the bytes to send. Both live in dicts keyed by media type; a type missing from
them is a domain error (415 in, 406 out).

Large bodies (SageMaker batch transform sends up to 6 MB) take C-speed paths: pandas' CSV reader, one
orjson call, numpy conversions, orjson writing numbers. Each takes only inputs it can vouch for and hands
anything else to the value-by-value path, so what is accepted, what comes out and every error message are
the same at every size (tests/server/test_codecs_large.py checks both paths against each other).

The wire format is AWS's scikit-learn container's, so its clients keep working: a JSON answer is a bare
list (``{"predictions": [...]}`` is INFERENCE_JSON_RESPONSE=predictions away), a flat JSON list or a 1-D
.npy is one row, numbers sent as JSON strings are numbers, and JSON null is a missing value (NaN).
"""

from __future__ import annotations

import csv
import gc
import io
import math
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any, Final

import numpy as np
import orjson

from sklearn_server.config import (
    CONTENT_TYPES,
    CSV,
    INPUT_ONLY_CONTENT_TYPES,
    JSON,
    JSONLINES,
    NPY,
    NPZ,
)
from sklearn_server.errors import BadRequestError, NotAcceptableError, UnsupportedMediaTypeError

Decoder = Callable[[bytes, int | None], np.ndarray]
"""(body, the number of features the model wants or None) -> rows x features."""
Encoder = Callable[[np.ndarray], bytes]

_SNIPPET_CHARS: Final = 40
_NUMERIC_KINDS: Final = "iuf"
_ORJSON_NUMPY_MIN_SIZE: Final = 64
"""Below this many values ``tolist()`` + orjson beats orjson's numpy path."""


def _snippet(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."


# --- text/csv ---------------------------------------------------------------------------------------------

LOADTXT_BYTES: Final = 64 * 1024
"""Bodies this large are parsed by numpy's C reader: 6 MB of one-column CSV then peaks at ~15 MB instead of
the ~650 MB a Python float per cell costs (measured); small bodies parse faster in Python."""
FAST_CSV_BYTES: Final = 8 * 1024
"""Bodies this large that hold only digits, signs, points, exponents, commas and line ends are parsed by
pandas' C reader: 100,000 iris rows in ~12 ms, against ~75 ms for numpy's loadtxt and ~240 ms for a Python
float per cell (measured). Its numbers are Python's, bit for bit, on exactly the cells Python's float()
reads (tests/server/test_codecs_large.py); anything else takes the exact path below."""
_CSV_NUMBER_BYTES: Final = b"0123456789.eE+-,\n"
_CSV_CHUNKED_BYTES: Final = 1024 * 1024
"""Bodies this large are tokenized in chunks (pandas' low_memory): one pass is ~30 us faster on 1,000 rows
(16 KB) but slower on megabytes (6 MB: 44 ms against 32 ms; 100,000 rows in the server: 64 ms against
24 ms per request, measured). Peak memory is the same."""


def decode_csv(body: bytes, n_features: int | None = None) -> np.ndarray:
    """Rows of comma-separated numbers, one per line, no header. Surrounding blank space is ignored.

    The shape is checked before anything is parsed: the first row's width against ``n_features`` (the
    model's), and the body's commas against its lines, so a body of the wrong shape costs no memory.
    """
    text = body.strip()
    if not text:
        raise BadRequestError("the CSV body is empty: send one row of comma-separated numbers per line")
    end = text.find(b"\n")
    width = (text if end < 0 else text[:end]).count(b",") + 1
    if n_features is not None and width != n_features:
        raise BadRequestError(f"expected {n_features} features, got {width}")
    rows = text.count(b"\n") + 1
    if b"_" in text or text.count(b",") != rows * (width - 1):
        raise _csv_error(text)  # 5_1 is 51 to Python's float(); here it is not a number
    if len(text) >= FAST_CSV_BYTES:
        fast = _csv_numbers(text, rows, width)
        if fast is not None:
            return fast
    try:
        if len(text) < LOADTXT_BYTES:
            array = np.array(
                [[float(cell) for cell in line.split(b",")] for line in text.split(b"\n")], dtype=np.float64
            )
        else:
            array = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    except (ValueError, OverflowError):
        raise _csv_error(text) from None
    if array.shape[0] != rows:  # numpy skips blank lines; a blank row is an error here
        raise _csv_error(text)
    return array


def _csv_numbers(text: bytes, rows: int, width: int) -> np.ndarray | None:
    """``text`` parsed by pandas' C reader when it can only hold numbers float() reads; None otherwise.

    Only digits, ``.eE+-``, commas and line ends get here: within that alphabet the reader accepts and
    refuses exactly what float() does (checked exhaustively on short cells and by property tests; an empty
    cell is refused, not NaN, with ``na_filter=False``; a blank line is a row, so a short table fails the
    shape check). A Windows line end is a line end (float() strips the \\r a cell ends with).
    """
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    if text.translate(None, _CSV_NUMBER_BYTES):
        return None
    import pandas

    try:
        frame = pandas.read_csv(
            io.BytesIO(text),
            header=None,
            dtype=np.float64,
            engine="c",
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            low_memory=len(text) >= _CSV_CHUNKED_BYTES,
        )
    except (ValueError, OverflowError):  # pandas' ParserError and EmptyDataError are ValueErrors
        return None
    array = frame.to_numpy(dtype=np.float64)
    if array.shape != (rows, width):
        return None
    return np.ascontiguousarray(array)


def _lines(text: bytes) -> Iterator[bytes]:
    """The lines of ``text`` one at a time (a list of them all would cost what the check is there to save)."""
    start = 0
    while (end := text.find(b"\n", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def _csv_error(text: bytes) -> BadRequestError:
    """The first thing wrong with ``text``, found the slow way once the fast path failed."""
    width = -1
    for row_number, line in enumerate(_lines(text), start=1):
        cells = line.split(b",")
        if not line.strip():
            return BadRequestError(f"CSV row {row_number} is empty")
        if width < 0:
            width = len(cells)
        elif len(cells) != width:
            return BadRequestError(f"CSV row {row_number} has {len(cells)} values, row 1 has {width}")
        for column_number, cell in enumerate(cells, start=1):
            try:
                if b"_" in cell:
                    raise ValueError(cell)
                float(cell)
            except ValueError:
                shown = _snippet(cell.strip())
                return BadRequestError(
                    f"CSV row {row_number}, column {column_number} is not a number: {shown!r}"
                )
    return BadRequestError("the CSV body could not be read as rows of numbers")  # pragma: no cover


FAST_ENCODE_VALUES: Final = 512
"""Numeric predictions with this many values are written by orjson, whose numbers are then respelled as
Python's str() spells them (see ``_orjson_numbers``); fewer are faster written value by value."""
_SMALL_EXPONENT: Final = re.compile(rb"e-(\d)(?!\d)")
_POINT_ZEROS: Final = re.compile(rb"0\.0000(0*)([1-9])(\d*)")
"""A number under 1e-4 as orjson writes it (0.00001), when no digit comes before it (10.00001 is no such
number); a pattern that starts with a literal is searched for at C speed."""


def encode_csv(predictions: np.ndarray) -> bytes:
    """One line per input row; a row of several outputs (predict_proba) is comma-joined."""
    if predictions.size >= FAST_ENCODE_VALUES and predictions.ndim <= 2:
        numbers = _orjson_numbers(predictions, python_spelling=True)
        if numbers is not None:
            if predictions.ndim == 1:
                return numbers[1:-1].replace(b",", b"\n") + b"\n"
            return numbers[2:-2].replace(b"],[", b"\n") + b"\n"
    if predictions.ndim == 1 and predictions.dtype.hasobject:
        lines: Iterable[str] = (",".join(map(_csv_cell, _flat(value))) for value in predictions.tolist())
    elif predictions.ndim == 1:
        lines = map(_csv_cell, predictions.tolist())
    else:
        rows = predictions.reshape(predictions.shape[0], -1).tolist()
        lines = (",".join(map(_csv_cell, row)) for row in rows)
    return "".join(line + "\n" for line in lines).encode()


def _orjson_numbers(predictions: np.ndarray, *, python_spelling: bool = False) -> bytes | None:
    """Ints or floats as orjson writes ``predictions.tolist()`` (C speed); None for other dtypes.

    Floats are written as float64 (as ``tolist()`` gives them: float32 0.1 is 0.10000000149011612). With
    ``python_spelling`` they are respelled as Python's str() writes them: orjson writes 1e-7 and 0.00001
    where Python writes 1e-07 and 1e-05 (the two agree elsewhere: shortest round-trip digits, ``e+16``);
    NaN and infinities (JSON null) give None.
    """
    kind = predictions.dtype.kind
    if kind not in "iufb" or predictions.dtype.itemsize > 8 or (python_spelling and kind == "b"):
        return None
    values = predictions.astype(np.float64) if kind == "f" else predictions
    if kind == "f" and python_spelling and not np.isfinite(values).all():
        return None
    text = orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)
    if kind == "f" and python_spelling:
        if b"e-" in text:
            text = _SMALL_EXPONENT.sub(rb"e-0\1", text)
        if b"0.0000" in text:
            text = _POINT_ZEROS.sub(_exponent_spelling, text)
    return text


def _exponent_spelling(match: re.Match[bytes]) -> bytes:
    """orjson's 0.0000123 as Python's 1.23e-05."""
    start = match.start()
    if start and match.string[start - 1] in b"0123456789":
        return match.group()
    zeros, first, rest = match.groups()
    return b"%s%s%se-%02d" % (first, b"." if rest else b"", rest, len(zeros) + 5)


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for part in value:
            yield from _flat(part)
    else:
        yield value


def _csv_cell(value: Any) -> str:
    text = str(value)
    if isinstance(value, str) and any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


# --- application/json -------------------------------------------------------------------------------------


def decode_json(body: bytes, n_features: int | None = None) -> np.ndarray:
    """``{"instances": [...]}``, ``{"inputs": [...]}``, or a bare list: of rows, or of numbers (one row).

    Every value a number, a string holding a number, or null (a missing value, NaN).
    """
    try:
        document = _loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"the body is not valid JSON: {error}") from None
    large = len(body) >= FAST_JSON_BYTES
    if isinstance(document, dict):
        field = next((name for name in ROWS_FIELDS if name in document), None)
        if field is None:
            raise BadRequestError(
                'the JSON object has no "instances" field: send {"instances": [[...], ...]} or a list of rows'
            )
        # No escapes, and the one string is the field's name ("instances" and "inputs" hold one t, no f).
        numbers_only = (
            large
            and len(document) == 1
            and body.count(b'"') == 2
            and b"\\" not in body
            and body.count(b"t") == 1
            and b"f" not in body
        )
        return json_rows(document[field], field, n_features, numbers_only=numbers_only)
    if isinstance(document, list):
        numbers_only = large and not (b'"' in body or b"t" in body or b"f" in body)
        return json_rows(document, "", n_features, numbers_only=numbers_only)
    raise BadRequestError(
        f'the JSON body must be {{"instances": [[...], ...]}} or a list of rows, got {_kind(document)}'
    )


ROWS_FIELDS: Final = ("instances", "inputs")
"""The fields of a JSON object that hold its rows: TensorFlow Serving's and MLflow's names."""
FAST_JSON_BYTES: Final = 16 * 1024
"""JSON bodies this large are parsed with the garbage collector paused (a collection every 700 new lists
made orjson 4x slower on 100,000 rows: 115 ms against 31 ms, measured), and when they hold no strings and
no booleans their rows become an array without a check per value."""
_JSON_LINES_NUMBER_BYTES: Final = b"0123456789.eE+-,[] \n"


def _loads(body: bytes) -> Any:
    """orjson.loads, with the garbage collector paused for a large body (it makes no cycles)."""
    if len(body) < FAST_JSON_BYTES or not gc.isenabled():
        return orjson.loads(body)
    gc.disable()
    try:
        return orjson.loads(body)
    finally:
        gc.enable()


def json_rows(rows: Any, field: str, n_features: int | None, *, numbers_only: bool = False) -> np.ndarray:
    """A JSON list of rows (or of numbers: one row) as a 2-D float64 array; ``field`` names it in errors.

    ``numbers_only``: the caller has checked that the JSON text holds no strings and no booleans, so rows of
    one width convert at C speed, without a check per value.
    """
    if not isinstance(rows, list):
        raise BadRequestError(f"{field or 'the body'} must be a list of rows, got {_kind(rows)}")
    if not rows:
        raise BadRequestError(f"{field or 'the body'} is empty: send at least one row")
    if numbers_only:
        fast = _number_rows(rows, n_features)
        if fast is not None:
            return fast
    if type(rows[0]) is not list:
        rows = [rows]  # a flat list is one row
        field = f"{field}[0]" if field else ""
    width = -1
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise BadRequestError(f"{field}[{i}] must be a list of numbers, got {_kind(row)}")
        if width < 0:
            width = len(row)
            if not width:
                raise BadRequestError(f"{field}[0] is empty: a row needs at least one value")
            if n_features is not None and width != n_features:
                raise BadRequestError(f"expected {n_features} features, got {width}")
        elif len(row) != width:
            raise BadRequestError(f"{field}[{i}] has {len(row)} values, {field}[0] has {width}")
        if not all(type(value) is float or type(value) is int for value in row):
            rows[i] = row = [_json_number(value, f"{field}[{i}][{j}]") for j, value in enumerate(row)]
    try:
        return np.array(rows, dtype=np.float64)
    except OverflowError:
        raise BadRequestError(f"{field or 'the body'} holds a number too large for a 64-bit float") from None


def _number_rows(rows: list[Any], n_features: int | None) -> np.ndarray | None:
    """Rows that are all lists of one width, of numbers or nulls, as an array; None for anything else."""
    width = len(rows[0]) if type(rows[0]) is list else 0
    if not width or (n_features is not None and width != n_features):
        return None
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {width}:
        return None
    try:  # a nested list fails here; null becomes NaN, as _json_number makes it
        flat = np.fromiter(chain.from_iterable(rows), np.float64, count=len(rows) * width)
    except (TypeError, ValueError, OverflowError):
        return None
    return flat.reshape(len(rows), width)


def _json_number(value: Any, where: str) -> float | int:
    """A JSON value as a number: numbers as they are, numeric strings parsed, null as NaN."""
    if type(value) is float or type(value) is int:
        return value
    if value is None:
        return math.nan
    if type(value) is str:
        text = value.strip()
        try:
            if text and "_" not in text:
                return float(text)
        except ValueError:
            pass
    raise BadRequestError(f"{where} must be a number, got {_kind(value)}")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    name = names.get(type(value))
    if name is None:
        return f"the number {_snippet(value)}"
    return f"{name} ({_snippet(value)})" if isinstance(value, str | bool) else name


def _json_value(predictions: np.ndarray) -> Any:
    """What orjson writes for ``predictions``: the array itself when its numpy path is faster, else lists."""
    if (
        predictions.dtype.kind in _NUMERIC_KINDS
        and predictions.size >= _ORJSON_NUMPY_MIN_SIZE
        and predictions.flags.c_contiguous
    ):
        return predictions
    return predictions.tolist()


def encode_json(predictions: np.ndarray) -> bytes:
    """A bare list: labels, or rows of probabilities (AWS's scikit-learn container's answer)."""
    return orjson.dumps(_json_value(predictions), option=orjson.OPT_SERIALIZE_NUMPY, default=str)


def encode_json_predictions(predictions: np.ndarray) -> bytes:
    """``{"predictions": [...]}``: INFERENCE_JSON_RESPONSE=predictions."""
    return orjson.dumps(
        {"predictions": _json_value(predictions)}, option=orjson.OPT_SERIALIZE_NUMPY, default=str
    )


# --- application/jsonlines ----------------------------------------------------------------------------------


def decode_jsonlines(body: bytes, n_features: int | None = None) -> np.ndarray:
    """One row per line, each a JSON list of numbers (SageMaker batch transform's SplitType=Line)."""
    text = body.strip()
    if not text:
        raise BadRequestError("the JSON lines body is empty: send one list of numbers per line")
    if len(text) >= FAST_JSON_BYTES:
        document = _json_lines_as_one_list(text)
        if document is not None:
            return json_rows(document, "line", n_features, numbers_only=True)
    rows = []
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            raise BadRequestError(f"JSON line {number} is empty")
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            raise BadRequestError(f"JSON line {number} is not valid JSON: {error}") from None
        if type(rows[-1]) is not list:
            raise BadRequestError(f"JSON line {number} must be a list of numbers, got {_kind(rows[-1])}")
    return json_rows(rows, "line", n_features)


def _json_lines_as_one_list(text: bytes) -> list[Any] | None:
    """Lines that each hold one flat list of numbers, parsed as one JSON list (one orjson call, not one per
    line); None when the text could be anything else, or is not valid JSON.

    Only digits, ``.eE+-``, commas, spaces, brackets and line ends get here, every line starts with ``[``
    and ends with ``]``, and there are as many brackets as lines: so each line is one bracketed list, the
    commas that replace the line ends separate exactly the lines, and the list parses iff every line does.
    """
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")  # orjson reads \r as blank space
    lines = text.count(b"\n") + 1
    if (
        text.translate(None, _JSON_LINES_NUMBER_BYTES)
        or not text.startswith(b"[")
        or not text.endswith(b"]")
        or text.count(b"]\n[") != lines - 1
        or text.count(b"[") != lines
        or text.count(b"]") != lines
    ):
        return None
    try:
        document: list[Any] = _loads(b"[" + text.replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        return None
    return document


def encode_jsonlines(predictions: np.ndarray) -> bytes:
    """One JSON value per input row, one per line."""
    if predictions.size >= FAST_ENCODE_VALUES and predictions.ndim <= 2:
        numbers = _orjson_numbers(predictions)
        if numbers is not None:
            if predictions.ndim == 1:
                return numbers[1:-1].replace(b",", b"\n") + b"\n"
            return numbers[1:-1].replace(b"],[", b"]\n[") + b"\n"
    dumps = orjson.dumps
    return b"".join(dumps(row, default=str) + b"\n" for row in predictions.tolist())


# --- application/x-npy ------------------------------------------------------------------------------------


def decode_npy(body: bytes, n_features: int | None = None) -> np.ndarray:
    """A 2-D numeric array in .npy format; pickled (object) arrays are refused, never loaded.

    The header is checked against the body's size before anything is allocated, so a 100-byte body cannot
    claim a terabyte array.
    """
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except Exception as error:
        raise BadRequestError(f"the body is not a .npy array: {_snippet(str(error).encode())}") from None
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
        raise BadRequestError(f"the .npy array must hold ints or floats, got dtype {dtype.str}")
    if len(shape) == 1:
        shape = (1, *shape)  # a 1-D array is one row
    if len(shape) != 2:
        raise BadRequestError(
            f"the .npy array must be 2-D (rows x features) or 1-D (one row), got shape {shape}"
        )
    rows, columns = shape
    if rows < 0 or columns < 0:
        raise BadRequestError(f"the .npy header holds a negative dimension: shape {shape}")
    if not rows or not columns:
        raise BadRequestError(f"the .npy array is empty: shape {shape}")
    if n_features is not None and columns != n_features:
        raise BadRequestError(f"expected {n_features} features, got {columns}")
    offset = stream.tell()
    needed = math.prod(shape) * dtype.itemsize
    if len(body) - offset != needed:
        raise BadRequestError(
            f"the .npy body holds {len(body) - offset} data bytes but its header describes {needed} "
            f"(shape {shape}, dtype {dtype.str})"
        )
    flat = np.frombuffer(body, dtype=dtype, count=rows * columns, offset=offset)
    return flat.reshape(shape, order="F" if fortran_order else "C").astype(np.float64)


# --- application/x-npz ------------------------------------------------------------------------------------

NPZ_MAX_UNCOMPRESSED_BYTES: Final = 64 * 1024 * 1024
"""The most an .npz body may unpack to: a compressed archive of zeros would otherwise unpack to gigabytes."""
SPARSE_MAX_DIMENSION: Final = NPZ_MAX_UNCOMPRESSED_BYTES // 8
"""The most rows or columns a sparse matrix may claim: converting one to CSR allocates one entry per row."""
_SPARSE_FORMATS: Final = ("csr", "csc", "coo", "bsr", "dia")


def decode_npz(body: bytes, n_features: int | None = None) -> Any:
    """An .npz archive: a scipy sparse matrix (``scipy.sparse.save_npz``: CSR, CSC, COO, BSR or DIA; the
    SDK's SparseMatrixSerializer) or one dense array (``numpy.savez``; with several, the one named
    ``instances``). A sparse matrix stays sparse, as CSR."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise BadRequestError(f"the body is not an .npz archive: {_snippet(str(error).encode())}") from None
    unpacked = sum(info.file_size for info in members.values())
    if unpacked > NPZ_MAX_UNCOMPRESSED_BYTES:
        raise BadRequestError(
            f"the .npz archive unpacks to {unpacked} bytes; at most {NPZ_MAX_UNCOMPRESSED_BYTES} are allowed"
        )

    def array(name: str) -> np.ndarray:
        try:
            loaded: np.ndarray = np.load(io.BytesIO(archive.read(members[name])), allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
            raise BadRequestError(f"the .npz member {name!r} is not a numeric array: {error}") from None
        return loaded

    if {"format", "shape"} <= members.keys():
        return _sparse(body, array, n_features)
    if not members:
        raise BadRequestError("the .npz archive is empty: send one array")
    name = next(iter(members)) if len(members) == 1 else "instances"
    if name not in members:
        raise BadRequestError(
            f"the .npz archive holds {len(members)} arrays ({', '.join(sorted(members)[:10])}); "
            "send one, or name the rows 'instances'"
        )
    return decode_npy(archive.read(members[name]), n_features)


def _sparse(body: bytes, array: Callable[[str], np.ndarray], n_features: int | None) -> Any:
    import scipy.sparse

    kind = array("format").item()
    kind = kind.decode("ascii", "replace") if isinstance(kind, bytes) else str(kind)
    shape = tuple(int(n) for n in array("shape").ravel())
    if kind not in _SPARSE_FORMATS or len(shape) != 2 or min(shape) < 1:
        raise BadRequestError(
            f"the sparse .npz must hold a 2-D matrix ({', '.join(_SPARSE_FORMATS)}) with at least one row "
            f"and column, got {_snippet(kind.encode())} of shape {shape}"
        )
    if max(shape) > SPARSE_MAX_DIMENSION:
        raise BadRequestError(
            f"the sparse .npz claims shape {shape}; "
            f"at most {SPARSE_MAX_DIMENSION} rows and columns are allowed"
        )
    if n_features is not None and shape[1] != n_features:
        raise BadRequestError(f"expected {n_features} features, got {shape[1]}")
    try:
        matrix = scipy.sparse.load_npz(io.BytesIO(body)).tocsr()
        matrix.check_format(full_check=True)
    except (ValueError, TypeError, IndexError, KeyError, OSError) as error:
        raise BadRequestError(
            f"the sparse .npz is not a valid {kind} matrix: {_snippet(str(error).encode())}"
        ) from None
    if matrix.dtype.kind not in _NUMERIC_KINDS:
        raise BadRequestError(f"the sparse .npz must hold ints or floats, got dtype {matrix.dtype.str}")
    return matrix.astype(np.float64)


def join_rows(inputs: list[Any]) -> Any:
    """Several requests' rows stacked in order: dense with numpy, sparse with scipy."""
    if all(isinstance(rows, np.ndarray) for rows in inputs):
        return np.concatenate(inputs)
    import scipy.sparse

    return scipy.sparse.vstack(inputs, format="csr")


def encode_npy(predictions: np.ndarray) -> bytes:
    """The predictions as .npy; text labels become a unicode array (never pickled)."""
    if predictions.dtype.hasobject:
        if any(isinstance(value, list) for value in predictions.flat):
            raise NotAcceptableError(
                "these predictions are rows of lists of different lengths, which .npy cannot hold; "
                f"accept one of {', '.join(media for media in CONTENT_TYPES if media != NPY)}"
            )
        predictions = predictions.astype(np.str_)
    buffer = io.BytesIO()
    np.save(buffer, predictions, allow_pickle=False)
    return buffer.getvalue()


# --- dispatch ---------------------------------------------------------------------------------------------

DECODERS: Final[dict[str, Decoder]] = {
    CSV: decode_csv,
    JSON: decode_json,
    JSONLINES: decode_jsonlines,
    NPY: decode_npy,
    NPZ: decode_npz,
}
ENCODERS: Final[dict[str, Encoder]] = {
    CSV: encode_csv,
    JSON: encode_json,
    JSONLINES: encode_jsonlines,
    NPY: encode_npy,
}
READABLE: Final = (*CONTENT_TYPES, *INPUT_ONLY_CONTENT_TYPES)
"""What the decoders read."""


def encoders(json_response: str = "list") -> dict[str, Encoder]:
    """The encoders, with the JSON answer's shape INFERENCE_JSON_RESPONSE chose."""
    if json_response == "predictions":
        return {**ENCODERS, JSON: encode_json_predictions}
    return ENCODERS


def model_decoder(n_features: int | None) -> Callable[[bytes, str], Any]:
    """A model's ``decode``: the decoder of the request's media type, checking rows against ``n_features``."""

    def decode(body: bytes, media_type: str) -> Any:
        return decoder_for(media_type)(body, n_features)

    return decode


def model_encoder(json_response: str = "list") -> Callable[[Any, str], tuple[bytes, str]]:
    """A model's ``encode``: the encoder of the accepted media type, answering with that type."""
    chosen = encoders(json_response)

    def encode(predictions: Any, media_type: str) -> tuple[bytes, str]:
        return chosen[media_type](predictions), media_type

    return encode


def describe(value: Any) -> str:
    """A JSON value as an error message names it: ``a string ('x')``, ``an object``, ``the number 5``."""
    return _kind(value)


def decoder_for(media_type: str) -> Decoder:
    """Raises UnsupportedMediaTypeError (415) listing what is supported."""
    try:
        return DECODERS[media_type]
    except KeyError:
        shown = f"'{_snippet(media_type.encode())}'" if media_type else "none"
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Type {shown}; supported: {', '.join(READABLE)}"
        ) from None


def encoder_for(media_type: str) -> Encoder:
    """Raises NotAcceptableError (406) listing what is supported."""
    try:
        return ENCODERS[media_type]
    except KeyError:
        raise NotAcceptableError(
            f"cannot answer as '{_snippet(media_type.encode())}'; supported: {', '.join(CONTENT_TYPES)}"
        ) from None
