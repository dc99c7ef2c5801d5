"""The C-speed paths for large bodies read and write exactly what the value-by-value paths do.

Each large-body path (pandas' CSV reader, one orjson call for all JSON lines, rows converted without a
check per value, orjson writing CSV) is compared with the path small bodies take, on generated inputs:
the same array bit for bit (NaN where NaN), the same bytes, or the same error message. The size
thresholds are lowered to 0 (every body takes the fast path when it can) or raised out of reach (the
reference path) for each call.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn_server import codecs
from sklearn_server.errors import BadRequestError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
THRESHOLDS = ("FAST_CSV_BYTES", "FAST_JSON_BYTES", "FAST_ENCODE_VALUES")


@contextlib.contextmanager
def thresholds(value: int) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for name in THRESHOLDS:
            stack.enter_context(mock.patch.object(codecs, name, value))
        yield


def fast(call: Callable[[], Any]) -> Any:
    """The call with every large-body path taken where it applies; its result or the error it raised."""
    with thresholds(0):
        return outcome(call)


def reference(call: Callable[[], Any]) -> Any:
    """The call on the value-by-value paths, whatever the size."""
    with thresholds(2**62), mock.patch.object(codecs, "LOADTXT_BYTES", 2**62):
        return outcome(call)


def outcome(call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except BadRequestError as error:
        return ("error", str(error))
    if isinstance(result, np.ndarray):
        return ("array", result.shape, result.dtype.str, result.tobytes())
    return ("bytes", result)


def same(call: Callable[[], Any]) -> None:
    assert fast(call) == reference(call)


# --- text/csv -----------------------------------------------------------------------------------------------

CELL_EDGES = [
    "",
    " ",
    " 1",
    "1 ",
    "\t2",
    "1_0",
    "0x1",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "1e",
    "e5",
    ".",
    "-",
    "+",
    "+1",
    "-0",
    "1.",
    ".5",
    "1.e5",
    "1e+5",
    "1E-5",
    "--1",
    "1-",
    "1.2.3",
    "1e5e5",
    "1e999",
    "-1e999",
    "1e-999",
    "0001",
    "9" * 40,
    "1" * 400 + ".5",
    "4.9e-324",
    "\u0661",
    "\xa0" + "1",
    '"1"',
    "1\r",
]
CHARSET_CELLS = st.text(alphabet="0123456789.eE+-", max_size=6)
NUMBER_CELLS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.3e}"),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.25g}"),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
CELLS = st.one_of(NUMBER_CELLS, NUMBER_CELLS, CHARSET_CELLS, st.sampled_from(CELL_EDGES))


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    """Mostly bodies the fast path takes (numbers only), with a change that may or may not break them."""
    width = draw(st.integers(1, 5))
    cells = draw(st.sampled_from([NUMBER_CELLS, NUMBER_CELLS, st.one_of(NUMBER_CELLS, CHARSET_CELLS), CELLS]))
    rows = draw(st.lists(st.lists(cells, min_size=width, max_size=width), min_size=1, max_size=30))
    if draw(st.booleans()):  # one odd cell
        rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, width - 1))] = draw(CELLS)
    if draw(st.booleans()):  # a row of another width
        rows[draw(st.integers(0, len(rows) - 1))] = draw(st.lists(CELLS, min_size=1, max_size=6))
    lines = [",".join(row) for row in rows]
    if draw(st.booleans()):  # a blank line
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", " ", "\r"])))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return (end.join(lines) + draw(st.sampled_from(["", end, "\n\n"]))).encode()


@SETTINGS
@given(body=csv_bodies(), n_features=st.sampled_from([None, 1, 2, 3, 4, 5]))
@example(body=b"1,2\n3,4,5\n6", n_features=None)  # the right number of commas, in the wrong rows
@example(body=b"1,2\r\n3,4\r\n", n_features=2)
@example(body=b"1,2\n\n3,4", n_features=None)
@example(body=b"1,2,\n3,4,", n_features=None)
@example(body=b"1,2\r3,4", n_features=None)  # a lone \r is no line end: "2\r3" is not a number
def test_large_csv_bodies_read_as_the_small_body_parser_reads_them(
    body: bytes, n_features: int | None
) -> None:
    same(lambda: codecs.decode_csv(body, n_features))


def test_every_short_cell_of_signs_points_and_exponents_reads_as_float_reads_it() -> None:
    for length in range(1, 5):
        for cell in map("".join, itertools.product("1.e+-", repeat=length)):
            body = f"2,{cell}\n3,4".encode()
            assert fast(lambda body=body: codecs.decode_csv(body)) == reference(
                lambda body=body: codecs.decode_csv(body)
            ), cell


def test_a_large_iris_body_reads_to_the_same_numbers_on_both_parsers() -> None:
    rows = np.random.default_rng(0).normal(size=(20_000, 4))
    body = "".join(",".join(map(repr, row)) + "\r\n" for row in rows.tolist()).encode()

    decoded = codecs.decode_csv(body, 4)

    assert decoded.tobytes() == rows.tobytes()
    assert decoded.flags.c_contiguous


# --- application/json and application/jsonlines ------------------------------------------------------------

VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.none(),
    st.booleans(),
    st.sampled_from(["1.5", " 2", "1_0", "nan", "x", "", "true"]),
    st.lists(st.integers(), max_size=2),
    st.just({}),
)
NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**63))


@st.composite
def json_rows(draw: st.DrawFn) -> list[Any]:
    """Mostly rows of numbers (what the fast path takes), with a change that may or may not break them."""
    width = draw(st.integers(0, 4))
    values = draw(st.sampled_from([NUMBERS, st.one_of(NUMBERS, st.none()), st.one_of(NUMBERS, VALUES)]))
    row = st.lists(values, min_size=width, max_size=width)
    rows: list[Any] = draw(st.lists(row, min_size=1, max_size=20))
    change = draw(st.sampled_from(["none", "value", "row"]))
    if change == "value" and width:
        rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, width - 1))] = draw(VALUES)
    elif change == "row":
        rows[draw(st.integers(0, len(rows) - 1))] = draw(st.one_of(VALUES, st.lists(NUMBERS, max_size=6)))
    return rows


def dumps(document: Any, spaced: bool) -> bytes:
    if spaced:  # Python's json module: ", " between values, and big integers as they are
        return json.dumps(document).encode()
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:  # an integer over 64 bits
        return json.dumps(document, separators=(",", ":")).encode()


@SETTINGS
@given(
    rows=json_rows(),
    shape=st.sampled_from(["instances", "inputs", "bare", "flat", "extra field"]),
    spaced=st.booleans(),
    n_features=st.sampled_from([None, 1, 2, 3]),
)
def test_large_json_bodies_read_as_the_checked_loop_reads_them(
    rows: list[Any], shape: str, spaced: bool, n_features: int | None
) -> None:
    document: Any = {
        "instances": {"instances": rows},
        "inputs": {"inputs": rows},
        "bare": rows,
        "flat": rows[0],
        "extra field": {"instances": rows, "tf": True},
    }[shape]
    body = dumps(document, spaced)

    same(lambda: codecs.decode_json(body, n_features))


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[1, true]]}',
        b'{"instances": [[1, false]]}',
        b'{"ins\\u0074ances": [[1, true]]}',
        b'[[1, "2"], [3, 4]]',
        b'[[1, "1_0"], [3, 4]]',
        b'{"instances": [[1, "1_0"], [3, 4]]}',
        b"[[1, 2], [3, 4, 5]]",
        b'{"instances": [[1, null], [3, 4]]}',
        b'{"instances": [[1e400, 2]]}',
    ],
)
def test_booleans_strings_and_ragged_rows_read_as_the_checked_loop_reads_them(body: bytes) -> None:
    same(lambda: codecs.decode_json(body))


@SETTINGS
@given(
    rows=json_rows(),
    spaced=st.booleans(),
    end=st.sampled_from(["\n", "\r\n"]),
    cuts=st.lists(st.integers(0, 10_000), max_size=2),
    n_features=st.sampled_from([None, 2, 3]),
    joined=st.integers(-20, 20),
)
@example(rows=[[1], [2, 3, 4]], spaced=False, end="\n", cuts=[2], n_features=None, joined=-1)
@example(rows=[[1], [2], [3]], spaced=False, end="\n", cuts=[], n_features=None, joined=0)
def test_large_json_lines_bodies_read_as_line_by_line_reading_reads_them(
    rows: list[Any], spaced: bool, end: str, cuts: list[int], n_features: int | None, joined: int
) -> None:
    lines = [dumps(row, spaced).decode() for row in rows]
    if 0 <= joined < len(lines) - 1:  # two lists on one line: "[1],[2]" is not one JSON value
        lines[joined : joined + 2] = [lines[joined] + "," + lines[joined + 1]]
    text = end.join(lines)
    for cut in cuts:  # a line end inside a line: "[1" and "2],[3,4]" must not read as [[1, 2], [3, 4]]
        position = cut % (len(text) + 1)
        text = text[:position] + "\n" + text[position:]
    body = text.encode()

    same(lambda: codecs.decode_jsonlines(body, n_features))


def test_a_line_split_inside_a_list_is_refused_as_the_line_by_line_reader_refuses_it() -> None:
    body = b"[1\n2],[3,4]"

    with thresholds(0), pytest.raises(BadRequestError, match="JSON line 1 is not valid JSON"):
        codecs.decode_jsonlines(body)


# --- encoders ---------------------------------------------------------------------------------------------

FLOATS = st.one_of(
    st.floats(),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.floats(min_value=1e14, max_value=1e18),
    st.sampled_from([0.0, -0.0, 1e-5, 1.5e-5, 9.99e-5, 1e-4, 1e-7, 5e-324, 1e16, 1e15, 0.1, 1 / 3]),
)
DTYPES = ["float64", "float32", "float16", "int64", "int32", "uint8", "uint64", "bool"]


@st.composite
def predictions(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    one_row = (draw(st.integers(1, 40)),)
    shape = draw(st.sampled_from([one_row, (draw(st.integers(1, 15)), draw(st.integers(1, 4)))]))
    size = math.prod(shape)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            values = np.array(draw(st.lists(FLOATS, min_size=size, max_size=size))).astype(dtype)
    elif dtype.kind == "b":
        values = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    else:
        info = np.iinfo(dtype)
        ints = st.integers(int(info.min), int(info.max))
        values = np.array(draw(st.lists(ints, min_size=size, max_size=size)), dtype=dtype)
    array = values.reshape(shape)
    return array.T.copy().T if draw(st.booleans()) and array.ndim == 2 else array  # Fortran order too


@SETTINGS
@given(array=predictions())
@example(array=np.array([1e-5, 1.5e-5, 1e-7, -2e-5, 10.00001, 100.0000123, 1e16, 0.0]))
@example(array=np.array([[np.nan, 1.0], [np.inf, -np.inf]]))
@example(array=np.array([0.1, 0.7], dtype=np.float32))
def test_large_csv_answers_are_byte_for_byte_the_value_by_value_ones(array: np.ndarray) -> None:
    same(lambda: codecs.encode_csv(array))


@SETTINGS
@given(array=predictions())
@example(array=np.array([[np.nan, 1.0], [np.inf, 1e-7]]))
def test_large_json_lines_answers_are_byte_for_byte_the_row_by_row_ones(array: np.ndarray) -> None:
    same(lambda: codecs.encode_jsonlines(array))


def test_text_labels_take_the_value_by_value_path() -> None:
    labels = np.array(["setosa", 'a "quoted", label'] * 600, dtype=object)

    assert codecs.encode_csv(labels).splitlines()[:2] == [b"setosa", b'"a ""quoted"", label"']
